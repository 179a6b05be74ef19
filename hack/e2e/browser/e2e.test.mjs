// Browser end-to-end test: headless Chromium (Debian's, driven by
// playwright-core) opens page/index.html, served on its own origin as a docs
// site would be, signs up and in with the real BetterAuth server, and chats
// with the real chat-apiserver on a third origin. The same page served on an
// origin outside CORS_ALLOWED_ORIGINS must be refused by the browser.
//
// hack/e2e/run.sh starts PostgreSQL, BetterAuth and chat-apiserver and runs
// this file with `node --test`; it passes where they are in the environment:
//
//   E2E_AUTH_URL     BetterAuth base URL (trusts E2E_PAGE_ORIGIN only)
//   E2E_API_URL      chat-apiserver (CORS_ALLOWED_ORIGINS = E2E_PAGE_ORIGIN)
//   E2E_METRICS_URL  chat-apiserver's /metrics
//   E2E_PAGE_ORIGIN  origin this file serves the page on (http://127.0.0.1:PORT)
//   E2E_OTHER_ORIGIN another origin serving the same page, not allowed by CORS
//   E2E_ARTIFACTS    directory for screenshots and the browser console log
//   E2E_TMP          where to make the browser's fresh user-data-dir (default: the OS temp dir)
//   CHROMIUM         browser binary (default /usr/bin/chromium)
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync, appendFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";

import { build } from "esbuild";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));

function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run this test through hack/e2e/run.sh`);
  return v.replace(/\/+$/, "");
}
const authURL = env("E2E_AUTH_URL");
const apiURL = env("E2E_API_URL");
const metricsURL = env("E2E_METRICS_URL");
const pageOrigin = env("E2E_PAGE_ORIGIN");
const otherOrigin = env("E2E_OTHER_ORIGIN");
const artifacts = env("E2E_ARTIFACTS");
const chromiumPath = process.env.CHROMIUM || "/usr/bin/chromium";

// Every wait is bounded: a hung browser or server fails the test, never the CI run.
const STEP_TIMEOUT_MS = 15_000;
const TEST_TIMEOUT_MS = 60_000;

const user = {
  name: "E2E Reader",
  email: `reader-${Date.now()}@example.com`,
  password: "correct horse battery staple",
};
// Answered by the "Allowed origins" section of docs/guides/embedding-the-widget.mdx.
const question = "Which origins may call the chat API from a browser page?";
const expectedSource = `${pageOrigin}/docs/guides/embedding-the-widget#allowed-origins`;

// --- the docs site stand-in: a static server on its own origin -----------------

async function bundle() {
  const out = await build({
    entryPoints: [path.join(here, "page", "app.js")],
    bundle: true,
    format: "iife",
    platform: "browser",
    target: "chrome120",
    write: false,
    logLevel: "error",
  });
  return out.outputFiles[0].text;
}

function serve(origin, files) {
  const { port, hostname } = new URL(origin);
  const server = http.createServer((req, res) => {
    const p = new URL(req.url, origin).pathname;
    const f = files[p === "/" ? "/index.html" : p];
    if (!f) {
      res.writeHead(404, { "Content-Type": "text/plain" }).end("not found");
      return;
    }
    res.writeHead(200, { "Content-Type": f.type, "Cache-Control": "no-store" }).end(f.body);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(Number(port), hostname, () => resolve(server));
  });
}

// --- browser --------------------------------------------------------------------

let context; // persistent context of a fresh user-data-dir
let userDataDir;
let servers = [];
const pageErrors = [];
const consoleLines = {}; // page name -> console messages

async function openPage(origin, name) {
  // The persistent context opens with one blank tab: use it first.
  const page = context.pages().find((p) => p.url() === "about:blank") ?? (await context.newPage());
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const log = path.join(artifacts, "browser-console.log");
  consoleLines[name] = [];
  page.on("console", (m) => {
    consoleLines[name].push(m.text());
    appendFileSync(log, `[${name}] ${m.type()}: ${m.text()}\n`);
  });
  page.on("pageerror", (err) => {
    pageErrors.push(`[${name}] ${err.message}`);
    appendFileSync(log, `[${name}] pageerror: ${err.stack || err.message}\n`);
  });
  await page.goto(`${origin}/`);
  await page.locator('#who[data-ready="true"]').waitFor();
  return page;
}

async function screenshot(page, name) {
  const file = path.join(artifacts, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true, timeout: STEP_TIMEOUT_MS });
  return file;
}

// step runs a test and, when it fails, leaves a screenshot of the page as it was.
function step(name, fn) {
  test(name, { timeout: TEST_TIMEOUT_MS }, async () => {
    try {
      await fn();
    } catch (err) {
      const slug = name.replace(/[^a-z0-9]+/gi, "-").toLowerCase().slice(0, 60);
      for (const [i, p] of context.pages().entries()) {
        await screenshot(p, `failed-${slug}-${i}`).catch(() => {});
      }
      throw err;
    }
  });
}

async function authStatus(page, label) {
  const st = page.locator("#auth-status");
  await page.waitForFunction(
    (l) => {
      const el = document.getElementById("auth-status");
      return el.textContent.startsWith(l) && ["ok", "error"].includes(el.dataset.state);
    },
    label,
  );
  assert.equal(await st.getAttribute("data-state"), "ok", `${label}: ${await st.textContent()}`);
}

// tokenFor signs in from Node (no browser, so no CORS) and returns a JWT of
// the jwt plugin: the CORS test needs a token that the API would accept.
// BetterAuth's CSRF check wants a trusted Origin on sign-in even from a script.
async function tokenFor(email, password) {
  const signIn = await fetch(`${authURL}/api/auth/sign-in/email`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Origin: pageOrigin },
    body: JSON.stringify({ email, password }),
    signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
  });
  assert.equal(signIn.status, 200, `sign-in from node: ${await signIn.clone().text()}`);
  const { token: session } = await signIn.json();
  const res = await fetch(`${authURL}/api/auth/token`, {
    headers: { Authorization: `Bearer ${session}` },
    signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
  });
  assert.equal(res.status, 200);
  return (await res.json()).token;
}

// validations sums chatbackend_token_validations_total over its labels: it
// moves whenever a request with a token reaches the API's auth middleware.
async function validations() {
  const res = await fetch(metricsURL, { signal: AbortSignal.timeout(STEP_TIMEOUT_MS) });
  const text = await res.text();
  let sum = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith("chatbackend_token_validations_total{")) sum += Number(line.split(" ").pop());
  }
  return sum;
}

before(async () => {
  mkdirSync(artifacts, { recursive: true });
  writeFileSync(path.join(artifacts, "browser-console.log"), "");
  const files = {
    "/index.html": { type: "text/html; charset=utf-8", body: readFileSync(path.join(here, "page", "index.html")) },
    "/app.js": { type: "text/javascript; charset=utf-8", body: await bundle() },
    "/config.js": {
      type: "text/javascript; charset=utf-8",
      body: `window.CHAT_E2E_CONFIG = ${JSON.stringify({ authURL, apiURL })};\n`,
    },
  };
  servers = [await serve(pageOrigin, files), await serve(otherOrigin, files)];
  // run.sh passes E2E_TMP, so it can tell whether a browser outlived the test.
  userDataDir = mkdtempSync(path.join(process.env.E2E_TMP || tmpdir(), "chromium-profile-"));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: chromiumPath,
    headless: true,
    timeout: 30_000,
    viewport: { width: 1100, height: 900 },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-quic",
      "--no-first-run",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
});

after(async () => {
  await context?.close().catch(() => {});
  await Promise.all(servers.map((s) => new Promise((r) => (s.closeAllConnections(), s.close(r)))));
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
});

// --- the tests, in order (they share the signed-in page) -------------------------

let page;

step("the page signs up, out and in with BetterAuth's browser client and the API accepts its JWT", async () => {
  page = await openPage(pageOrigin, "page");
  await page.fill("#name", user.name);
  await page.fill("#email", user.email);
  await page.fill("#password", user.password);

  await page.click("#sign-up");
  await authStatus(page, "sign up");
  // /v1/me answered with the user's claims: the JWT came from the jwt plugin
  // and chat-apiserver verified it against BetterAuth's JWKS.
  await assertSignedIn(page);

  await page.click("#sign-out");
  await authStatus(page, "sign out");
  assert.equal(await page.locator("#who").getAttribute("data-state"), "signed-out");
  assert.equal(await page.evaluate(() => window.chatE2E.jwt), null);

  await page.click("#sign-in");
  await authStatus(page, "sign in");
  await assertSignedIn(page);
  const claims = await page.evaluate(() => JSON.parse(atob(window.chatE2E.jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))));
  assert.equal(claims.iss, authURL);
  assert.equal(claims.email, user.email);
});

async function assertSignedIn(p) {
  const who = p.locator("#who");
  assert.equal(await who.getAttribute("data-state"), "signed-in");
  assert.equal(await who.textContent(), `Signed in as ${user.name} <${user.email}>`);
  assert.ok(await who.getAttribute("data-user-id"), "the API returned the user's id");
}

step("a question's answer streams into the page delta by delta, with its sources", async () => {
  assert.ok(page, "needs the signed-in page of the previous test");
  // Count DOM changes of the answer from outside the page's own code.
  await page.evaluate(() => {
    window.answerMutations = 0;
    window.renderedLengths = []; // answer length at each observer callback
    new MutationObserver((records) => {
      window.answerMutations += records.length;
      window.renderedLengths.push(document.getElementById("answer").textContent.length);
    }).observe(document.getElementById("answer"), { childList: true, characterData: true, subtree: true });
  });
  // The offline answer is generated in well under a millisecond, so on
  // loopback the whole stream can land in one network read. Chromium's own
  // network throttling (DevTools protocol) spreads it over a few seconds, so
  // whether the page renders before the stream ends is tested, not left to timing.
  const cdp = await context.newCDPSession(page);
  await cdp.send("Network.enable");
  await cdp.send("Network.emulateNetworkConditions", {
    offline: false,
    latency: 0,
    downloadThroughput: 2 * 1024,
    uploadThroughput: -1,
  });
  await page.fill("#question", question);
  await page.click("#ask");
  await page.waitForFunction(() => ["done", "error"].includes(document.getElementById("chat-status").dataset.state));
  await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
  await cdp.detach();
  const status = page.locator("#chat-status");
  assert.equal(await status.getAttribute("data-state"), "done", await status.textContent());

  const seen = await page.evaluate(() => ({ ...window.chatE2E, jwt: undefined, mutations: window.answerMutations, lengths: window.renderedLengths }));
  // SSE order: message_start, sources, delta..., done.
  assert.equal(seen.events[0], "message_start");
  assert.equal(seen.events[1], "sources");
  assert.equal(seen.events.at(-1), "done");
  assert.ok(seen.events.slice(2, -1).every((e) => e === "delta"), `events: ${seen.events.join(",")}`);
  assert.ok(seen.deltas > 1, `the answer came in ${seen.deltas} delta(s); want several`);
  // One DOM update per delta (the first replaceChildren on an empty answer records nothing).
  assert.equal(seen.mutations, seen.deltas, "each delta is rendered as it arrives");

  const shown = await page.locator("#answer").textContent();
  assert.ok(shown.trim().length > 0, "the answer is not empty");
  assert.equal(shown, seen.answerText, "the page shows the concatenated deltas");
  assert.equal(shown, seen.done.content, "what streamed is what was stored");
  assert.equal(seen.done.role, "assistant");
  assert.equal(seen.done.status, "complete");
  assert.match(shown, /CORS_ALLOWED_ORIGINS/, "the answer quotes the section that answers the question");

  const links = await page.locator("#sources li a").evaluateAll((as) => as.map((a) => ({ href: a.href, text: a.textContent })));
  assert.ok(links.length > 0, "sources are shown");
  assert.equal(links[0].href, expectedSource, "the section that answers is the first source");
  assert.equal(links[0].text, "Embedding the chat widget › Allowed origins");
  // The page showed part of the answer while the rest was still on its way.
  const partial = seen.lengths.filter((n) => n > 0 && n < shown.length).length;
  assert.ok(seen.reads > 1, `the stream arrived in ${seen.reads} network read(s)`);
  assert.ok(partial > 0, `no partial answer was rendered (lengths seen: ${seen.lengths.join(",")})`);
  console.log(
    `# streamed answer: ${seen.deltas} delta events in ${seen.reads} network reads, ` +
      `${partial} partial renders before the last delta, ${links.length} sources`,
  );
});

step("the history lists the question and the stored answer", async () => {
  assert.ok(page, "needs the page of the previous tests");
  const items = page.locator("#history li");
  const rows = await items.evaluateAll((lis) =>
    lis.map((li) => ({ role: li.dataset.role, id: li.dataset.id, content: li.querySelector(".content").textContent })),
  );
  assert.equal(rows.length, 2, JSON.stringify(rows));
  assert.deepEqual(rows.map((r) => r.role), ["user", "assistant"]);
  assert.equal(rows[0].content, question);
  const done = await page.evaluate(() => window.chatE2E.done);
  assert.equal(rows[1].id, done.id);
  assert.equal(rows[1].content, await page.locator("#answer").textContent());
  const file = await screenshot(page, "chat");
  console.log(`# screenshot ${file}`);
});

step("a page on an origin outside CORS_ALLOWED_ORIGINS is refused by the browser", async () => {
  const token = await tokenFor(user.email, user.password);

  // Control: the allowed origin reads the same call, so the refusal below is about the origin.
  const allowed = await page.evaluate(([t]) => window.chatProbe("/v1/me", t), [token]);
  assert.equal(allowed.status, 200, JSON.stringify(allowed));
  assert.equal(JSON.parse(allowed.body).email, user.email);

  const other = await openPage(otherOrigin, "other-origin");
  const probe = async (what, t) => {
    const got = await other.evaluate(([p]) => window.chatProbe(...p), [["/v1/me", t]]);
    assert.equal(got.error, "TypeError", `${what}: ${JSON.stringify(got)}`);
    assert.equal(got.status, undefined, `${what}: the page must not see the response`);
  };
  // With a token the request needs a preflight, which the API answers without
  // Access-Control-Allow-Origin: the browser never sends the token.
  const validated = await validations();
  assert.ok(validated > 0, "the allowed page's requests were counted in chatbackend_token_validations_total");
  await probe("with a valid token (preflighted)", token);
  assert.equal(await validations(), validated, "no token reached the API from the other origin");
  // A simple request (no token) is sent, but its answer is kept from the page.
  await probe("without a token (simple request)", "");
  // And it is CORS that refused them, not a network failure.
  const blocked = consoleLines["other-origin"].filter((l) => l.includes(`fetch at '${apiURL}/v1/me'`) && l.includes("blocked by CORS policy"));
  assert.equal(blocked.length, 2, consoleLines["other-origin"].join("\n"));
  // Nor does BetterAuth trust that origin: its client cannot sign in there.
  await other.fill("#email", user.email);
  await other.fill("#password", user.password);
  await other.click("#sign-in");
  await other.waitForFunction(() => ["ok", "error"].includes(document.getElementById("auth-status").dataset.state));
  assert.equal(await other.locator("#auth-status").getAttribute("data-state"), "error");
  assert.equal(await other.locator("#who").getAttribute("data-state"), "signed-out");
  await screenshot(other, "cors-refused");
  await other.close();
});

step("no uncaught errors on the pages", async () => {
  assert.deepEqual(pageErrors, []);
});
