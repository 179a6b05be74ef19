// The typed browser client of chat-apiserver: every route of the API, with
// the request and response types generated from its OpenAPI document
// (api.gen.ts, `npm run gen`), so a server change that breaks a call here
// fails the type check of `make test`.
//
// It sends a bearer JWT from a token getter (betterAuthToken for a site
// that signs in with BetterAuth), fetches a fresh token and retries once on
// 401, waits for Retry-After and retries once on a 429 that asks for a
// short wait, streams answers over fetch (EventSource cannot send the
// bearer header) with an AbortSignal, and throws every failure as a
// ChatError carrying the server's {"error":{"code","message"}}.
import type { components, paths } from "./api.gen.js";
import { readSSE } from "./sse.js";

type Schemas = components["schemas"];
export type Conversation = Schemas["Conversation"];
export type ConversationList = Schemas["ConversationList"];
export type Source = Schemas["Source"];
// grounded: false says the docs do not cover the question (the rag service
// sets it; a server without it answers as before).
export type Message = Schemas["Message"] & { grounded?: boolean };
export type MessageList = Schemas["MessageList"];
export type User = Schemas["User"];
export type Feedback = Schemas["Feedback"];
export type FeedbackRequest = Schemas["FeedbackRequest"];
export type AgentRunRequest = Schemas["AgentRunRequest"];
export type AgentRunResponse = Schemas["AgentRunResponse"];
export type SendMessageResponse = Schemas["SendMessageResponse"];
export type ErrorBody = Schemas["Error"];
// The server's codes, plus the client's own: network (no answer at all),
// aborted (the caller's signal), signed_out (no token to send), protocol
// (an answer that is not the API's).
export type ErrorCode = ErrorBody["error"]["code"] | "network" | "aborted" | "signed_out" | "protocol";

// ChatError is every failure of a call: status 0 when no HTTP answer came.
export class ChatError extends Error {
  readonly status: number;
  readonly code: ErrorCode;
  // Seconds the server asked to wait (429, 503), when it said.
  readonly retryAfter?: number;
  // The server's error body as sent, when there was one.
  readonly body?: ErrorBody;
  // The assistant message a failed stream stored (status failed/incomplete).
  readonly messageID?: string;

  constructor(status: number, code: ErrorCode, message: string, extra: { retryAfter?: number; body?: ErrorBody; messageID?: string } = {}) {
    super(message);
    this.name = "ChatError";
    this.status = status;
    this.code = code;
    this.retryAfter = extra.retryAfter;
    this.body = extra.body;
    this.messageID = extra.messageID;
  }
}

// TokenGetter returns a JWT for the API, or null when the reader is signed
// out; fresh asks for a new one instead of a cached one (after a 401).
export type TokenGetter = (opts: { fresh: boolean }) => Promise<string | null>;

export interface ClientOptions {
  // chat-apiserver's base URL, e.g. https://chat.example.com.
  apiURL: string;
  getToken: TokenGetter;
  // The longest Retry-After (seconds) the client waits out by itself before
  // retrying a 429 once; a longer one is thrown at once. Default 10.
  maxRetryWait?: number;
  fetch?: typeof fetch;
}

export interface CallOptions {
  signal?: AbortSignal;
}

// The SSE events of a streamed answer, in order: message_start, sources,
// delta..., done. An error event is thrown as a ChatError instead.
export type StreamEvent =
  | { type: "message_start"; conversation_id: string; user_message_id: string; message_id: string }
  | { type: "sources"; sources: Source[] }
  | { type: "delta"; text: string }
  | { type: "done"; message: Message; grounded: boolean };

// The JSON body a route answers with on `status`.
type JSONOf<P extends keyof paths, M extends keyof paths[P], S extends number> = paths[P][M] extends {
  responses: { [K in S]: { content: { "application/json": infer T } } };
}
  ? T
  : never;
// The JSON body a route takes.
type BodyOf<P extends keyof paths, M extends keyof paths[P]> = paths[P][M] extends {
  requestBody?: { content: { "application/json": infer T } };
}
  ? T
  : never;

export interface Page {
  limit?: number;
  cursor?: string;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => (clearTimeout(t), reject(signal.reason)), { once: true });
  });

function retryAfterSeconds(res: Response): number | undefined {
  const v = res.headers.get("Retry-After");
  if (v === null) return undefined;
  const n = Number(v);
  if (Number.isFinite(n)) return Math.max(0, n);
  const at = Date.parse(v); // the HTTP-date form
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}

// errorFrom turns a non-2xx answer into a ChatError, keeping the server's
// body when it is the API's error JSON.
export async function errorFrom(res: Response): Promise<ChatError> {
  const text = await res.text().catch(() => "");
  const retryAfter = retryAfterSeconds(res);
  try {
    const body = JSON.parse(text) as ErrorBody;
    if (body && typeof body.error?.code === "string") {
      return new ChatError(res.status, body.error.code, body.error.message, { retryAfter, body, messageID: body.message_id });
    }
  } catch {
    // not JSON: a proxy's page, described below
  }
  return new ChatError(res.status, "protocol", `HTTP ${res.status}: ${text.slice(0, 200)}`, { retryAfter });
}

function aborted(signal?: AbortSignal): ChatError {
  return new ChatError(0, "aborted", String(signal?.reason ?? "aborted"));
}

export class ChatClient {
  readonly apiURL: string;
  private readonly getToken: TokenGetter;
  private readonly maxRetryWait: number;
  private readonly fetch: typeof fetch;

  constructor(o: ClientOptions) {
    this.apiURL = o.apiURL.replace(/\/+$/, "");
    this.getToken = o.getToken;
    this.maxRetryWait = o.maxRetryWait ?? 10;
    this.fetch = o.fetch ?? globalThis.fetch.bind(globalThis);
  }

  // request sends one call with a token: on 401 once more with a fresh
  // token, on a 429 whose Retry-After is short once more after waiting it.
  // It resolves to the successful Response, or throws a ChatError.
  async request(method: string, path: string, body?: unknown, opts: CallOptions & { accept?: string } = {}): Promise<Response> {
    let fresh = false;
    let waited = false;
    for (;;) {
      const token = await this.getToken({ fresh });
      if (!token) throw new ChatError(401, "signed_out", "not signed in");
      const headers: Record<string, string> = { Authorization: `Bearer ${token}` };
      if (body !== undefined) headers["Content-Type"] = "application/json";
      if (opts.accept) headers.Accept = opts.accept;
      let res: Response;
      try {
        res = await this.fetch(this.apiURL + path, {
          method,
          headers,
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: opts.signal,
        });
      } catch (err) {
        if (opts.signal?.aborted) throw aborted(opts.signal);
        throw new ChatError(0, "network", `cannot reach the chat service: ${(err as Error).message}`);
      }
      if (res.ok) return res;
      if (res.status === 401 && !fresh) {
        fresh = true;
        await res.body?.cancel();
        continue;
      }
      const err = await errorFrom(res);
      if (res.status === 429 && !waited && err.retryAfter !== undefined && err.retryAfter <= this.maxRetryWait) {
        waited = true;
        await sleep(err.retryAfter * 1000, opts.signal).catch(() => {
          throw aborted(opts.signal);
        });
        continue;
      }
      throw err;
    }
  }

  private async json<T>(method: string, path: string, body?: unknown, opts?: CallOptions): Promise<T> {
    const res = await this.request(method, path, body, opts);
    try {
      return (await res.json()) as T;
    } catch (err) {
      if (opts?.signal?.aborted) throw aborted(opts.signal);
      throw new ChatError(res.status, "protocol", `the answer is not JSON: ${(err as Error).message}`);
    }
  }

  me(opts?: CallOptions): Promise<JSONOf<"/v1/me", "get", 200>> {
    return this.json("GET", "/v1/me", undefined, opts);
  }

  createConversation(body: BodyOf<"/v1/conversations", "post"> = {}, opts?: CallOptions): Promise<JSONOf<"/v1/conversations", "post", 201>> {
    return this.json("POST", "/v1/conversations", body, opts);
  }

  listConversations(page: Page = {}, opts?: CallOptions): Promise<JSONOf<"/v1/conversations", "get", 200>> {
    return this.json("GET", `/v1/conversations${query(page)}`, undefined, opts);
  }

  getConversation(id: string, opts?: CallOptions): Promise<JSONOf<"/v1/conversations/{id}", "get", 200>> {
    return this.json("GET", `/v1/conversations/${encodeURIComponent(id)}`, undefined, opts);
  }

  renameConversation(id: string, title: string, opts?: CallOptions): Promise<JSONOf<"/v1/conversations/{id}", "patch", 200>> {
    const body: BodyOf<"/v1/conversations/{id}", "patch"> = { title };
    return this.json("PATCH", `/v1/conversations/${encodeURIComponent(id)}`, body, opts);
  }

  async deleteConversation(id: string, opts?: CallOptions): Promise<void> {
    const res = await this.request("DELETE", `/v1/conversations/${encodeURIComponent(id)}`, undefined, opts);
    await res.body?.cancel();
  }

  listMessages(conversationID: string, page: Page = {}, opts?: CallOptions): Promise<JSONOf<"/v1/conversations/{id}/messages", "get", 200>> {
    return this.json("GET", `/v1/conversations/${encodeURIComponent(conversationID)}/messages${query(page)}`, undefined, opts);
  }

  // sendMessage asks a question and waits for the whole answer (JSON).
  sendMessage(conversationID: string, content: string, opts?: CallOptions): Promise<JSONOf<"/v1/conversations/{id}/messages", "post", 200>> {
    const body: BodyOf<"/v1/conversations/{id}/messages", "post"> = { content };
    return this.json("POST", `/v1/conversations/${encodeURIComponent(conversationID)}/messages`, body, opts);
  }

  // streamMessage asks a question and yields the answer's events as they
  // arrive. Aborting the signal stops the stream (the server stores the
  // answer so far as incomplete); an error event is thrown as a ChatError
  // with the stored message's id.
  streamMessage(conversationID: string, content: string, opts: CallOptions = {}): AsyncGenerator<StreamEvent, void, undefined> {
    const body: BodyOf<"/v1/conversations/{id}/messages", "post"> = { content };
    return this.stream(`/v1/conversations/${encodeURIComponent(conversationID)}/messages`, body, opts);
  }

  // streamRegenerate answers the question of answer messageID again, as a
  // new answer (the server keeps the old one), with streamMessage's events.
  streamRegenerate(conversationID: string, messageID: string, opts: CallOptions = {}): AsyncGenerator<StreamEvent, void, undefined> {
    const path = `/v1/conversations/${encodeURIComponent(conversationID)}/messages/${encodeURIComponent(messageID)}/regenerate`;
    return this.stream(path, undefined, opts);
  }

  private async *stream(path: string, body: unknown, opts: CallOptions): AsyncGenerator<StreamEvent, void, undefined> {
    const res = await this.request("POST", path, body, { ...opts, accept: "text/event-stream" });
    if (!res.body || !(res.headers.get("Content-Type") ?? "").startsWith("text/event-stream")) {
      throw new ChatError(res.status, "protocol", "the answer is not an event stream");
    }
    let done = false;
    try {
      for await (const ev of readSSE(res.body)) {
        const data = JSON.parse(ev.data) as Record<string, unknown>;
        if (ev.event === "error") {
          const e = data as ErrorBody;
          throw new ChatError(200, e.error?.code ?? "protocol", e.error?.message ?? "the stream failed", { body: e, messageID: e.message_id });
        }
        if (ev.event === "message_start" || ev.event === "sources" || ev.event === "delta" || ev.event === "done") {
          done = ev.event === "done";
          // grounded travels next to the message in the done event; the
          // message carries it too, as the JSON answer's message is read.
          if (done && typeof data.grounded === "boolean") (data.message as Message).grounded = data.grounded;
          yield { type: ev.event, ...data } as StreamEvent;
        }
      }
    } catch (err) {
      if (err instanceof ChatError) throw err;
      if (opts.signal?.aborted) throw aborted(opts.signal);
      throw new ChatError(0, "network", `the stream broke: ${(err as Error).message}`);
    }
    if (!done) throw new ChatError(200, "protocol", "the stream ended without a done event");
  }

  // stopAnswer stops an answer while it streams, on whichever replica
  // streams it: its stream then ends with done, the message `stopped`
  // with the text streamed so far. A 409 means it had already finished.
  stopAnswer(conversationID: string, messageID: string, opts?: CallOptions): Promise<JSONOf<"/v1/conversations/{id}/messages/{messageID}/stop", "post", 200>> {
    return this.json("POST", `/v1/conversations/${encodeURIComponent(conversationID)}/messages/${encodeURIComponent(messageID)}/stop`, undefined, opts);
  }

  sendFeedback(messageID: string, body: FeedbackRequest, opts?: CallOptions): Promise<JSONOf<"/v1/messages/{id}/feedback", "post", 200>> {
    return this.json("POST", `/v1/messages/${encodeURIComponent(messageID)}/feedback`, body, opts);
  }

  runAgent(body: AgentRunRequest, opts?: CallOptions): Promise<JSONOf<"/agents/run", "post", 200>> {
    return this.json("POST", "/agents/run", body, opts);
  }
}

function query(p: Page): string {
  const q = new URLSearchParams();
  if (p.limit !== undefined) q.set("limit", String(p.limit));
  if (p.cursor) q.set("cursor", p.cursor);
  const s = q.toString();
  return s ? `?${s}` : "";
}
