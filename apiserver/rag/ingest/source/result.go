package source

// Result is what one `chat-apiserver ingest` run did, written as one
// compact JSON line to the container's termination message so that the
// operator can report it in status.ingest without reading logs.
type Result struct {
	// Pages is how many pages were indexed, Chunks how many chunks they
	// made.
	Pages  int `json:"pages"`
	Chunks int `json:"chunks"`
	// Added chunks are new, Updated ones changed, Removed ones belonged to
	// pages or sources that are gone.
	Added   int `json:"added"`
	Updated int `json:"updated"`
	Removed int `json:"removed"`
	// Errors counts pages left out and sources that failed.
	Errors int `json:"errors"`
	// Message is the run's summary line, or why it failed.
	Message string `json:"message"`
}

// MaxMessageBytes bounds Message so the line stays under the kubelet's
// 4096-byte limit on a termination message.
const MaxMessageBytes = 3072
