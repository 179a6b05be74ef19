// The widget's stylesheet, scoped by its shadow root. Sites theme it with
// the custom properties on :host (set them on the chatbackend-chat
// element); the colours follow the page: Docusaurus' data-theme on <html>
// when present (mirrored to the element's theme attribute), else
// prefers-color-scheme. Both palettes meet WCAG AA contrast.
export const css = `
:host {
  --cb-font: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  --cb-bg: #ffffff;
  --cb-fg: #1c1e21;
  --cb-muted: #525860;
  --cb-border: #d0d4da;
  --cb-surface: #f3f4f6;
  --cb-accent: #1d6b47;
  --cb-accent-fg: #ffffff;
  --cb-link: #1a5fb4;
  --cb-danger: #a4161a;
  --cb-focus: #1a5fb4;
  --cb-code-bg: #f0f2f4;
  --cb-radius: 12px;
  --cb-shadow: 0 8px 28px rgba(0, 0, 0, 0.22);
  --cb-z: 2147483000;
  --cb-width: 400px;
  --cb-height: 600px;
  all: initial;
  font-family: var(--cb-font);
  color: var(--cb-fg);
}
:host([theme="dark"]) {
  --cb-bg: #1b1b1d; --cb-fg: #e6e6e8; --cb-muted: #b0b4ba; --cb-border: #44474d;
  --cb-surface: #26282b; --cb-accent: #4cc38a; --cb-accent-fg: #0b1f15; --cb-link: #8ab4f8;
  --cb-danger: #ff8a80; --cb-focus: #8ab4f8; --cb-code-bg: #2d2f33;
}
@media (prefers-color-scheme: dark) {
  :host(:not([theme="light"])) {
    --cb-bg: #1b1b1d; --cb-fg: #e6e6e8; --cb-muted: #b0b4ba; --cb-border: #44474d;
    --cb-surface: #26282b; --cb-accent: #4cc38a; --cb-accent-fg: #0b1f15; --cb-link: #8ab4f8;
    --cb-danger: #ff8a80; --cb-focus: #8ab4f8; --cb-code-bg: #2d2f33;
  }
}
* { box-sizing: border-box; }
[hidden] { display: none !important; }
.sr-only { position: absolute; width: 1px; height: 1px; padding: 0; margin: -1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; border: 0; }
button, textarea, a { font: inherit; }
:focus-visible { outline: 3px solid var(--cb-focus); outline-offset: 2px; }
button { cursor: pointer; border: 1px solid var(--cb-border); background: var(--cb-bg); color: var(--cb-fg); border-radius: 8px; padding: 6px 10px; font-size: 14px; }
button:disabled { opacity: .6; cursor: default; }
button.primary { background: var(--cb-accent); color: var(--cb-accent-fg); border-color: var(--cb-accent); }
button.icon { padding: 4px 8px; display: inline-flex; align-items: center; gap: 4px; }
header button.close { font-size: 20px; line-height: 1; padding: 2px 10px; }
a { color: var(--cb-link); }
.launcher {
  position: fixed; bottom: 20px; right: 20px; z-index: var(--cb-z);
  background: var(--cb-accent); color: var(--cb-accent-fg); border: 0; border-radius: 999px;
  padding: 12px 18px; font-size: 15px; font-weight: 600; box-shadow: var(--cb-shadow);
  transition: transform .15s ease;
}
.launcher:hover { transform: translateY(-1px); }
:host([position="left"]) .launcher, :host([position="left"]) .panel { right: auto; left: 20px; }
.panel {
  position: fixed; bottom: 80px; right: 20px; z-index: var(--cb-z);
  width: min(var(--cb-width), calc(100vw - 16px)); height: min(var(--cb-height), calc(100vh - 100px));
  display: flex; flex-direction: column; background: var(--cb-bg); color: var(--cb-fg);
  border: 1px solid var(--cb-border); border-radius: var(--cb-radius); box-shadow: var(--cb-shadow);
  font-size: 15px; line-height: 1.5; overflow: hidden;
  animation: cb-in .18s ease-out;
}
@keyframes cb-in { from { opacity: 0; transform: translateY(8px); } to { opacity: 1; transform: none; } }
@media (max-width: 480px) {
  .panel, :host([position="left"]) .panel { inset: 0; width: 100vw; height: 100dvh; border-radius: 0; border: 0; }
}
@media (prefers-reduced-motion: reduce) {
  .panel, .launcher { animation: none; transition: none; }
  .cursor { animation: none; }
}
header { display: flex; align-items: center; gap: 6px; padding: 10px 12px; border-bottom: 1px solid var(--cb-border); }
header h2 { flex: 1; margin: 0; font-size: 16px; }
.history { border-bottom: 1px solid var(--cb-border); max-height: 40%; overflow: auto; padding: 6px 12px; background: var(--cb-surface); }
.history ul { list-style: none; margin: 0; padding: 0; }
.history li button { width: 100%; text-align: left; border: 0; background: transparent; padding: 6px 4px; }
.history li button[aria-current="true"] { font-weight: 700; }
.history .more { margin: 4px 0; border: 1px solid var(--cb-border); border-radius: 6px; background: transparent; padding: 4px 8px; color: inherit; }
.messages { flex: 1; overflow-y: auto; padding: 12px; display: flex; flex-direction: column; gap: 12px; }
.welcome { color: var(--cb-muted); margin: 0; }
.msg { max-width: 100%; overflow-wrap: anywhere; }
.msg .who { font-size: 12px; font-weight: 700; color: var(--cb-muted); margin-bottom: 2px; }
.msg.user .body { background: var(--cb-surface); border-radius: 10px; padding: 8px 10px; white-space: pre-wrap; }
.msg .body > :first-child { margin-top: 0; }
.msg .body > :last-child { margin-bottom: 0; }
.msg .body pre { position: relative; background: var(--cb-code-bg); padding: 10px; padding-right: 64px; border-radius: 8px; overflow-x: auto; font-size: 13px; }
.msg .body code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .92em; background: var(--cb-code-bg); padding: 1px 4px; border-radius: 4px; }
.msg .body pre code { background: transparent; padding: 0; }
.copy { position: absolute; top: 6px; right: 6px; font-size: 12px; padding: 2px 8px; }
.cursor { display: inline-block; width: .5em; height: 1em; vertical-align: text-bottom; background: var(--cb-muted); animation: cb-blink 1s steps(2) infinite; }
@keyframes cb-blink { to { visibility: hidden; } }
.sources { margin: 8px 0 0; padding: 0; list-style: none; font-size: 13px; }
.sources li { margin: 2px 0; }
.sources .num { font-weight: 700; margin-right: 4px; }
.notice { border-left: 4px solid var(--cb-accent); background: var(--cb-surface); padding: 8px 10px; border-radius: 6px; font-size: 14px; }
.notice.error { border-color: var(--cb-danger); }
.actions { display: flex; gap: 6px; margin-top: 6px; flex-wrap: wrap; align-items: center; }
.actions button[aria-pressed="true"] { background: var(--cb-accent); color: var(--cb-accent-fg); border-color: var(--cb-accent); }
.feedback-form { display: flex; flex-direction: column; gap: 6px; margin-top: 6px; }
.feedback-form textarea { min-height: 3em; }
textarea { width: 100%; resize: none; border: 1px solid var(--cb-border); border-radius: 8px; padding: 8px; background: var(--cb-bg); color: var(--cb-fg); font-size: 15px; }
.composer { display: flex; gap: 8px; padding: 10px 12px; border-top: 1px solid var(--cb-border); align-items: flex-end; }
.composer textarea { flex: 1; max-height: 8em; }
.signin { padding: 12px; border-top: 1px solid var(--cb-border); display: flex; flex-direction: column; gap: 8px; align-items: flex-start; }
.signin a { background: var(--cb-accent); color: var(--cb-accent-fg); padding: 8px 14px; border-radius: 8px; text-decoration: none; font-weight: 600; }
.hint { font-size: 12px; color: var(--cb-muted); padding: 0 12px 8px; margin: 0; }
`;
