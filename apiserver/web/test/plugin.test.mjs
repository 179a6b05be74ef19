// The Docusaurus plugin turns its options into the loader's script tag:
// the same data-* attributes a site would write by hand, no inline script.
import assert from "node:assert/strict";
import { test } from "node:test";

import plugin, { attributes, validateOptions } from "../docusaurus-plugin/index.js";

test("options become the loader's data-* attributes", () => {
  const options = validateOptions({
    options: {
      apiURL: "https://chat.example.com/",
      authURL: "https://auth.example.com",
      signInURL: "/sign-in",
      fallbackURL: "https://example.com/support",
      shortcut: "Mod+K",
      heading: "Ask Acme",
      position: "left",
      strings: { send: "Envoyer" },
    },
  });
  const { headTags } = plugin({}, options).injectHtmlTags();
  assert.deepEqual(headTags, [
    {
      tagName: "script",
      attributes: {
        src: "https://chat.example.com/widget.js",
        defer: true,
        "data-api": "https://chat.example.com",
        "data-auth": "https://auth.example.com",
        "data-sign-in": "/sign-in",
        "data-fallback": "https://example.com/support",
        "data-shortcut": "Mod+K",
        "data-heading": "Ask Acme",
        "data-position": "left",
        "data-strings": '{"send":"Envoyer"}',
      },
    },
  ]);
  assert.equal(plugin.validateOptions, validateOptions);
  assert.ok(Object.values(attributes).every((a) => a.startsWith("data-")));
});

test("bad options fail the site's build with the option's name", () => {
  const v = (options) => () => validateOptions({ options });
  assert.throws(v({ authURL: "https://a" }), /apiURL must be an http\(s\) URL/);
  assert.throws(v({ apiURL: "https://a", authURL: "javascript:alert(1)" }), /authURL must be an http\(s\) URL/);
  assert.throws(v({ apiURL: "https://a", authURL: "https://b", colour: "red" }), /unknown option "colour"/);
  assert.throws(v({ apiURL: "https://a", authURL: "https://b", position: "top" }), /position must be/);
  const o = validateOptions({ options: { apiURL: "https://a", authURL: "https://b", scriptURL: "https://cdn/widget.abc.js" } });
  assert.equal(plugin({}, o).injectHtmlTags().headTags[0].attributes.src, "https://cdn/widget.abc.js");
});
