// @chatbackend/docusaurus-plugin: injects the one-line loader of the chat
// widget served by chat-apiserver into every page of a Docusaurus site.
//
//   plugins: [["@chatbackend/docusaurus-plugin", {
//     apiURL: "https://chat.example.com",      // required: chat-apiserver
//     authURL: "https://auth.example.com",     // required: the site's BetterAuth
//     signInURL: "/sign-in",                   // where signed-out readers go
//   }]]
//
// The loader is a plain <script src> tag (no inline script), so the site
// keeps a strict Content-Security-Policy; each option becomes a data-*
// attribute the widget reads (see the README's "Embedding the chat widget").

// The options and the data-* attribute each becomes, in one table so the
// plugin and the script-tag way of embedding cannot drift apart.
export const attributes = {
  apiURL: "data-api",
  authURL: "data-auth",
  signInURL: "data-sign-in",
  fallbackURL: "data-fallback",
  shortcut: "data-shortcut",
  heading: "data-heading",
  placeholder: "data-placeholder",
  position: "data-position",
  strings: "data-strings",
};

function fail(msg) {
  throw new Error(`@chatbackend/docusaurus-plugin: ${msg}`);
}

// validateOptions is Docusaurus' hook: it runs before the build and fails it
// with a message that names the option, rather than shipping a widget that
// cannot reach its API.
export function validateOptions({ options }) {
  const o = { ...options };
  for (const k of Object.keys(o)) {
    if (k !== "id" && k !== "scriptURL" && !(k in attributes)) fail(`unknown option ${JSON.stringify(k)}`);
  }
  for (const k of ["apiURL", "authURL"]) {
    if (typeof o[k] !== "string" || !/^https?:\/\/[^/]+/.test(o[k])) fail(`${k} must be an http(s) URL, got ${JSON.stringify(o[k])}`);
    o[k] = o[k].replace(/\/+$/, "");
  }
  if (o.strings !== undefined && (typeof o.strings !== "object" || o.strings === null)) fail("strings must be an object");
  if (o.position !== undefined && !["right", "left"].includes(o.position)) fail('position must be "right" or "left"');
  o.scriptURL = o.scriptURL || `${o.apiURL}/widget.js`;
  return o;
}

export default function chatbackendPlugin(_context, options) {
  const attrs = { src: options.scriptURL, defer: true };
  for (const [k, attr] of Object.entries(attributes)) {
    const v = options[k];
    if (v === undefined) continue;
    attrs[attr] = typeof v === "string" ? v : JSON.stringify(v);
  }
  return {
    name: "@chatbackend/docusaurus-plugin",
    injectHtmlTags() {
      return { headTags: [{ tagName: "script", attributes: attrs }] };
    },
  };
}

// Docusaurus looks for validateOptions on the plugin function as well as
// on the module: set both.
chatbackendPlugin.validateOptions = validateOptions;
