package httpapi

import (
	"bufio"
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
)

// BenchmarkSSEDelta: the server's cost of one streamed token's delta
// event, from the turn handing it over to the client's socket, as a token
// at a model's pace goes (make bench-stream): each delta is read by the
// client before the next is sent, so none is sent together with another.
// The writer is on a real loopback connection; the client's read is in the
// figures too.
func BenchmarkSSEDelta(b *testing.B) {
	gin.SetMode(gin.ReleaseMode)
	writers := make(chan *sseWriter, 1)
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		c, _ := gin.CreateTestContext(w)
		s := startSSE(c, time.Hour, time.Minute)
		writers <- s
		<-done
		s.close()
	}))
	defer srv.Close()
	defer close(done)
	resp, err := http.Get(srv.URL) //nolint:noctx // bounded by the server's close
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	s := <-writers
	rd := bufio.NewReader(resp.Body)
	event := []byte("\n\n")
	read := func() {
		for {
			line, err := rd.ReadSlice('\n')
			if err != nil {
				b.Fatal(err)
			}
			if bytes.Equal(line, event[1:]) {
				return
			}
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := s.sendDelta("tok "); err != nil {
			b.Fatal(err)
		}
		if err := s.Flush(); err != nil {
			b.Fatal(err)
		}
		read()
	}
}
