// widget.js: defines <chatbackend-chat> and, when loaded by a script tag
// with data-api, adds one to the page with the tag's options:
//
//   <script src="https://chat.example.com/widget.js" data-api="https://chat.example.com"
//           data-auth="https://auth.example.com" defer></script>
//
// Every data-* attribute of the tag becomes the attribute of the same name
// on the element (data-sign-in → sign-in); see element.ts for the list.
import { ChatbackendChat } from "./element.js";

const TAG = "chatbackend-chat";

if (!customElements.get(TAG)) customElements.define(TAG, ChatbackendChat);

// document.currentScript is the loading tag only while this runs (also for
// defer and async), so it is read now.
const script = document.currentScript as HTMLScriptElement | null;
if (script?.dataset.api && !document.querySelector(TAG)) {
  const el = document.createElement(TAG);
  for (const { name, value } of script.attributes) {
    if (name.startsWith("data-")) el.setAttribute(name.slice(5), value);
  }
  const mount = () => document.body.append(el);
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount, { once: true });
}
