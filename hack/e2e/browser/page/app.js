// The e2e page: what a docs site's chat widget does, with no framework.
//
// It signs the reader up and in with BetterAuth's browser client (cookies on
// BetterAuth's own origin), asks the jwt plugin for a JWT, and calls
// chat-apiserver on a third origin with it: create a conversation, stream an
// answer over SSE (fetch + ReadableStream, rendered delta by delta), list
// the history. esbuild bundles this file for the browser (e2e.test.mjs).
//
// window.chatE2E exposes what the page saw (events, DOM updates, reads) so
// the Playwright test can assert on behaviour, never on the page's say-so
// alone: it checks the DOM too.
import { createAuthClient } from "better-auth/client";
import { jwtClient } from "better-auth/client/plugins";

const cfg = window.CHAT_E2E_CONFIG;
const auth = createAuthClient({ baseURL: cfg.authURL, plugins: [jwtClient()] });

const $ = (id) => document.getElementById(id);
const state = {
  jwt: null,
  conversationID: null,
  events: [], // SSE event names in arrival order
  deltas: 0, // delta events rendered
  reads: 0, // network reads of the SSE body
  done: null, // the done event's stored message
  answerText: "",
};
window.chatE2E = state;

function setStatus(el, s, text) {
  el.dataset.state = s;
  el.textContent = text;
}

// An API error is {"error":{"code","message"}}; anything else is shown raw.
async function apiError(res) {
  const text = await res.text();
  try {
    const { error } = JSON.parse(text);
    return new Error(`${res.status} ${error.code}: ${error.message}`);
  } catch {
    return new Error(`${res.status}: ${text.slice(0, 200)}`);
  }
}

async function api(path, init = {}) {
  if (!state.jwt) throw new Error("not signed in");
  const res = await fetch(cfg.apiURL + path, {
    ...init,
    headers: { Authorization: `Bearer ${state.jwt}`, ...(init.body ? { "Content-Type": "application/json" } : {}), ...init.headers },
  });
  if (!res.ok) throw await apiError(res);
  return res;
}

// --- auth ---------------------------------------------------------------------

async function afterSignIn() {
  // The jwt plugin's GET /token: a JWT for the session of BetterAuth's cookie.
  const { data, error } = await auth.token();
  if (error) throw new Error(`token: ${error.status} ${error.message || error.statusText}`);
  state.jwt = data.token;
  const me = await (await api("/v1/me")).json();
  $("who").dataset.state = "signed-in";
  $("who").dataset.userId = me.id;
  $("who").textContent = `Signed in as ${me.name} <${me.email}>`;
}

async function runAuth(label, fn) {
  const st = $("auth-status");
  setStatus(st, "busy", `${label}…`);
  try {
    await fn();
    setStatus(st, "ok", `${label}: ok`);
  } catch (err) {
    setStatus(st, "error", `${label} failed: ${err.message}`);
  }
}

const creds = () => ({ name: $("name").value, email: $("email").value, password: $("password").value });

$("sign-up").addEventListener("click", () =>
  runAuth("sign up", async () => {
    const { error } = await auth.signUp.email(creds());
    if (error) throw new Error(`${error.status} ${error.message || error.statusText}`);
    await afterSignIn();
  }),
);
$("sign-in").addEventListener("click", () =>
  runAuth("sign in", async () => {
    const { email, password } = creds();
    const { error } = await auth.signIn.email({ email, password });
    if (error) throw new Error(`${error.status} ${error.message || error.statusText}`);
    await afterSignIn();
  }),
);
$("sign-out").addEventListener("click", () =>
  runAuth("sign out", async () => {
    const { error } = await auth.signOut();
    if (error) throw new Error(`${error.status} ${error.message || error.statusText}`);
    state.jwt = null;
    state.conversationID = null;
    $("who").dataset.state = "signed-out";
    delete $("who").dataset.userId;
    $("who").textContent = "Signed out";
  }),
);

// --- chat -----------------------------------------------------------------------

// readSSE calls onEvent(name, data) for each event of a text/event-stream
// body as it arrives. Comments (the server's heartbeats) are skipped.
async function readSSE(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    state.reads++;
    buf += value;
    let sep;
    while ((sep = /\r?\n\r?\n/.exec(buf))) {
      const block = buf.slice(0, sep.index);
      buf = buf.slice(sep.index + sep[0].length);
      let name = "message";
      const data = [];
      for (const line of block.split(/\r?\n/)) {
        if (line.startsWith(":")) continue;
        const i = line.indexOf(":");
        const field = i < 0 ? line : line.slice(0, i);
        const val = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
        if (field === "event") name = val;
        else if (field === "data") data.push(val);
      }
      if (data.length) onEvent(name, JSON.parse(data.join("\n")));
    }
  }
}

function renderSources(sources) {
  const ol = $("sources");
  ol.replaceChildren();
  for (const s of sources) {
    const li = document.createElement("li");
    const a = document.createElement("a");
    a.href = s.url;
    a.textContent = s.title || s.url;
    const small = document.createElement("small");
    small.textContent = `${s.snippet || ""} (score ${Number(s.score).toFixed(3)})`;
    li.append(a, small);
    ol.append(li);
  }
}

async function loadHistory() {
  const res = await api(`/v1/conversations/${state.conversationID}/messages?limit=100`);
  const { items } = await res.json();
  const ol = $("history");
  ol.replaceChildren();
  for (const m of items) {
    const li = document.createElement("li");
    li.dataset.role = m.role;
    li.dataset.id = m.id;
    const role = document.createElement("span");
    role.className = "role";
    role.textContent = m.role;
    const content = document.createElement("span");
    content.className = "content";
    content.textContent = m.content;
    li.append(role, content);
    ol.append(li);
  }
  return items;
}

async function ask(question) {
  if (!state.conversationID) {
    const res = await api("/v1/conversations", { method: "POST", body: JSON.stringify({ title: question.slice(0, 80) }) });
    state.conversationID = (await res.json()).id;
  }
  const answer = $("answer");
  answer.replaceChildren();
  Object.assign(state, { events: [], deltas: 0, reads: 0, done: null, answerText: "" });
  const st = $("chat-status");
  setStatus(st, "streaming", "Answering…");
  const res = await api(`/v1/conversations/${state.conversationID}/messages`, {
    method: "POST",
    headers: { Accept: "text/event-stream" },
    body: JSON.stringify({ content: question }),
  });
  let failure = null;
  await readSSE(res.body, (name, data) => {
    state.events.push(name);
    switch (name) {
      case "sources":
        renderSources(data.sources);
        break;
      case "delta":
        // One DOM update per delta: the reader sees the answer grow.
        state.deltas++;
        state.answerText += data.text;
        answer.append(document.createTextNode(data.text));
        break;
      case "done":
        state.done = data.message;
        break;
      case "error":
        failure = new Error(`${data.error.code}: ${data.error.message}`);
        break;
    }
  });
  if (failure) throw failure;
  if (!state.done) throw new Error("the stream ended without a done event");
  setStatus(st, "loading-history", "Loading history…");
  await loadHistory();
  setStatus(st, "done", `Answered (${state.deltas} deltas in ${state.reads} reads)`);
}

$("ask-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const button = $("ask");
  button.disabled = true;
  ask($("question").value)
    .catch((err) => setStatus($("chat-status"), "error", `Error: ${err.message}`))
    .finally(() => {
      button.disabled = false;
    });
});

// probe(path, token) calls the API once with a bearer token and says what the
// browser let the page see: the CORS test runs it on both origins.
window.chatProbe = async (path, token) => {
  const what = `GET ${cfg.apiURL}${path} ${token ? "with" : "without"} a token`;
  let got;
  try {
    const res = await fetch(cfg.apiURL + path, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
    got = { ok: res.ok, status: res.status, body: await res.text() };
    $("probe").textContent += `${what} → ${res.status}\n`;
  } catch (err) {
    got = { error: err.name, message: err.message };
    $("probe").textContent += `${what} → ${err.name}: ${err.message}\n`;
  }
  return got;
};

$("who").dataset.ready = "true";
