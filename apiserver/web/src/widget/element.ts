// <chatbackend-chat>: the chat widget as a custom element with a shadow
// root, no framework. A launcher button opens a dialog panel: the
// conversation (streamed answers rendered as sanitized Markdown, numbered
// sources, feedback, stop, regenerate), the reader's past conversations,
// and a sign-in call to action when BetterAuth has no session.
//
// Attributes (the loader copies them from its script tag's data-*):
//   api        chat-apiserver's base URL (required)
//   auth       the site's BetterAuth base URL (required unless tokenGetter is set)
//   sign-in    the sign-in page; the reader comes back to the open panel
//              (callbackURL parameter, and the panel reopens after the round trip)
//   fallback   where "the docs don't cover this" points (e.g. a support page)
//   shortcut   keyboard shortcut that opens and closes the panel (default "Mod+/")
//   heading    the panel's heading (default: the strings table's title)
//   placeholder the question box's placeholder
//   position   "right" (default) or "left"
//   strings    JSON object overriding entries of the strings table
//   theme      "light" or "dark"; set from Docusaurus' data-theme when the page has it
import { ChatClient, ChatError, type Message, type Source, type TokenGetter } from "../client.js";
import { betterAuthToken } from "../auth.js";
import { renderMarkdown } from "./markdown.js";
import { defaultStrings, format, type Strings } from "./strings.js";
import { css } from "./styles.js";

// sessionStorage keys: the panel reopens after a sign-in round trip (on the
// page it was opened on, within REOPEN_MS: the sign-in page itself has the
// widget too), and a conversation survives navigation between docs pages.
const REOPEN_KEY = "chatbackend-chat:reopen";
const REOPEN_MS = 30 * 60_000;
const CONVERSATION_KEY = "chatbackend-chat:conversation";
// The server ends a stopped stream within about half a second; past this
// the widget stops reading it anyway.
const STOP_TIMEOUT_MS = 3_000;
// History lists conversations a page at a time; a conversation is loaded
// whole, up to MAX_MESSAGE_PAGES pages of 100 messages.
const HISTORY_PAGE = 20;
const MAX_MESSAGE_PAGES = 50;

const FOCUSABLE = 'a[href], button:not([disabled]), textarea:not([disabled]), input:not([disabled]), [tabindex]:not([tabindex="-1"])';

function h<K extends keyof HTMLElementTagNameMap>(tag: K, props: Record<string, string> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "text") el.textContent = v;
    else el.setAttribute(k, v);
  }
  el.append(...children);
  return el;
}

// thumb draws the feedback icon (Material's thumb_up, Apache-2.0) as SVG
// built in the DOM: no emoji font needed, no markup parsed.
const SVG = "http://www.w3.org/2000/svg";
function thumb(down: boolean): SVGSVGElement {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("width", "16");
  svg.setAttribute("height", "16");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("fill", "currentColor");
  if (down) svg.setAttribute("transform", "rotate(180)");
  const path = document.createElementNS(SVG, "path");
  path.setAttribute(
    "d",
    "M1 21h4V9H1v12zm22-11c0-1.1-.9-2-2-2h-6.31l.95-4.57.03-.32c0-.41-.17-.79-.44-1.06L14.17 1 7.59 7.59C7.22 7.95 7 8.45 7 9v10c0 1.1.9 2 2 2h9c.83 0 1.54-.5 1.84-1.22l3.02-7.05c.09-.23.14-.47.14-.73v-2z",
  );
  svg.append(path);
  return svg;
}

// matchShortcut: "Mod+/" is Ctrl on Windows and Linux, Cmd on macOS.
export function matchShortcut(spec: string, e: KeyboardEvent): boolean {
  const parts = spec.split("+").map((p) => p.trim().toLowerCase());
  const key = parts.pop();
  if (!key || e.key.toLowerCase() !== key) return false;
  const mac = /mac|iphone|ipad/i.test(navigator.platform);
  const want = {
    ctrl: parts.includes("ctrl") || (parts.includes("mod") && !mac),
    meta: parts.includes("meta") || parts.includes("cmd") || (parts.includes("mod") && mac),
    alt: parts.includes("alt"),
    shift: parts.includes("shift"),
  };
  return e.ctrlKey === want.ctrl && e.metaKey === want.meta && e.altKey === want.alt && e.shiftKey === want.shift;
}

interface Turn {
  question: string;
  el: HTMLElement;
}

export class ChatbackendChat extends HTMLElement {
  static observedAttributes = ["strings", "position"];

  // A site with its own sign-in sets this instead of the auth attribute.
  tokenGetter?: TokenGetter;

  private root: ShadowRoot;
  private s: Strings = { ...defaultStrings };
  private client?: ChatClient;
  private token?: TokenGetter;
  private conversationID: string | null = sessionStorage.getItem(CONVERSATION_KEY);
  private controller: AbortController | null = null;
  private lastTurn: Turn | null = null;
  private loadedConversation: string | null = null;
  private themeObserver?: MutationObserver;
  private els!: {
    launcher: HTMLButtonElement;
    panel: HTMLElement;
    title: HTMLElement;
    historyBtn: HTMLButtonElement;
    newBtn: HTMLButtonElement;
    closeBtn: HTMLButtonElement;
    history: HTMLElement;
    messages: HTMLElement;
    status: HTMLElement;
    signin: HTMLElement;
    signinText: HTMLElement;
    signinLink: HTMLAnchorElement;
    composer: HTMLFormElement;
    input: HTMLTextAreaElement;
    inputLabel: HTMLLabelElement;
    send: HTMLButtonElement;
    stop: HTMLButtonElement;
    hint: HTMLElement;
  };

  constructor() {
    super();
    this.root = this.attachShadow({ mode: "open" });
    // Constructable stylesheets are not inline styles: a page whose CSP has
    // no 'unsafe-inline' in style-src still styles the widget.
    if ("adoptedStyleSheets" in Document.prototype && "replaceSync" in CSSStyleSheet.prototype) {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(css);
      this.root.adoptedStyleSheets = [sheet];
    } else {
      this.root.append(h("style", { text: css }));
    }
  }

  connectedCallback(): void {
    if (this.els) return;
    this.readStrings();
    this.build();
    this.followTheme();
    document.addEventListener("keydown", this.onDocumentKey);
    if (this.shouldReopen()) {
      sessionStorage.removeItem(REOPEN_KEY);
      void this.open();
    }
  }

  disconnectedCallback(): void {
    document.removeEventListener("keydown", this.onDocumentKey);
    this.themeObserver?.disconnect();
    this.controller?.abort();
  }

  attributeChangedCallback(name: string): void {
    if (name === "strings" && this.els) {
      this.readStrings();
      this.applyStrings();
    }
  }

  private shouldReopen(): boolean {
    try {
      const { url, at } = JSON.parse(sessionStorage.getItem(REOPEN_KEY) ?? "null") as { url: string; at: number };
      return url === location.href.split("#")[0] && Date.now() - at < REOPEN_MS;
    } catch {
      return false;
    }
  }

  get isOpen(): boolean {
    return !!this.els && !this.els.panel.hidden;
  }

  private readStrings(): void {
    let custom: Partial<Strings> = {};
    try {
      custom = JSON.parse(this.getAttribute("strings") || "{}") as Partial<Strings>;
    } catch {
      console.warn("chatbackend-chat: the strings attribute is not JSON; using the defaults");
    }
    this.s = { ...defaultStrings, ...custom };
  }

  private getClient(): ChatClient {
    if (!this.client) {
      const api = this.getAttribute("api");
      if (!api) throw new ChatError(0, "protocol", "chatbackend-chat needs the api attribute (data-api on the script tag)");
      const auth = this.getAttribute("auth");
      const getToken = this.tokenGetter ?? (auth ? betterAuthToken(auth) : null);
      if (!getToken) throw new ChatError(0, "protocol", "chatbackend-chat needs the auth attribute (data-auth) or a tokenGetter");
      this.token = getToken;
      this.client = new ChatClient({ apiURL: api, getToken });
    }
    return this.client;
  }

  private build(): void {
    const launcher = h("button", { class: "launcher", part: "launcher", type: "button", "aria-haspopup": "dialog", "aria-expanded": "false", "aria-controls": "panel" });
    const title = h("h2", { id: "title" });
    const historyBtn = h("button", { type: "button", class: "icon", "aria-expanded": "false", "aria-controls": "history" });
    const newBtn = h("button", { type: "button", class: "icon" });
    const closeBtn = h("button", { type: "button", class: "icon close" });
    const history = h("nav", { id: "history", class: "history", hidden: "" });
    const messages = h("div", { class: "messages", role: "log", "aria-live": "polite", "aria-relevant": "additions" });
    const status = h("div", { class: "sr-only", role: "status", "aria-live": "polite" });
    const signinText = h("p");
    const signinLink = h("a", { href: "#" });
    const signin = h("div", { class: "signin", hidden: "" }, signinText, signinLink);
    const inputLabel = h("label", { class: "sr-only", for: "question" });
    const input = h("textarea", { id: "question", rows: "2", maxlength: "4000" });
    const send = h("button", { type: "submit", class: "primary" });
    const stop = h("button", { type: "button", hidden: "" });
    const composer = h("form", { class: "composer" }, inputLabel, input, send, stop);
    const hint = h("p", { class: "hint" });
    const panel = h(
      "div",
      { id: "panel", class: "panel", part: "panel", role: "dialog", "aria-modal": "true", "aria-labelledby": "title", hidden: "" },
      h("header", {}, title, historyBtn, newBtn, closeBtn),
      history,
      messages,
      status,
      signin,
      composer,
      hint,
    );
    this.els = { launcher, panel, title, historyBtn, newBtn, closeBtn, history, messages, status, signin, signinText, signinLink, composer, input, inputLabel, send, stop, hint };
    this.applyStrings();
    this.root.append(launcher, panel);

    launcher.addEventListener("click", () => void (this.isOpen ? this.close() : this.open()));
    closeBtn.addEventListener("click", () => this.close());
    newBtn.addEventListener("click", () => this.newChat());
    historyBtn.addEventListener("click", () => void this.toggleHistory());
    stop.addEventListener("click", () => void this.stop());
    composer.addEventListener("submit", (e) => {
      e.preventDefault();
      const q = input.value.trim();
      if (q && !this.controller) {
        input.value = "";
        void this.ask(q);
      }
    });
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        composer.requestSubmit();
      }
    });
    panel.addEventListener("keydown", (e) => this.onPanelKey(e));
    signinLink.addEventListener("click", () =>
      sessionStorage.setItem(REOPEN_KEY, JSON.stringify({ url: location.href.split("#")[0], at: Date.now() })),
    );
  }

  private applyStrings(): void {
    const { s, els } = this;
    els.launcher.textContent = s.launcher;
    els.title.textContent = s.title;
    els.historyBtn.textContent = s.history;
    els.newBtn.textContent = s.newChat;
    els.closeBtn.textContent = "×";
    els.closeBtn.setAttribute("aria-label", s.close);
    els.inputLabel.textContent = s.placeholder;
    els.input.placeholder = this.getAttribute("placeholder") || s.placeholder;
    els.send.textContent = s.send;
    els.stop.textContent = s.stop;
    els.signinText.textContent = s.signInPrompt;
    els.signinLink.textContent = s.signIn;
    els.hint.textContent = format(s.shortcutHint, { shortcut: this.shortcut.replace("Mod", /mac/i.test(navigator.platform) ? "⌘" : "Ctrl") });
    const custom = this.getAttribute("heading");
    if (custom) els.title.textContent = custom;
  }

  private get shortcut(): string {
    return this.getAttribute("shortcut") || "Mod+/";
  }

  // Docusaurus sets data-theme="dark|light" on <html>; the element mirrors
  // it so the palette follows the site's toggle, not only the OS setting.
  private followTheme(): void {
    const html = document.documentElement;
    const sync = () => {
      const t = html.getAttribute("data-theme");
      if (t === "dark" || t === "light") this.setAttribute("theme", t);
    };
    sync();
    this.themeObserver = new MutationObserver(sync);
    this.themeObserver.observe(html, { attributes: true, attributeFilter: ["data-theme"] });
  }

  private onDocumentKey = (e: KeyboardEvent): void => {
    if (matchShortcut(this.shortcut, e)) {
      e.preventDefault();
      void (this.isOpen ? this.close() : this.open());
    }
  };

  // The panel is modal: Tab and Shift+Tab cycle inside it, Escape closes it.
  private onPanelKey(e: KeyboardEvent): void {
    if (e.key === "Escape") {
      e.preventDefault();
      this.close();
      return;
    }
    if (e.key !== "Tab") return;
    const items = [...this.els.panel.querySelectorAll<HTMLElement>(FOCUSABLE)].filter((el) => !el.closest("[hidden]"));
    if (!items.length) return;
    const first = items[0];
    const last = items[items.length - 1];
    const active = this.root.activeElement;
    if (e.shiftKey && (active === first || !this.els.panel.contains(active))) {
      e.preventDefault();
      last.focus();
    } else if (!e.shiftKey && active === last) {
      e.preventDefault();
      first.focus();
    }
  }

  async open(): Promise<void> {
    const { els } = this;
    els.panel.hidden = false;
    els.launcher.setAttribute("aria-expanded", "true");
    els.input.focus();
    await this.refreshSession();
  }

  close(): void {
    const { els } = this;
    if (els.panel.hidden) return;
    els.panel.hidden = true;
    els.launcher.setAttribute("aria-expanded", "false");
    els.launcher.focus();
  }

  // refreshSession shows the sign-in call to action when BetterAuth has no
  // session, and otherwise the current conversation.
  private async refreshSession(): Promise<void> {
    let token: string | null = null;
    try {
      this.getClient();
      token = await (this.token as TokenGetter)({ fresh: false });
    } catch (err) {
      this.showError(err);
      return;
    }
    this.setSignedIn(!!token);
    if (!token) return;
    if (this.conversationID && this.loadedConversation !== this.conversationID) await this.loadConversation(this.conversationID);
    else if (!this.els.messages.childElementCount) this.showWelcome();
  }

  private setSignedIn(signedIn: boolean): void {
    const { els } = this;
    els.signin.hidden = signedIn;
    els.composer.hidden = !signedIn;
    els.historyBtn.hidden = !signedIn;
    els.newBtn.hidden = !signedIn;
    if (!signedIn) {
      const target = this.getAttribute("sign-in") || "/sign-in";
      const url = new URL(target, location.href);
      url.searchParams.set("callbackURL", location.href);
      els.signinLink.href = url.href;
      els.signinLink.focus();
    } else if (this.isOpen && !this.root.activeElement) {
      els.input.focus();
    }
  }

  private showWelcome(): void {
    this.els.messages.replaceChildren(h("p", { class: "welcome", text: this.s.welcome }));
  }

  private newChat(): void {
    this.controller?.abort("new chat");
    this.conversationID = null;
    this.loadedConversation = null;
    sessionStorage.removeItem(CONVERSATION_KEY);
    this.lastTurn = null;
    this.showWelcome();
    this.els.history.hidden = true;
    this.els.historyBtn.setAttribute("aria-expanded", "false");
    this.els.input.focus();
  }

  private async toggleHistory(): Promise<void> {
    const { els, s } = this;
    const show = els.history.hidden;
    els.history.hidden = !show;
    els.historyBtn.setAttribute("aria-expanded", String(show));
    if (!show) return;
    els.history.replaceChildren(h("p", { text: s.historyLoading }));
    try {
      const ul = h("ul", { "aria-label": s.history });
      // showPage appends a page of conversations, and a "More" button
      // while the server says there are older ones.
      const showPage = async (cursor?: string): Promise<number> => {
        const { items, next_cursor } = await this.getClient().listConversations({ limit: HISTORY_PAGE, cursor });
        for (const c of items) {
          const b = h("button", { type: "button", text: c.title || c.id, "aria-current": String(c.id === this.conversationID) });
          b.addEventListener("click", () => {
            els.history.hidden = true;
            els.historyBtn.setAttribute("aria-expanded", "false");
            void this.loadConversation(c.id).then(() => els.input.focus());
          });
          ul.append(h("li", {}, b));
        }
        els.history.querySelector(".more")?.remove();
        if (next_cursor) {
          const more = h("button", { type: "button", class: "more", text: s.historyMore });
          more.addEventListener("click", () => {
            more.disabled = true;
            const first = ul.children.length;
            showPage(next_cursor)
              .then(() => (ul.children[first]?.querySelector("button") as HTMLButtonElement | null)?.focus())
              .catch((err: unknown) => {
                more.disabled = false;
                this.showError(err);
              });
          });
          els.history.append(more);
        }
        return items.length;
      };
      els.history.replaceChildren(ul);
      if (!(await showPage())) {
        els.history.replaceChildren(h("p", { text: s.historyEmpty }));
        return;
      }
      ul.querySelector("button")?.focus();
    } catch (err) {
      els.history.replaceChildren();
      this.showError(err);
    }
  }

  private async loadConversation(id: string): Promise<void> {
    this.controller?.abort("another conversation");
    try {
      // Every message, oldest first: a long conversation spans pages
      // (bounded, so a runaway cursor cannot loop).
      const items: Message[] = [];
      let cursor: string | undefined;
      for (let page = 0; page < MAX_MESSAGE_PAGES; page++) {
        const res = await this.getClient().listMessages(id, { limit: 100, cursor });
        items.push(...res.items);
        if (!res.next_cursor) break;
        cursor = res.next_cursor;
      }
      this.conversationID = id;
      this.loadedConversation = id;
      sessionStorage.setItem(CONVERSATION_KEY, id);
      this.els.messages.replaceChildren();
      let question = "";
      for (const m of items) {
        if (m.role === "user") {
          question = m.content;
          this.els.messages.append(this.userMessage(m.content));
        } else if (m.role === "assistant") {
          const el = this.assistantMessage();
          this.els.messages.append(el);
          this.renderAnswer(el, m.content, m.sources, false);
          this.finishAnswer(el, m);
          this.lastTurn = { question, el };
        }
      }
      if (!items.length) this.showWelcome();
      this.scrollDown();
    } catch (err) {
      if (err instanceof ChatError && err.code === "not_found") {
        // Deleted, or from another account: start afresh.
        this.newChat();
        return;
      }
      this.showError(err);
    }
  }

  private userMessage(text: string): HTMLElement {
    return h("div", { class: "msg user" }, h("div", { class: "who", text: this.s.you }), h("div", { class: "body", text }));
  }

  private assistantMessage(): HTMLElement {
    const el = h("article", { class: "msg assistant", "aria-label": this.s.assistant });
    el.append(h("div", { class: "who", text: this.s.assistant }), h("div", { class: "body" }));
    return el;
  }

  // ask sends a question and streams its answer into a new message.
  async ask(question: string, regenerateOf?: HTMLElement): Promise<void> {
    const { els, s } = this;
    els.history.hidden = true;
    els.messages.querySelector(".welcome")?.remove();
    // The server keeps the old answer; a new one replaces it on screen.
    const again = regenerateOf?.dataset.messageId;
    if (regenerateOf) regenerateOf.remove();
    else els.messages.append(this.userMessage(question));
    const el = this.assistantMessage();
    el.setAttribute("aria-busy", "true");
    const body = el.querySelector(".body") as HTMLElement;
    body.append(h("span", { class: "thinking", text: s.thinking }));
    els.messages.append(el);
    this.scrollDown();
    this.lastTurn = { question, el };
    this.setStreaming(true);
    const controller = new AbortController();
    this.controller = controller;
    let text = "";
    let sources: Source[] = [];
    let frame = 0;
    const render = () => {
      frame = 0;
      this.renderAnswer(el, text, sources, true);
      this.scrollDown();
    };
    try {
      const client = this.getClient();
      if (!this.conversationID) {
        const c = await client.createConversation({ title: question.slice(0, 255) }, { signal: controller.signal });
        this.conversationID = c.id;
        this.loadedConversation = c.id;
        sessionStorage.setItem(CONVERSATION_KEY, c.id);
      }
      const events = again
        ? client.streamRegenerate(this.conversationID, again, { signal: controller.signal })
        : client.streamMessage(this.conversationID, question, { signal: controller.signal });
      for await (const ev of events) {
        if (ev.type === "message_start") el.dataset.messageId = ev.message_id;
        else if (ev.type === "sources") sources = ev.sources;
        else if (ev.type === "delta") {
          text += ev.text;
          // Render at most once a frame, however fast deltas come.
          frame ||= requestAnimationFrame(render);
        } else if (ev.type === "done") {
          cancelAnimationFrame(frame);
          this.renderAnswer(el, ev.message.content, ev.message.sources, false);
          this.finishAnswer(el, ev.message);
          if (ev.message.status === "stopped") {
            el.append(h("p", { class: "notice", text: s.stopped }));
            this.announce(s.stopped);
          } else this.announce(s.answered);
        }
      }
    } catch (err) {
      cancelAnimationFrame(frame);
      this.renderAnswer(el, text, sources, false);
      if (err instanceof ChatError && err.code === "aborted") {
        if (el.dataset.messageId) this.finishAnswer(el, null);
        el.append(h("p", { class: "notice", text: s.stopped }));
        this.announce(s.stopped);
      } else {
        if (!text) body.replaceChildren();
        this.finishAnswer(el, null);
        this.showError(err, el);
      }
    } finally {
      el.removeAttribute("aria-busy");
      if (this.controller === controller) this.controller = null;
      this.setStreaming(false);
      this.scrollDown();
    }
  }

  // stop asks the server to stop the answer streaming, so it is stored as
  // `stopped` with exactly the text shown, on whichever replica streams it;
  // the stream then ends with its done event. Before the answer has an id,
  // when the server says it already finished (409), or when the stream
  // does not end soon after, the widget just stops reading it.
  private async stop(): Promise<void> {
    const controller = this.controller;
    if (!controller) return;
    const el = this.lastTurn?.el;
    const id = el?.dataset.messageId;
    const conversation = this.conversationID;
    if (!id || !conversation) return controller.abort("stopped by the reader");
    this.els.stop.disabled = true;
    try {
      await this.getClient().stopAnswer(conversation, id, { signal: AbortSignal.timeout(STOP_TIMEOUT_MS) });
      setTimeout(() => controller.abort("stopped by the reader"), STOP_TIMEOUT_MS);
    } catch {
      controller.abort("stopped by the reader");
    } finally {
      this.els.stop.disabled = false;
    }
  }

  private setStreaming(on: boolean): void {
    const { els } = this;
    els.send.hidden = on;
    els.stop.hidden = !on;
    els.input.setAttribute("aria-busy", String(on));
    if (on) els.stop.focus();
    else if (this.isOpen && this.root.activeElement === null) els.input.focus();
  }

  private renderAnswer(el: HTMLElement, text: string, sources: readonly Source[], streaming: boolean): void {
    const body = el.querySelector(".body") as HTMLElement;
    const frag = renderMarkdown(text, sources);
    for (const pre of frag.querySelectorAll("pre")) {
      const copy = h("button", { type: "button", class: "copy", text: this.s.copy });
      copy.addEventListener("click", () => {
        void navigator.clipboard?.writeText(pre.querySelector("code")?.textContent ?? pre.textContent ?? "").then(() => {
          copy.textContent = this.s.copied;
          this.announce(this.s.copied);
        });
      });
      pre.append(copy);
    }
    if (streaming) frag.append(h("span", { class: "cursor", "aria-hidden": "true" }));
    body.replaceChildren(frag);
    let list = el.querySelector(".sources");
    if (sources.length && !list) {
      list = h("ol", { class: "sources", "aria-label": this.s.sources });
      list.append(
        ...sources.map((src, i) =>
          h("li", {}, h("span", { class: "num", text: `[${i + 1}]` }), h("a", { href: safeURL(src.url), text: src.title || src.url })),
        ),
      );
      body.after(list);
    }
    // A link to a section of the page the reader is on only scrolls: close
    // the panel so the section is not hidden behind it (on a phone the
    // panel is the whole screen).
    for (const a of el.querySelectorAll<HTMLAnchorElement>(".body a[href], .sources a[href]")) {
      a.onclick = () => {
        if (a.origin === location.origin && a.pathname === location.pathname && a.hash) this.close();
      };
    }
  }

  // finishAnswer adds what a finished (or failed) answer offers: the "not
  // covered" notice, feedback and regenerate.
  private finishAnswer(el: HTMLElement, m: Message | null): void {
    const { s } = this;
    if (m) el.dataset.messageId = m.id;
    if (m?.grounded === false) {
      const notice = h("p", { class: "notice not-covered", text: `${s.notCovered} ` });
      const fallback = this.getAttribute("fallback");
      if (fallback) notice.append(h("a", { href: safeURL(fallback), text: s.fallback }));
      el.append(notice);
    }
    const actions = h("div", { class: "actions" });
    const id = el.dataset.messageId;
    if (id && m?.status === "complete") {
      const up = h("button", { type: "button", class: "icon", "aria-pressed": "false", "aria-label": s.helpful, title: s.helpful }, thumb(false));
      const down = h("button", { type: "button", class: "icon", "aria-pressed": "false", "aria-label": s.notHelpful, title: s.notHelpful }, thumb(true));
      const rate = async (rating: "up" | "down", comment?: string) => {
        up.setAttribute("aria-pressed", String(rating === "up"));
        down.setAttribute("aria-pressed", String(rating === "down"));
        try {
          await this.getClient().sendFeedback(id, comment ? { rating, comment } : { rating });
          this.announce(s.feedbackThanks);
          return true;
        } catch (err) {
          this.showError(err, el);
          return false;
        }
      };
      up.addEventListener("click", () => void rate("up"));
      down.addEventListener("click", () => {
        void rate("down");
        if (el.querySelector(".feedback-form")) return;
        const label = h("label", { for: `comment-${id}`, text: s.feedbackComment });
        const ta = h("textarea", { id: `comment-${id}`, maxlength: "2000", rows: "2" });
        const sendBtn = h("button", { type: "submit", text: s.feedbackSend });
        const form = h("form", { class: "feedback-form" }, label, ta, sendBtn);
        form.addEventListener("submit", (e) => {
          e.preventDefault();
          void rate("down", ta.value.trim()).then((ok) => {
            if (ok) form.replaceWith(h("p", { class: "notice", text: s.feedbackThanks }));
          });
        });
        el.append(form);
        ta.focus();
      });
      actions.append(up, down);
    }
    if (this.lastTurn === null || this.lastTurn.el === el) {
      const regen = h("button", { type: "button", class: "icon regenerate", text: s.regenerate });
      regen.addEventListener("click", () => {
        const turn = this.lastTurn;
        if (turn && !this.controller) void this.ask(turn.question, turn.el);
      });
      actions.append(regen);
    }
    el.querySelector(".regenerate")?.closest(".actions")?.remove();
    // Only the last answer can be regenerated.
    this.els.messages.querySelectorAll(".regenerate").forEach((b) => b.remove());
    el.append(actions);
  }

  // showError says what happened and what to do, in the answer it belongs
  // to (or the panel), and announces it.
  private showError(err: unknown, where?: HTMLElement): void {
    const { s } = this;
    if (err instanceof ChatError && (err.code === "signed_out" || err.status === 401)) {
      this.setSignedIn(false);
      return;
    }
    let text: string;
    if (err instanceof ChatError && err.status === 429) {
      text = err.retryAfter ? format(s.rateLimited, { n: err.retryAfter }) : s.rateLimitedNoWait;
    } else if (err instanceof ChatError && (err.status === 503 || err.code === "unavailable" || err.code === "too_many_streams")) {
      text = err.retryAfter ? format(s.unavailable, { n: err.retryAfter }) : s.unavailableNoWait;
    } else if (err instanceof ChatError && err.code === "network") {
      text = s.network;
    } else {
      text = format(s.failed, { message: err instanceof Error ? err.message : String(err) });
    }
    const p = h("p", { class: "notice error", role: "alert", text });
    if (err instanceof ChatError) p.dataset.code = err.code;
    (where ?? this.els.messages).append(p);
    this.scrollDown();
  }

  private announce(text: string): void {
    // Cleared first so that the same message twice is announced twice.
    this.els.status.textContent = "";
    requestAnimationFrame(() => (this.els.status.textContent = text));
  }

  private scrollDown(): void {
    const m = this.els.messages;
    m.scrollTop = m.scrollHeight;
  }
}

// Sources and the fallback come from the server and the site: only http(s)
// and relative links are followed.
function safeURL(u: string): string {
  try {
    const url = new URL(u, location.href);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : "#";
  } catch {
    return "#";
  }
}
