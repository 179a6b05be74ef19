// chat-client.js: the ES module a site imports to call chat-apiserver
// itself (the widget is built on it).
export * from "./client.js";
export { betterAuthToken } from "./auth.js";
export { readSSE, type SSEEvent } from "./sse.js";
