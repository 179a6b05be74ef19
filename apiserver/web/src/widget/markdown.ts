// Markdown for answers, which are untrusted: model output quoting docs
// that anyone may have written. marked turns Markdown into HTML with raw
// HTML escaped (shown as text, never parsed), and DOMPurify then keeps only
// harmless elements and attributes: no script, no event handlers, no
// images (a remote image in an answer would leak that it was shown), no
// inline styles, links only to http(s), mailto or relative URLs; links to
// another origin open in a new tab with rel="noopener noreferrer".
import DOMPurify from "dompurify";
import { Marked } from "marked";

import type { Source } from "../client.js";

const escapeHTML = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] as string);

const marked = new Marked({
  gfm: true,
  async: false,
  renderer: {
    html: ({ text }) => escapeHTML(text),
  },
});

const purify = DOMPurify();
purify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName !== "A") return;
  const href = node.getAttribute("href");
  if (href === null) return;
  let url: URL;
  try {
    url = new URL(href, document.baseURI);
  } catch {
    node.removeAttribute("href");
    return;
  }
  if (!["http:", "https:", "mailto:"].includes(url.protocol)) {
    node.removeAttribute("href");
    return;
  }
  if (url.origin !== location.origin) {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer");
  }
});

const sanitizeConfig = {
  RETURN_DOM_FRAGMENT: true as const,
  FORBID_TAGS: ["img", "picture", "video", "audio", "source", "svg", "math", "style", "form", "input", "button", "textarea", "select", "iframe"],
  FORBID_ATTR: ["style", "id", "class", "target"],
  ALLOW_DATA_ATTR: false,
};

// A citation marker [n] in an answer becomes a link to its source n.
export function linkCitations(md: string, sources: readonly Source[]): string {
  return md.replace(/\[(\d{1,2})\](?![([:])/g, (m, n: string) => {
    const s = sources[Number(n) - 1];
    return s ? `[\\[${n}\\]](<${s.url}>)` : m;
  });
}

export function renderMarkdown(md: string, sources: readonly Source[] = []): DocumentFragment {
  const html = marked.parse(linkCitations(md, sources)) as string;
  return purify.sanitize(html, sanitizeConfig);
}
