// Every string the widget shows or announces, in one table: a site
// translates or rewords them with the strings option (data-strings='{"send":"Envoyer"}'
// or the element's strings property). {n} and {title} are placeholders.
export const defaultStrings = {
  launcher: "Ask the docs",
  title: "Ask the docs",
  placeholder: "Ask a question about the docs",
  send: "Send",
  stop: "Stop",
  close: "Close",
  newChat: "New chat",
  history: "History",
  historyEmpty: "No conversations yet.",
  historyLoading: "Loading conversations…",
  historyMore: "Older conversations",
  you: "You",
  assistant: "Assistant",
  sources: "Sources",
  thinking: "Searching the docs…",
  answered: "Answer complete.",
  stopped: "Stopped. The answer so far is kept.",
  regenerate: "Regenerate",
  copy: "Copy",
  copied: "Copied",
  helpful: "Helpful",
  notHelpful: "Not helpful",
  feedbackComment: "What was wrong or missing? (optional)",
  feedbackSend: "Send feedback",
  feedbackThanks: "Thanks for the feedback.",
  notCovered: "The docs don't seem to cover this.",
  fallback: "Contact support",
  signInPrompt: "Sign in to ask questions about the docs.",
  signIn: "Sign in",
  rateLimited: "You have asked a lot of questions in a short time. Try again in {n} seconds.",
  rateLimitedNoWait: "You have asked a lot of questions in a short time. Wait a minute, then try again.",
  unavailable: "The chat service is busy or restarting. Try again in {n} seconds.",
  unavailableNoWait: "The chat service is busy or restarting. Try again in a minute.",
  network: "Cannot reach the chat service. Check your connection, then try again.",
  failed: "Something went wrong: {message}",
  welcome: "Ask anything about these docs. Answers cite the sections they come from.",
  shortcutHint: "Shortcut: {shortcut}",
};

export type Strings = typeof defaultStrings;

export function format(s: string, vars: Record<string, string | number>): string {
  return s.replace(/\{(\w+)\}/g, (m, k: string) => (k in vars ? String(vars[k]) : m));
}
