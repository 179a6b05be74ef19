// A real BetterAuth server for `make dev` and the Go tests (internal/betterauthtest).
//
// It runs better-auth with the memory adapter (nothing persists; a restart
// forgets every user and key), email+password sign-in without verification,
// the bearer plugin, and the jwt plugin, whose JWKS (GET /api/auth/jwks) and
// tokens (GET /api/auth/token) are exactly what chat-apiserver verifies in
// production.
//
// Getting a token by hand:
//   curl -s -X POST $URL/api/auth/sign-up/email -H 'content-type: application/json' \
//        -d '{"email":"a@example.com","password":"password1234","name":"A"}'   # -> {"token": SESSION, ...}
//   curl -s $URL/api/auth/token -H "Authorization: Bearer SESSION"               # -> {"token": JWT}
// (sign-in is POST /api/auth/sign-in/email with email and password.)
//
// Environment:
//   PORT                   listen port (default 3000; 0 picks a free one)
//   HOST                   listen address (default 127.0.0.1)
//   BETTER_AUTH_URL        base URL, also the tokens' iss and aud (default http://HOST:PORT)
//   BETTER_AUTH_SECRET     secret that encrypts the private keys at rest (dev default below)
//   TRUSTED_ORIGINS        comma list of browser origins allowed to call /api/auth/* with credentials
//   JWT_ALG                signing algorithm of the jwt plugin (default EdDSA; ES256, ES512, RS256, PS256, ...)
//   JWT_EXPIRATION         token lifetime as better-auth reads it ("15m" default, "10s", ...)
//   BETTERAUTH_TEST_ADMIN  "1" enables POST /__test/rotate-keys (tests only; never in production)
import http from "node:http";
// "minimal" and the per-plugin entry points load only what this server uses:
// the full "better-auth" and "better-auth/plugins" entry points take twice as
// long to import, and every Go test that needs BetterAuth pays that start-up.
import { memoryAdapter } from "better-auth/adapters/memory";
import { betterAuth } from "better-auth/minimal";
import { toNodeHandler } from "better-auth/node";
import { bearer } from "better-auth/plugins/bearer";
import { createJwk, jwt } from "better-auth/plugins/jwt";

const host = process.env.HOST || "127.0.0.1";
const requestedPort = Number.parseInt(process.env.PORT ?? "3000", 10);
if (!Number.isInteger(requestedPort) || requestedPort < 0 || requestedPort > 65535) {
  console.error(`betterauth: PORT must be a port number, got ${JSON.stringify(process.env.PORT)}`);
  process.exit(2);
}

// The curve of each algorithm the plugin can generate keys for: jose needs it
// for EdDSA and derives it itself for the others.
const alg = process.env.JWT_ALG || "EdDSA";
const keyPairConfigs = {
  EdDSA: { alg: "EdDSA", crv: "Ed25519" },
  ES256: { alg: "ES256" },
  ES512: { alg: "ES512" },
  RS256: { alg: "RS256", modulusLength: 2048 },
  PS256: { alg: "PS256", modulusLength: 2048 },
};
if (!keyPairConfigs[alg]) {
  console.error(`betterauth: JWT_ALG must be one of ${Object.keys(keyPairConfigs).join(", ")}, got ${JSON.stringify(alg)}`);
  process.exit(2);
}

const trustedOrigins = (process.env.TRUSTED_ORIGINS || "")
  .split(",")
  .map((o) => o.trim().replace(/\/+$/, ""))
  .filter(Boolean);
const testAdmin = process.env.BETTERAUTH_TEST_ADMIN === "1";

// Only a local development tool: a fixed default keeps `make dev` zero-config.
const secret = process.env.BETTER_AUTH_SECRET || "chatbackend-dev-secret-not-for-production-0123456789";

const jwtOptions = {
  jwks: { keyPairConfig: keyPairConfigs[alg] },
  jwt: { expirationTime: process.env.JWT_EXPIRATION || "15m" },
};

// Every model the server uses exists from the start, so the memory adapter
// never meets a missing table.
const db = { user: [], session: [], account: [], verification: [], jwks: [] };

function buildAuth(baseURL) {
  return betterAuth({
    baseURL,
    secret,
    database: memoryAdapter(db),
    emailAndPassword: { enabled: true, requireEmailVerification: false },
    trustedOrigins,
    telemetry: { enabled: false },
    // bearer lets scripts and non-browser clients present the session token
    // as "Authorization: Bearer ..." instead of a cookie (e.g. GET /api/auth/token).
    plugins: [jwt(jwtOptions), bearer()],
  });
}

// Cross-origin browsers (the e2e page, a docs site in dev) sign in with
// cookies, so only listed origins get credentials-enabled CORS answers.
function applyCORS(req, res) {
  const origin = req.headers.origin;
  if (!origin || !trustedOrigins.includes(origin)) return false;
  res.setHeader("Access-Control-Allow-Origin", origin);
  res.setHeader("Access-Control-Allow-Credentials", "true");
  res.setHeader("Vary", "Origin");
  res.setHeader("Access-Control-Expose-Headers", "set-auth-jwt, set-auth-token");
  if (req.method === "OPTIONS") {
    res.setHeader("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    res.setHeader("Access-Control-Allow-Headers", req.headers["access-control-request-headers"] || "Content-Type, Authorization");
    res.setHeader("Access-Control-Max-Age", "600");
  }
  return true;
}

function sendJSON(res, status, body) {
  res.writeHead(status, { "Content-Type": "application/json" });
  res.end(JSON.stringify(body));
}

// Rotation the way the plugin itself rotates: createJwk stores a new key pair
// through the adapter, the plugin signs with the newest live key from then on,
// and the old key stays in the JWKS for the grace period.
async function rotateKeys(auth) {
  const context = await auth.$context;
  const key = await createJwk({ context }, jwtOptions);
  return { kid: key.id, keys: db.jwks.length };
}

let auth;
let handler;
const server = http.createServer(async (req, res) => {
  try {
    const cors = applyCORS(req, res);
    if (req.method === "OPTIONS" && cors) {
      res.writeHead(204);
      res.end();
      return;
    }
    const path = (req.url || "/").split("?")[0];
    if (path === "/healthz") {
      sendJSON(res, 200, { ok: true });
      return;
    }
    if (path === "/__test/rotate-keys") {
      if (!testAdmin) {
        sendJSON(res, 404, { error: "not found" });
        return;
      }
      if (req.method !== "POST") {
        sendJSON(res, 405, { error: "use POST" });
        return;
      }
      sendJSON(res, 200, await rotateKeys(auth));
      return;
    }
    if (path.startsWith("/api/auth")) {
      await handler(req, res);
      return;
    }
    sendJSON(res, 404, { error: "not found" });
  } catch (err) {
    console.error("betterauth: request failed:", err);
    if (!res.headersSent) sendJSON(res, 500, { error: "internal error" });
    else res.end();
  }
});

server.on("error", (err) => {
  console.error(`betterauth: cannot listen on ${host}:${requestedPort}: ${err.message}`);
  process.exit(1);
});

server.listen(requestedPort, host, async () => {
  const { port } = server.address();
  const baseURL = (process.env.BETTER_AUTH_URL || `http://${host}:${port}`).replace(/\/+$/, "");
  auth = buildAuth(baseURL);
  handler = toNodeHandler(auth);
  // Mint the first signing key now, so the JWKS is never empty and the first
  // token request does not race the first JWKS request for key creation.
  const context = await auth.$context;
  if (db.jwks.length === 0) await createJwk({ context }, jwtOptions);
  console.log(`betterauth: baseURL ${baseURL}, alg ${alg}${testAdmin ? ", test admin endpoint on" : ""}`);
  // The one readiness line scripts and the Go harness wait for.
  console.log(`betterauth listening on http://${host}:${port}`);
});

function shutdown() {
  server.close(() => process.exit(0));
  // Keep-alive connections would hold close() open; nothing here needs draining.
  setTimeout(() => process.exit(0), 500).unref();
}
process.on("SIGINT", shutdown);
process.on("SIGTERM", shutdown);
