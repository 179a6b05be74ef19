// The site's sign-in page: BetterAuth's browser client signs the reader up
// or in (cookies on BetterAuth's origin), then sends them back to
// callbackURL, the page whose chat widget sent them here (same origin only).
import React, { useEffect, useState } from "react";
import Layout from "@theme/Layout";
import useDocusaurusContext from "@docusaurus/useDocusaurusContext";
import { createAuthClient } from "better-auth/client";

function back() {
  const to = new URLSearchParams(window.location.search).get("callbackURL") || "/";
  const url = new URL(to, window.location.href);
  window.location.assign(url.origin === window.location.origin ? url.href : "/");
}

export default function SignIn() {
  const { siteConfig } = useDocusaurusContext();
  const [status, setStatus] = useState("");
  // Tests wait for this: before React hydrates the page, its buttons do nothing.
  const [ready, setReady] = useState(false);
  useEffect(() => setReady(true), []);
  const run = (what) => async (e) => {
    e.preventDefault();
    const form = new FormData(e.target.form ?? e.target);
    const auth = createAuthClient({ baseURL: siteConfig.customFields.authURL, fetchOptions: { credentials: "include" } });
    const creds = { email: form.get("email"), password: form.get("password") };
    setStatus(`${what}…`);
    const { error } = what === "Sign up" ? await auth.signUp.email({ ...creds, name: form.get("name") }) : await auth.signIn.email(creds);
    if (error) {
      setStatus(`${what} failed: ${error.message || error.statusText}`);
      return;
    }
    back();
  };
  return (
    <Layout title="Sign in">
      <main className="container margin-vert--lg" style={{ maxWidth: 420 }}>
        <h1>Sign in</h1>
        <form onSubmit={run("Sign in")} data-ready={ready ? "true" : "false"}>
          <p><label>Name<br /><input name="name" id="name" autoComplete="name" /></label></p>
          <p><label>Email<br /><input name="email" id="email" type="email" autoComplete="email" required /></label></p>
          <p><label>Password<br /><input name="password" id="password" type="password" autoComplete="current-password" required /></label></p>
          <p>
            <button className="button button--primary" type="submit" id="sign-in">Sign in</button>{" "}
            <button className="button button--secondary" type="button" id="sign-up" onClick={run("Sign up")}>Sign up</button>
          </p>
          <p id="auth-status" role="status">{status}</p>
        </form>
      </main>
    </Layout>
  );
}
