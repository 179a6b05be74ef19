// Unit tests of dist/chat-client.js, the built module a site imports,
// against a scripted HTTP server on loopback: token refresh on 401,
// Retry-After on 429, errors as ChatError values with the server's body,
// and streaming (chunking, heartbeats, error events, abort).
// Run: npm test (make web-verify runs it after the build).
import assert from "node:assert/strict";
import http from "node:http";
import { after, before, beforeEach, test } from "node:test";

import { ChatClient, ChatError, betterAuthToken } from "../dist/chat-client.js";

// script: the answers the server gives, in order; seen: what it received.
let script = [];
let seen = [];
let server;
let base;

before(async () => {
  server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", async () => {
      seen.push({ method: req.method, url: req.url, auth: req.headers.authorization, accept: req.headers.accept, body });
      const next = script.shift();
      if (!next) {
        res.writeHead(500).end("no scripted answer");
        return;
      }
      await next(req, res);
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${server.address().port}`;
});
after(() => new Promise((r) => (server.closeAllConnections(), server.close(r))));
beforeEach(() => {
  script = [];
  seen = [];
});

const json = (status, body, headers = {}) => (_req, res) =>
  res.writeHead(status, { "Content-Type": "application/json", ...headers }).end(JSON.stringify(body));
const apiError = (status, code, message, headers) => json(status, { error: { code, message } }, headers);

// tokens hands out tok-1, tok-2, ... and records whether each was fresh.
function tokens() {
  const asked = [];
  const getToken = async ({ fresh }) => (asked.push(fresh), `tok-${asked.length}`);
  return { asked, getToken };
}

test("a 401 is retried once with a fresh token", async () => {
  const t = tokens();
  const c = new ChatClient({ apiURL: `${base}/`, getToken: t.getToken });
  script = [apiError(401, "unauthorized", "token expired"), json(200, { id: "u1", email: "a@example.com", name: "A" })];
  const me = await c.me();
  assert.equal(me.id, "u1");
  assert.deepEqual(t.asked, [false, true]);
  assert.deepEqual(seen.map((s) => s.auth), ["Bearer tok-1", "Bearer tok-2"]);
  assert.equal(seen[0].url, "/v1/me");

  // A second 401 is the caller's: no third request.
  script = [apiError(401, "unauthorized", "token expired"), apiError(401, "unauthorized", "signature invalid")];
  seen = [];
  const err = await c.me().catch((e) => e);
  assert.ok(err instanceof ChatError);
  assert.equal(err.status, 401);
  assert.equal(err.code, "unauthorized");
  assert.equal(err.message, "signature invalid");
  assert.deepEqual(err.body, { error: { code: "unauthorized", message: "signature invalid" } });
  assert.equal(seen.length, 2);
});

test("signed out: no request at all", async () => {
  const c = new ChatClient({ apiURL: base, getToken: async () => null });
  const err = await c.listConversations().catch((e) => e);
  assert.equal(err.code, "signed_out");
  assert.equal(seen.length, 0);
});

test("a 429 with a short Retry-After is waited out and retried once; a long one is thrown", async () => {
  const c = new ChatClient({ apiURL: base, getToken: tokens().getToken, maxRetryWait: 5 });
  script = [apiError(429, "rate_limited", "slow down", { "Retry-After": "1" }), json(201, { id: "c1", title: "t", created_at: "x", updated_at: "x" })];
  const t0 = Date.now();
  const conv = await c.createConversation({ title: "t" });
  assert.equal(conv.id, "c1");
  assert.ok(Date.now() - t0 >= 950, `waited ${Date.now() - t0} ms`);
  assert.equal(seen.length, 2);
  assert.deepEqual(JSON.parse(seen[1].body), { title: "t" });

  seen = [];
  script = [apiError(429, "rate_limited", "slow down", { "Retry-After": "60" })];
  const err = await c.createConversation({}).catch((e) => e);
  assert.equal(err.code, "rate_limited");
  assert.equal(err.retryAfter, 60);
  assert.equal(seen.length, 1, "a long wait is the caller's to show, not the client's to sit through");

  // Twice in a row: retried once only.
  seen = [];
  script = [0, 1].map(() => apiError(429, "rate_limited", "slow down", { "Retry-After": "0" }));
  assert.equal((await c.createConversation({}).catch((e) => e)).code, "rate_limited");
  assert.equal(seen.length, 2);
});

test("errors that are not the API's JSON, and no server at all", async () => {
  const c = new ChatClient({ apiURL: base, getToken: tokens().getToken });
  script = [(_q, res) => res.writeHead(502, { "Content-Type": "text/html", "Retry-After": "7" }).end("<h1>Bad gateway</h1>")];
  const err = await c.getConversation("c1").catch((e) => e);
  assert.equal(err.status, 502);
  assert.equal(err.code, "protocol");
  assert.equal(err.retryAfter, 7);
  assert.match(err.message, /Bad gateway/);

  const down = new ChatClient({ apiURL: "http://127.0.0.1:9", getToken: tokens().getToken });
  const nerr = await down.me().catch((e) => e);
  assert.equal(nerr.code, "network");
  assert.equal(nerr.status, 0);
});

test("every route: method, path and body", async () => {
  const c = new ChatClient({ apiURL: base, getToken: tokens().getToken });
  const ok = json(200, {});
  script = [ok, ok, ok, ok, (_q, res) => res.writeHead(204).end(), ok, ok, ok, ok];
  await c.listConversations({ limit: 5, cursor: "a b" });
  await c.renameConversation("c/1", "new");
  await c.listMessages("c1", { limit: 100 });
  await c.sendMessage("c1", "hi");
  await c.deleteConversation("c1");
  await c.sendFeedback("m1", { rating: "down", comment: "wrong" });
  await c.runAgent({ question: "q" });
  await c.me();
  await c.stopAnswer("c1", "m/2");
  assert.deepEqual(
    seen.map((s) => `${s.method} ${s.url} ${s.body}`),
    [
      "GET /v1/conversations?limit=5&cursor=a+b ",
      'PATCH /v1/conversations/c%2F1 {"title":"new"}',
      "GET /v1/conversations/c1/messages?limit=100 ",
      'POST /v1/conversations/c1/messages {"content":"hi"}',
      "DELETE /v1/conversations/c1 ",
      'POST /v1/messages/m1/feedback {"rating":"down","comment":"wrong"}',
      'POST /agents/run {"question":"q"}',
      "GET /v1/me ",
      "POST /v1/conversations/c1/messages/m%2F2/stop ",
    ],
  );
});

// sse answers with the given raw chunks, flushed one by one.
const sse = (chunks, { hold } = {}) => async (_req, res) => {
  res.writeHead(200, { "Content-Type": "text/event-stream" });
  for (const c of chunks) {
    res.write(c);
    await new Promise((r) => setTimeout(r, 5));
  }
  if (hold) return hold(res);
  res.end();
};
const message = { id: "m2", conversation_id: "c1", role: "assistant", content: "Hello *world*", sources: [], agent_type: "offline", status: "complete", model: "", usage: { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 }, created_at: "x" };

test("a streamed answer: events in order, whatever the chunking; heartbeats skipped", async () => {
  const c = new ChatClient({ apiURL: base, getToken: tokens().getToken });
  const raw =
    'event: message_start\ndata: {"conversation_id":"c1","user_message_id":"m1","message_id":"m2"}\n\n' +
    ": heartbeat\n\n" +
    'event: sources\r\ndata: {"sources":[{"title":"T","url":"https://d/x#a","snippet":"s","score":1}]}\r\n\r\n' +
    'event: delta\ndata: {"text":"Hello "}\n\nevent: delta\ndata: {"text":"*world*"}\n\n' +
    `event: done\ndata: ${JSON.stringify({ message })}\n\n`;
  // Split at awkward places: inside a field name, between \r and \n, inside UTF-8-free JSON.
  script = [sse([raw.slice(0, 7), raw.slice(7, 120), raw.slice(120, 200), raw.slice(200)])];
  const events = [];
  for await (const ev of c.streamMessage("c1", "hi")) events.push(ev);
  assert.equal(seen[0].accept, "text/event-stream");
  assert.deepEqual(events.map((e) => e.type), ["message_start", "sources", "delta", "delta", "done"]);
  assert.equal(events[0].message_id, "m2");
  assert.equal(events[1].sources[0].url, "https://d/x#a");
  assert.equal(events.filter((e) => e.type === "delta").map((e) => e.text).join(""), "Hello *world*");
  assert.equal(events[4].message.grounded, undefined, "no grounded in the event, none on the message");
  assert.deepEqual(events[4].message, message);
});

test("a done event's grounded reaches the message, so the widget can say the docs do not cover it", async () => {
  const c = new ChatClient({ apiURL: base, getToken: tokens().getToken });
  script = [sse([`event: done\ndata: ${JSON.stringify({ message, grounded: false })}\n\n`])];
  const events = [];
  for await (const ev of c.streamMessage("c1", "hi")) events.push(ev);
  assert.equal(events[0].grounded, false);
  assert.equal(events[0].message.grounded, false);
});

test("regenerating streams a new answer to the answer's question, with no body", async () => {
  const c = new ChatClient({ apiURL: base, getToken: tokens().getToken });
  script = [sse([`event: message_start\ndata: {"conversation_id":"c1","user_message_id":"m1","message_id":"m3"}\n\nevent: done\ndata: ${JSON.stringify({ message })}\n\n`])];
  const events = [];
  for await (const ev of c.streamRegenerate("c1", "m2")) events.push(ev);
  assert.deepEqual([seen[0].method, seen[0].url, seen[0].accept, seen[0].body], ["POST", "/v1/conversations/c1/messages/m2/regenerate", "text/event-stream", ""]);
  assert.deepEqual(events.map((e) => e.type), ["message_start", "done"]);
  assert.equal(events[0].user_message_id, "m1");
});

test("a stream's error event is a ChatError with the stored message's id", async () => {
  const c = new ChatClient({ apiURL: base, getToken: tokens().getToken });
  script = [sse(['event: delta\ndata: {"text":"par"}\n\n', 'event: error\ndata: {"error":{"code":"upstream_error","message":"model timed out"},"message_id":"m9"}\n\n'])];
  const got = [];
  const err = await (async () => {
    for await (const ev of c.streamMessage("c1", "hi")) got.push(ev.type);
  })().catch((e) => e);
  assert.deepEqual(got, ["delta"]);
  assert.ok(err instanceof ChatError);
  assert.equal(err.code, "upstream_error");
  assert.equal(err.message, "model timed out");
  assert.equal(err.messageID, "m9");

  script = [sse(['event: delta\ndata: {"text":"cut"}\n\n'])];
  const cut = await (async () => {
    for await (const _ of c.streamMessage("c1", "hi"));
  })().catch((e) => e);
  assert.equal(cut.code, "protocol", "a stream that ends without done is not a complete answer");
});

test("aborting stops the stream and closes the connection", async () => {
  const c = new ChatClient({ apiURL: base, getToken: tokens().getToken });
  let closed;
  // The client may abort, and the socket close, before hold runs (after
  // the last chunk's pause): an idle machine is that fast.
  const serverSawClose = new Promise((r) => (closed = r));
  script = [sse(['event: delta\ndata: {"text":"one"}\n\n'], { hold: (res) => (res.closed ? closed() : res.on("close", closed)) })];
  const ac = new AbortController();
  const got = [];
  const err = await (async () => {
    for await (const ev of c.streamMessage("c1", "hi", { signal: ac.signal })) {
      got.push(ev.text);
      ac.abort("stopped by the reader");
    }
  })().catch((e) => e);
  assert.deepEqual(got, ["one"]);
  assert.equal(err.code, "aborted");
  await Promise.race([serverSawClose, new Promise((_, rej) => setTimeout(() => rej(new Error("the server never saw the connection close")), 5000))]);
});

test("betterAuthToken asks BetterAuth's /api/auth/token with credentials, caches until exp, refreshes when asked", async () => {
  const jwt = (exp) => `h.${Buffer.from(JSON.stringify({ exp })).toString("base64url")}.s`;
  const soon = Math.floor(Date.now() / 1000) + 600;
  script = [json(200, { token: jwt(soon) }), json(200, { token: jwt(soon + 1) }), apiError(401, "UNAUTHORIZED", "no session")];
  const get = betterAuthToken(base);
  const [a, b] = await Promise.all([get({ fresh: false }), get({ fresh: false })]);
  assert.equal(a, jwt(soon));
  assert.equal(b, a, "concurrent callers share one request");
  assert.equal(await get({ fresh: false }), a, "cached until shortly before exp");
  assert.equal(seen.length, 1);
  assert.equal(seen[0].url, "/api/auth/token");
  assert.equal(await get({ fresh: true }), jwt(soon + 1));
  assert.equal(await get({ fresh: true }), null, "no session: signed out, not an error");
  assert.equal(seen.length, 3);
});
