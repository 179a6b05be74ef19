// Builds dist/chat-client.js (the ES module) and dist/widget.js (the
// script-tag widget, an IIFE) with esbuild, minified and without source
// maps or timestamps, so the same sources always give the same bytes:
// `make web-verify` rebuilds and asks git whether dist/ changed. Prints
// each file's gzip size and fails when widget.js is over its budget.
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";

import { build } from "esbuild";

const WIDGET_BUDGET_GZIP = 60 * 1024;

const common = {
  bundle: true,
  minify: true,
  platform: "browser",
  target: ["chrome111", "firefox115", "safari16.4"],
  legalComments: "eof",
  logLevel: "warning",
  charset: "utf8",
};

await build({ ...common, entryPoints: ["src/index.ts"], format: "esm", outfile: "dist/chat-client.js" });
await build({ ...common, entryPoints: ["src/widget/index.ts"], format: "iife", outfile: "dist/widget.js" });

for (const f of ["dist/chat-client.js", "dist/widget.js"]) {
  const b = readFileSync(f);
  const gz = gzipSync(b, { level: 9 }).length;
  console.log(`${f}: ${(b.length / 1024).toFixed(1)} KiB, ${(gz / 1024).toFixed(1)} KiB gzip`);
  if (f === "dist/widget.js" && gz > WIDGET_BUDGET_GZIP) {
    console.error(`${f} is over its budget of ${WIDGET_BUDGET_GZIP / 1024} KiB gzip`);
    process.exit(1);
  }
}
