// betterAuthToken is the TokenGetter of a site that signs its readers in
// with BetterAuth: BetterAuth's own browser client with the jwt plugin asks
// GET {authURL}/api/auth/token for a JWT of the session in BetterAuth's
// cookie (credentials included: BetterAuth is usually on another origin).
// The JWT is kept until shortly before its exp, so a chat does not cost a
// token request per call; fresh (after the API answered 401) skips it.
import { createAuthClient } from "better-auth/client";
import { jwtClient } from "better-auth/client/plugins";

import { ChatError, type TokenGetter } from "./client.js";

// Refresh this long before exp, so a token never expires in flight.
const EARLY_MS = 30_000;

function expiry(jwt: string): number {
  try {
    const payload = JSON.parse(atob(jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))) as { exp?: number };
    return typeof payload.exp === "number" ? payload.exp * 1000 : 0;
  } catch {
    return 0; // unreadable: never reused
  }
}

export function betterAuthToken(authURL: string): TokenGetter {
  const auth = createAuthClient({
    baseURL: authURL.replace(/\/+$/, ""),
    plugins: [jwtClient()],
    fetchOptions: { credentials: "include" },
  });
  let cached: { token: string; exp: number } | null = null;
  let pending: Promise<string | null> | null = null;
  return ({ fresh }) => {
    if (!fresh && cached && cached.exp - EARLY_MS > Date.now()) return Promise.resolve(cached.token);
    // Concurrent callers share one request.
    pending ??= (async () => {
      try {
        const { data, error } = await auth.token().catch((err: Error) => {
          // BetterAuth unreachable, or its CORS refuses this page's origin.
          throw new ChatError(0, "network", `cannot reach BetterAuth: ${err.message}`);
        });
        if (error) {
          cached = null;
          // No session (signed out, expired): not an error, the reader signs in.
          if (error.status === 401 || error.status === 403) return null;
          throw new ChatError(error.status ?? 0, "network", `BetterAuth token: ${error.message || error.statusText || "failed"}`);
        }
        if (!data?.token) return null;
        cached = { token: data.token, exp: expiry(data.token) };
        return data.token;
      } finally {
        pending = null;
      }
    })();
    return pending;
  };
}
