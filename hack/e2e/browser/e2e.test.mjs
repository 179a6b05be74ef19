// Browser end-to-end test: headless Chromium (Debian's, driven by
// playwright-core) reads a real Docusaurus site (hack/e2e/docs built with
// @chatbackend/docusaurus-plugin, site/) served on its own origin under a
// strict Content-Security-Policy. The plugin's one script tag loads the
// widget from chat-apiserver; the reader signs up on the site's BetterAuth
// page and chats through <chatbackend-chat> with the real API on a third
// origin. The same site on an origin outside CORS_ALLOWED_ORIGINS is refused.
//
// hack/e2e/run.sh starts PostgreSQL, BetterAuth and chat-apiserver, builds
// the site and runs this file with `node --test`; it passes:
//
//   E2E_AUTH_URL      BetterAuth base URL (trusts E2E_PAGE_ORIGIN only)
//   E2E_API_URL       chat-apiserver (CORS_ALLOWED_ORIGINS = E2E_PAGE_ORIGIN)
//   E2E_METRICS_URL   chat-apiserver's /metrics
//   E2E_PAGE_ORIGIN   origin this file serves the site on (http://127.0.0.1:PORT)
//   E2E_OTHER_ORIGIN  another origin serving the same site, not allowed by CORS
//   E2E_SITE          the Docusaurus build (built with placeholder origins, see site/docusaurus.config.js)
//   E2E_DATABASE_URL  chat-apiserver's database, and PSQL the psql binary: feedback is checked there
//   E2E_ARTIFACTS     directory for screenshots and the browser console log
//   E2E_TMP           where to make the browser's fresh user-data-dir (default: the OS temp dir)
//   CHROMIUM          browser binary (default /usr/bin/chromium)
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import http from "node:http";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";

import { chromium } from "playwright-core";

const placeholders = JSON.parse(readFileSync(new URL("./site/placeholders.json", import.meta.url), "utf8"));

function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run this test through hack/e2e/run.sh`);
  return v.replace(/\/+$/, "");
}
const authURL = env("E2E_AUTH_URL");
// The browser reaches chat-apiserver through pace() (below), which lets
// each SSE event through on its own; Node's own checks call it directly.
const directAPI = env("E2E_API_URL");
let apiURL; // the pacing proxy's origin, set in before()
const metricsURL = env("E2E_METRICS_URL");
const pageOrigin = env("E2E_PAGE_ORIGIN");
const otherOrigin = env("E2E_OTHER_ORIGIN");
const siteDir = env("E2E_SITE");
const databaseURL = env("E2E_DATABASE_URL");
const psql = env("PSQL");
const artifacts = env("E2E_ARTIFACTS");
const chromiumPath = process.env.CHROMIUM || "/usr/bin/chromium";
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

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
// Answered by docs/reference/untrusted.md, whose text is hostile markup.
const hostileQuestion = "What hostile markup does the untrusted content page quote?";

// --- the docs site: the Docusaurus build, served statically on its own origin ----

const types = { ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css", ".svg": "image/svg+xml", ".xml": "application/xml", ".json": "application/json", ".png": "image/png", ".ico": "image/x-icon", ".woff2": "font/woff2" };

// The strict policy a docs site would send: scripts only from itself, the
// chat API and the hashes of Docusaurus' own inline scripts, taken from the
// home page (no 'unsafe-inline', no 'unsafe-eval': an inline script in a
// docs page's content does not run); the widget needs nothing beyond
// script-src and connect-src for the API and BetterAuth (see README).
let cspHeader;
function csp() {
  if (cspHeader) return cspHeader;
  const home = readFileSync(path.join(siteDir, "index.html"), "utf8");
  const hashes = [...home.matchAll(/<script(?![^>]*\bsrc=)[^>]*>([\s\S]*?)<\/script>/g)].map(
    (m) => `'sha256-${createHash("sha256").update(m[1]).digest("base64")}'`,
  );
  cspHeader = [
    "default-src 'self'",
    `script-src 'self' ${apiURL} ${hashes.join(" ")}`,
    `connect-src 'self' ${apiURL} ${authURL}`,
    "style-src 'self' 'unsafe-inline'", // Docusaurus' own inline styles; the widget needs none
    "img-src 'self' data:",
    "object-src 'none'",
    "base-uri 'self'",
    "frame-ancestors 'none'",
  ].join("; ");
  return cspHeader;
}

function resolve(p) {
  const clean = path.normalize(decodeURIComponent(p)).replace(/^(\.\.[/\\])+/, "");
  for (const c of [clean, `${clean}.html`, path.join(clean, "index.html")]) {
    const f = path.join(siteDir, c);
    if (f.startsWith(siteDir) && existsSync(f) && statSync(f).isFile()) return f;
  }
  return null;
}

function serve(origin) {
  const { port, hostname } = new URL(origin);
  const server = http.createServer((req, res) => {
    const f = resolve(new URL(req.url, origin).pathname) ?? path.join(siteDir, "404.html");
    const type = types[path.extname(f)] ?? "application/octet-stream";
    let body = readFileSync(f);
    const headers = { "Content-Type": type, "Cache-Control": "no-store" };
    if (/\.(html|js)$/.test(f)) {
      // The build's placeholder origins become this run's.
      body = body
        .toString("utf8")
        .replaceAll(placeholders.apiURL, apiURL)
        .replaceAll(placeholders.authURL, authURL);
      if (f.endsWith(".html")) headers["Content-Security-Policy"] = csp();
    }
    res.writeHead(f.endsWith("404.html") ? 404 : 200, headers).end(body);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(Number(port), hostname, () => resolve(server));
  });
}

// --- the API, as the browser reaches it -----------------------------------------

// pace proxies the browser's requests to chat-apiserver unchanged, but
// writes an SSE response one event at a time, EVENT_GAP_MS apart. The
// offline answer is generated in well under a millisecond, so on loopback
// the whole stream can land in one network read; spread out, the widget's
// rendering before the stream ends is tested, not left to timing (Chromium's
// network throttling, used before, batches a throttled body into a few
// reads of its own choosing, and one read in CI carried the whole answer).
const EVENT_GAP_MS = 25;
function pace() {
  const upstream = new URL(directAPI);
  const server = http.createServer((req, res) => {
    const { "accept-encoding": _, ...headers } = req.headers; // plain bytes, so events can be told apart
    const out = http.request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers, timeout: TEST_TIMEOUT_MS },
      async (up) => {
        res.writeHead(up.statusCode, up.headers);
        if (!String(up.headers["content-type"]).startsWith("text/event-stream")) {
          up.pipe(res);
          return;
        }
        let buf = "";
        up.setEncoding("utf8");
        for await (const chunk of up) {
          buf += chunk;
          let end;
          while ((end = buf.indexOf("\n\n")) >= 0) {
            res.write(buf.slice(0, end + 2));
            buf = buf.slice(end + 2);
            await new Promise((r) => setTimeout(r, EVENT_GAP_MS));
          }
        }
        res.end(buf);
      },
    );
    out.on("timeout", () => out.destroy(new Error("upstream timed out")));
    out.on("error", () => res.destroy());
    res.on("close", () => out.destroy());
    req.pipe(out);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve(server));
  });
}

// --- browser --------------------------------------------------------------------

let context; // persistent context of a fresh user-data-dir
let userDataDir;
let servers = [];
const pageErrors = [];
const cspViolations = [];
const consoleLines = {}; // page name -> console messages

async function newPage(name, url, opts = {}) {
  const page = context.pages().find((p) => p.url() === "about:blank") ?? (await context.newPage());
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  if (opts.viewport) await page.setViewportSize(opts.viewport);
  const log = path.join(artifacts, "browser-console.log");
  consoleLines[name] = [];
  page.on("console", (m) => {
    consoleLines[name].push(m.text());
    appendFileSync(log, `[${name}] ${m.type()}: ${m.text()}\n`);
    if (/Content Security Policy/.test(m.text())) cspViolations.push({ page: name, text: m.text() });
  });
  page.on("pageerror", (err) => {
    pageErrors.push({ page: name, text: err.message });
    appendFileSync(log, `[${name}] pageerror: ${err.stack || err.message}\n`);
  });
  // The widget is a deferred script: it is there by DOMContentLoaded. Not
  // "load", which waits for every asset of the page (a busy CI machine).
  await page.goto(url, { waitUntil: "domcontentloaded", timeout: 2 * STEP_TIMEOUT_MS });
  await widget(page).launcher.waitFor();
  return page;
}

// The widget's parts; Playwright's CSS locators pierce its open shadow root.
function widget(page) {
  const w = (s) => page.locator(`chatbackend-chat ${s}`);
  return {
    launcher: w(".launcher"),
    panel: w(".panel"),
    input: w("textarea#question"),
    stop: w('form.composer button[type="button"]'),
    signIn: w(".signin a"),
    messages: w(".messages"),
    lastAnswer: w(".msg.assistant").last(),
    history: w("header button").nth(0),
    newChat: w("header button").nth(1),
  };
}

// answered waits until the last answer in the widget is no longer streaming.
async function answered(page) {
  await page.locator("chatbackend-chat .msg.assistant").last().waitFor();
  await page.waitForFunction(() => {
    const a = [...document.querySelector("chatbackend-chat").shadowRoot.querySelectorAll(".msg.assistant")].pop();
    return a && !a.hasAttribute("aria-busy");
  });
}

async function screenshot(page, name) {
  const file = path.join(artifacts, `${name}.png`);
  await page.screenshot({ path: file, timeout: STEP_TIMEOUT_MS });
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

// tokenFor signs in from Node (no browser, so no CORS) and returns a JWT of
// the jwt plugin: the API checks below use it.
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

async function api(pathname, token) {
  const res = await fetch(directAPI + pathname, { headers: { Authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(STEP_TIMEOUT_MS) });
  assert.equal(res.status, 200, `${pathname}: ${await res.clone().text()}`);
  return res.json();
}

// validations sums chatbackend_token_validations_total over its labels: it
// moves whenever a request with a token reaches the API's auth middleware.
async function validations() {
  const res = await fetch(metricsURL, { signal: AbortSignal.timeout(STEP_TIMEOUT_MS) });
  let sum = 0;
  for (const line of (await res.text()).split("\n")) {
    if (line.startsWith("chatbackend_token_validations_total{")) sum += Number(line.split(" ").pop());
  }
  return sum;
}

// axe audits the open widget (its shadow tree included) and returns the
// serious and critical violations.
async function axe(page) {
  const result = await page.evaluate(`(() => { ${axeSource}; return axe.run({ include: [["chatbackend-chat"]] }, { resultTypes: ["violations"] }); })()`);
  return result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
}

before(async () => {
  mkdirSync(artifacts, { recursive: true });
  writeFileSync(path.join(artifacts, "browser-console.log"), "");
  assert.ok(existsSync(path.join(siteDir, "docs.html")), `no Docusaurus build in ${siteDir}`);
  const proxy = await pace();
  apiURL = `http://127.0.0.1:${proxy.address().port}`;
  servers = [proxy, await serve(pageOrigin), await serve(otherOrigin)];
  // run.sh passes E2E_TMP, so it can tell whether a browser outlived the test.
  userDataDir = mkdtempSync(path.join(process.env.E2E_TMP || tmpdir(), "chromium-profile-"));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: chromiumPath,
    headless: true,
    timeout: 30_000,
    viewport: { width: 1100, height: 800 },
    colorScheme: "light",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  await context?.close().catch(() => {});
  await Promise.all(servers.map((s) => new Promise((r) => (s.closeAllConnections(), s.close(r)))));
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
});

// --- the tests, in order (they share the signed-in page) -------------------------

let page;

step("the Docusaurus site loads the widget from chat-apiserver with the plugin's one script tag", async () => {
  page = await newPage("site", `${pageOrigin}/docs/guides/embedding-the-widget`);
  const tag = await page.evaluate(() => {
    const s = document.querySelector('script[src$="/widget.js"]');
    return s && { src: s.src, api: s.dataset.api, auth: s.dataset.auth, defer: s.defer };
  });
  assert.deepEqual(tag, { src: `${apiURL}/widget.js`, api: apiURL, auth: authURL, defer: true });
  const w = widget(page);
  assert.equal(await w.panel.isHidden(), true, "the panel starts closed");
  assert.equal(await w.launcher.getAttribute("aria-expanded"), "false");
});

step("signed out, the keyboard opens the panel; the sign-in call to action returns to the open panel", async () => {
  const w = widget(page);
  await page.keyboard.press("Control+/");
  await w.panel.waitFor();
  assert.equal(await w.launcher.getAttribute("aria-expanded"), "true");
  await w.signIn.waitFor();
  // Focus is in the panel, on the call to action, and Tab stays in the panel.
  assert.equal(await page.evaluate(() => document.querySelector("chatbackend-chat").shadowRoot.activeElement?.textContent), "Sign in");
  for (let i = 0; i < 6; i++) await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement?.tagName), "CHATBACKEND-CHAT", "Tab does not leave the open panel");
  // Escape closes it and gives focus back to the launcher.
  await page.keyboard.press("Escape");
  await w.panel.waitFor({ state: "hidden" });
  assert.equal(await page.evaluate(() => document.querySelector("chatbackend-chat").shadowRoot.activeElement?.className), "launcher");
  await page.keyboard.press("Enter");
  await w.signIn.waitFor();
  const href = new URL(await w.signIn.getAttribute("href"));
  assert.equal(href.origin + href.pathname, `${pageOrigin}/sign-in`);
  assert.equal(href.searchParams.get("callbackURL"), `${pageOrigin}/docs/guides/embedding-the-widget`);

  await w.signIn.focus();
  await Promise.all([page.waitForURL(`${pageOrigin}/sign-in**`, { waitUntil: "domcontentloaded" }), page.keyboard.press("Enter")]);
  await page.locator('form[data-ready="true"]').waitFor({ timeout: 2 * STEP_TIMEOUT_MS }); // hydrated by React
  await page.fill("#name", user.name);
  await page.fill("#email", user.email);
  await page.fill("#password", user.password);
  await Promise.all([page.waitForURL(`${pageOrigin}/docs/guides/embedding-the-widget`, { waitUntil: "domcontentloaded" }), page.click("#sign-up")]);
  // Back on the page, the panel is open again, now with the question box.
  await w.input.waitFor();
  assert.equal(await w.signIn.isHidden(), true);
});

step("an answer streams into the widget as rendered Markdown, with numbered sources", async () => {
  const w = widget(page);
  await page.evaluate(() => {
    const root = document.querySelector("chatbackend-chat").shadowRoot;
    window.renders = []; // the answer's text length, and whether it was still streaming, at each DOM change
    new MutationObserver(() => {
      const a = [...root.querySelectorAll(".msg.assistant")].pop();
      if (a) window.renders.push({ len: a.querySelector(".body").textContent.length, busy: a.getAttribute("aria-busy") === "true" });
    }).observe(root.querySelector(".messages"), { childList: true, characterData: true, subtree: true });
  });
  // pace() lets the answer's events through one at a time.
  await w.input.fill(question);
  await w.input.press("Enter");
  await answered(page);

  const answer = w.lastAnswer;
  assert.equal(await answer.locator(".notice.error").count(), 0, await answer.textContent());
  const body = answer.locator(".body");
  const text = await body.textContent();
  assert.match(text, /CORS_ALLOWED_ORIGINS/, "the answer quotes the section that answers the question");
  // Markdown rendered, not shown raw: `CORS_ALLOWED_ORIGINS` is a <code>, no backticks left.
  assert.ok(await body.locator("code", { hasText: "CORS_ALLOWED_ORIGINS" }).count(), await body.innerHTML());
  assert.ok(!text.includes("`"), `raw Markdown in the answer: ${text}`);
  const renders = await page.evaluate(() => window.renders);
  const partial = renders.filter((r) => r.busy && r.len > 0 && r.len < text.length).length;
  assert.ok(partial > 0, `no partial answer was rendered while streaming (${JSON.stringify(renders.slice(0, 20))})`);

  const sources = await answer.locator(".sources li").evaluateAll((lis) => lis.map((li) => ({ num: li.querySelector(".num").textContent, href: li.querySelector("a").href, text: li.querySelector("a").textContent })));
  assert.ok(sources.length > 0, "sources are shown");
  assert.deepEqual(sources[0], { num: "[1]", href: expectedSource, text: "Embedding the chat widget › Allowed origins" });
  assert.ok(await answer.locator('button[aria-label="Helpful"]').count(), "feedback buttons");
  console.log(`# streamed answer: ${renders.length} DOM changes, ${partial} partial renders before the end, ${sources.length} sources`);
  await screenshot(page, "widget-light");
});

step("axe-core finds no serious or critical accessibility violation in the widget, light or dark", async () => {
  assert.deepEqual(await axe(page), []);
  // Docusaurus follows the OS setting (respectPrefersColorScheme); the widget follows Docusaurus.
  await page.emulateMedia({ colorScheme: "dark" });
  await page.waitForFunction(() => document.querySelector("chatbackend-chat").getAttribute("theme") === "dark");
  assert.deepEqual(await axe(page), []);
  await screenshot(page, "widget-dark");
  await page.emulateMedia({ colorScheme: "light" });
});

step("feedback with a comment is stored", async () => {
  const w = widget(page);
  const answer = w.lastAnswer;
  const messageID = await answer.getAttribute("data-message-id");
  await answer.locator('button[aria-label="Not helpful"]').click();
  await answer.locator(".feedback-form textarea").fill("Please mention ports.");
  const [res] = await Promise.all([
    page.waitForResponse((r) => r.url() === `${apiURL}/v1/messages/${messageID}/feedback` && r.request().postData()?.includes("ports")),
    answer.locator(".feedback-form button").click(),
  ]);
  assert.equal(res.status(), 200);
  assert.deepEqual({ ...(await res.json()), updated_at: undefined }, { message_id: messageID, rating: "down", comment: "Please mention ports.", updated_at: undefined });
  await answer.getByText("Thanks for the feedback.").waitFor();
  const row = execFileSync(psql, ["-Atq", databaseURL, "-c", `SELECT rating || '|' || comment FROM message_feedback WHERE message_id = '${messageID}'`], { encoding: "utf8", timeout: STEP_TIMEOUT_MS }).trim();
  assert.equal(row, "down|Please mention ports.");
});

step("a citation link lands on its section of the docs; the conversation is there on the next page", async () => {
  const w = widget(page);
  // The section is on this page: the panel closes and the page scrolls to it.
  await w.lastAnswer.locator(".sources li a").first().click();
  await page.waitForURL(expectedSource);
  await w.panel.waitFor({ state: "hidden" });
  await page.waitForFunction(() => {
    const r = document.getElementById("allowed-origins")?.getBoundingClientRect();
    return r && r.top >= 0 && r.top < window.innerHeight;
  });

  await page.goto(`${pageOrigin}/docs/reference/pricing`, { waitUntil: "domcontentloaded", timeout: 2 * STEP_TIMEOUT_MS });
  await w.launcher.waitFor();
  await page.keyboard.press("Control+/");
  await w.lastAnswer.locator(".sources").waitFor();
  const token = await tokenFor(user.email, user.password);
  const { items } = await api("/v1/conversations", token);
  assert.equal(items.length, 1);
  const { items: msgs } = await api(`/v1/conversations/${items[0].id}/messages`, token);
  assert.deepEqual(msgs.map((m) => m.role), ["user", "assistant"]);
  assert.equal(await w.lastAnswer.getAttribute("data-message-id"), msgs[1].id);

  // History lists it; New chat starts afresh.
  await w.history.click();
  await page.locator("chatbackend-chat .history li button").first().waitFor();
  assert.equal(await page.locator("chatbackend-chat .history li button").count(), 1);
  await w.newChat.click();
  await page.locator("chatbackend-chat .welcome").waitFor();
});

step("a question the docs do not cover: the widget says so, cites nothing and offers the fallback link", async () => {
  const w = widget(page);
  await w.input.fill("What is the airspeed velocity of an unladen swallow?");
  await w.input.press("Enter");
  await answered(page);
  const answer = w.lastAnswer;
  const notice = answer.locator(".notice.not-covered");
  await notice.waitFor();
  assert.equal(await notice.locator("a").getAttribute("href"), "https://example.com/support");
  assert.equal(await answer.locator(".sources li").count(), 0, "an answer the docs do not cover cites nothing");
});

step("Stop asks the server to stop the answer, ends the stream and keeps what was shown", async () => {
  const w = widget(page);
  await w.input.fill(question);
  await w.input.press("Enter");
  // pace() holds the answer's events back, so the reader sees it stream.
  await page.waitForFunction(() => {
    const a = [...document.querySelector("chatbackend-chat").shadowRoot.querySelectorAll(".msg.assistant")].pop();
    return a?.getAttribute("aria-busy") === "true" && a.dataset.messageId && a.querySelector(".body").textContent.length > 20;
  });
  const [stop] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === "POST" && /\/messages\/[^/]+\/stop$/.test(r.url())),
    w.stop.click(),
  ]);
  // The offline answer was generated before the click: the server says
  // it already finished, and the widget stops reading the stream itself.
  assert.ok([200, 409].includes(stop.status()), `stop answered ${stop.status()}`);
  await answered(page);
  const answer = w.lastAnswer;
  await answer.getByText("Stopped. The answer so far is kept.").waitFor();
  const shown = await answer.locator(".body").textContent();
  assert.ok(shown.length > 0, "the text shown before Stop stays");
  assert.equal(await w.stop.isHidden(), true);
  assert.equal(await w.input.isEditable(), true, "the reader can ask again");
});

step("History lists conversations a page at a time, older ones on demand", async () => {
  const w = widget(page);
  const sql = (q) => execFileSync(psql, ["-Atq", databaseURL, "-c", q], { encoding: "utf8", timeout: STEP_TIMEOUT_MS }).trim();
  const email = user.email.replaceAll("'", "''");
  sql(`INSERT INTO conversations (user_id, title, updated_at)
       SELECT id, 'Older ' || n, now() - n * interval '1 hour' FROM users, generate_series(1, 25) n WHERE email = '${email}'`);
  const total = Number(sql(`SELECT count(*) FROM conversations c JOIN users u ON u.id = c.user_id WHERE u.email = '${email}' AND c.is_active`));
  const items = page.locator("chatbackend-chat .history li button");
  const more = page.locator("chatbackend-chat .history .more");
  await w.history.click();
  await more.waitFor();
  assert.equal(await items.count(), 20);
  await more.click();
  await page.waitForFunction((n) => document.querySelector("chatbackend-chat").shadowRoot.querySelectorAll(".history li button").length === n, total);
  assert.equal(await more.count(), 0, "no older conversations left");
  assert.equal(await items.last().textContent(), "Older 25");
  await w.history.click();
});

step("hostile markup in the docs executes nothing, on the docs page or in the widget", async () => {
  // Docusaurus renders the page's raw HTML: the site's CSP blocks its
  // inline script and React drops the string onerror handler. The widget,
  // which quotes the same text, must not run it either.
  const hostile = await newPage("hostile", `${pageOrigin}/docs/reference/untrusted`);
  const w = widget(hostile);
  await hostile.keyboard.press("Control+/");
  await w.input.waitFor();
  await w.input.fill(hostileQuestion);
  await w.input.press("Enter");
  await answered(hostile);
  const answer = w.lastAnswer;
  const text = await answer.locator(".body").textContent();
  assert.match(text, /harmless-looking link/, `the answer quotes the hostile section: ${text}`);
  const found = await answer.evaluate((a) => ({
    active: a.querySelectorAll("img, script, iframe, object, embed").length,
    handlers: [...a.querySelectorAll("*")].filter((el) => [...el.attributes].some((at) => at.name.startsWith("on"))).length,
    badLinks: [...a.querySelectorAll("a[href]")].filter((l) => !/^https?:/.test(l.href)).map((l) => l.getAttribute("href")),
  }));
  assert.deepEqual(found, { active: 0, handlers: 0, badLinks: [] });
  // Click the link whose javascript: URL the sanitizer removed, then look for the payloads' mark.
  const defused = answer.locator(".body a:not([href])", { hasText: "harmless-looking link" });
  assert.equal(await defused.count(), 1, await answer.locator(".body").innerHTML());
  await defused.click();
  await hostile.waitForTimeout(300);
  assert.equal(await hostile.evaluate(() => window.__chatbackendPwned), undefined);
  await hostile.close();
  // What the page itself refused: only the docs content's own inline script and handler.
  assert.ok(cspViolations.filter((v) => v.page === "hostile").every((v) => /inline script/.test(v.text)), JSON.stringify(cspViolations));
  assert.ok(pageErrors.filter((e) => e.page === "hostile").every((e) => /React error #231.*onError/.test(e.text)), JSON.stringify(pageErrors));
});

step("the widget is usable at 360 px wide", async () => {
  const mobile = await newPage("mobile", `${pageOrigin}/docs/guides/embedding-the-widget`, { viewport: { width: 360, height: 740 } });
  const w = widget(mobile);
  await w.launcher.click();
  await w.input.waitFor();
  const box = await w.panel.boundingBox();
  assert.ok(box.width <= 360 && box.x >= 0, `panel ${JSON.stringify(box)}`);
  const send = await mobile.locator("chatbackend-chat .composer button").first().boundingBox();
  assert.ok(send.x + send.width <= 360, "the send button is on screen");
  await screenshot(mobile, "widget-mobile");
  await mobile.close();
});

step("the same site on an origin outside CORS_ALLOWED_ORIGINS is refused by the browser", async () => {
  const token = await tokenFor(user.email, user.password);
  const probe = (p, t) =>
    p.evaluate(
      async ([url, tok]) => {
        try {
          const res = await fetch(url, { headers: tok ? { Authorization: `Bearer ${tok}` } : {} });
          return { status: res.status, body: await res.text() };
        } catch (err) {
          return { error: err.name };
        }
      },
      [`${apiURL}/v1/me`, t],
    );
  // Control: the allowed origin reads the same call.
  const allowed = await probe(page, token);
  assert.equal(allowed.status, 200, JSON.stringify(allowed));

  const other = await newPage("other-origin", `${otherOrigin}/docs/guides/embedding-the-widget`);
  const validated = await validations();
  assert.ok(validated > 0);
  assert.deepEqual(await probe(other, token), { error: "TypeError" }, "with a token (preflighted)");
  assert.equal(await validations(), validated, "no token reached the API from the other origin");
  assert.deepEqual(await probe(other, ""), { error: "TypeError" }, "without a token (simple request)");
  const blocked = consoleLines["other-origin"].filter((l) => l.includes(`fetch at '${apiURL}/v1/me'`) && l.includes("blocked by CORS policy"));
  assert.equal(blocked.length, 2, consoleLines["other-origin"].join("\n"));
  // BetterAuth does not trust that origin either: the widget there gets no token.
  await other.keyboard.press("Control+/");
  await other.locator("chatbackend-chat .notice.error").waitFor();
  await screenshot(other, "cors-refused");
  await other.close();
});

step("no uncaught errors and no Content-Security-Policy violations (but the hostile page's own)", async () => {
  assert.deepEqual(pageErrors.filter((e) => e.page !== "hostile"), []);
  assert.deepEqual(cspViolations.filter((v) => v.page !== "hostile"), []);
});
