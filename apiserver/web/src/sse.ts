// readSSE parses a text/event-stream body (the WHATWG format: events
// separated by a blank line, "event:" and "data:" fields, ":" comments such
// as the server's heartbeats) and yields each event as soon as its blank
// line has arrived, whatever the network's chunking.
export interface SSEEvent {
  event: string;
  data: string;
}

export async function* readSSE(body: ReadableStream<Uint8Array>): AsyncGenerator<SSEEvent, void, undefined> {
  // The cast: TypeScript's DOM types declare TextDecoderStream's writable
  // side as BufferSource, which Uint8Array is, but not assignably so.
  const reader = body.pipeThrough(new TextDecoderStream() as unknown as ReadableWritablePair<string, Uint8Array>).getReader();
  let buf = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += value;
      let sep: RegExpExecArray | null;
      while ((sep = /\r\n\r\n|\n\n|\r\r/.exec(buf))) {
        const block = buf.slice(0, sep.index);
        buf = buf.slice(sep.index + sep[0].length);
        const ev = parseBlock(block);
        if (ev) yield ev;
      }
    }
  } finally {
    // A consumer that stops early (break, abort) closes the connection, so
    // the server stops generating.
    await reader.cancel().catch(() => {});
  }
}

function parseBlock(block: string): SSEEvent | null {
  let event = "message";
  const data: string[] = [];
  for (const line of block.split(/\r\n|\n|\r/)) {
    if (line === "" || line.startsWith(":")) continue;
    const i = line.indexOf(":");
    const field = i < 0 ? line : line.slice(0, i);
    const value = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
  }
  return data.length ? { event, data: data.join("\n") } : null;
}
