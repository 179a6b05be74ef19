package openaitest

import (
	"encoding/json"
	"fmt"
	"testing"
)

// A content chunk written from its frame is byte for byte the chunk's
// JSON encoding, whatever the text and the model's name.
func TestDeltaFrameIsTheChunksEncoding(t *testing.T) {
	// "\"\x00" encodes containing the mark's encoding, "\u0000" with its
	// quotes: the cut must be at the content's, the last.
	for _, model := range []string{"gpt-4o-mini", `we"ird\u0000 <model>` + "\x00", "\"\x00"} {
		frame := newDeltaFrame(model)
		for _, text := range []string{"tok ", `"quoted" \ back`, "<b>&</b>", "é\u2028\x00\n", "\xff"} {
			b, err := json.Marshal(chunk(model, chunkDelta{Content: text}, nil))
			if err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprintf("data: %s\n\n", b)
			if got := string(frame.append([]byte("kept"), text)); got != "kept"+want {
				t.Errorf("model %q, text %q:\n got %q\nwant %q", model, text, got, "kept"+want)
			}
		}
	}
}
