import React from "react";
import Layout from "@theme/Layout";
import Link from "@docusaurus/Link";

export default function Home() {
  return (
    <Layout title="Home">
      <main className="container margin-vert--lg">
        <h1>Acme Docs</h1>
        <p><Link to="/docs">Read the docs</Link>, or ask the chat assistant (bottom right).</p>
      </main>
    </Layout>
  );
}
