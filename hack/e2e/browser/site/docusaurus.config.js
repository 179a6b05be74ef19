// The docs site of the browser e2e test: hack/e2e/docs, built by Docusaurus
// with @chatbackend/docusaurus-plugin, plus a BetterAuth sign-in page
// (src/pages/sign-in.js).
//
// The API's and BetterAuth's ports change every run, but the build is
// cached (e2e.test.mjs rebuilds only when its inputs change): it is built
// with the placeholder origins of placeholders.json, which the test's static
// server replaces with the real ones as it serves each file.
import placeholders from "./placeholders.json";

const { apiURL: API_PLACEHOLDER, authURL: AUTH_PLACEHOLDER } = placeholders;

export default {
  title: "Acme Docs",
  tagline: "The e2e test's docs site",
  url: "http://127.0.0.1",
  baseUrl: "/",
  onBrokenLinks: "throw",
  favicon: undefined,
  trailingSlash: false,
  markdown: { format: "detect" },
  customFields: { apiURL: API_PLACEHOLDER, authURL: AUTH_PLACEHOLDER },
  presets: [
    [
      "classic",
      {
        docs: { path: "../../docs", routeBasePath: "docs", sidebarPath: undefined },
        blog: false,
        theme: {},
      },
    ],
  ],
  plugins: [
    [
      "@chatbackend/docusaurus-plugin",
      {
        apiURL: API_PLACEHOLDER,
        authURL: AUTH_PLACEHOLDER,
        signInURL: "/sign-in",
        fallbackURL: "https://example.com/support",
        shortcut: "Mod+/",
      },
    ],
  ],
  themeConfig: {
    navbar: {
      title: "Acme Docs",
      items: [
        { type: "doc", docId: "intro", label: "Docs", position: "left" },
        { to: "/sign-in", label: "Sign in", position: "right" },
      ],
    },
    colorMode: { respectPrefersColorScheme: true },
  },
};
