package cli

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/chatbackend/chatbackend/apiserver/chat"
)

// On SIGTERM the chat store (the Qdrant connection) must outlive the
// requests that are still being answered: it is released only after the
// API server's graceful shutdown has let them finish.
func TestDrainThenReleaseClosesAfterInFlightRequests(t *testing.T) {
	g := NewWithT(t)
	entered, finish := make(chan struct{}), make(chan struct{})
	var released, handlerDone atomic.Bool
	var releasedBeforeHandler atomic.Bool
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		close(entered)
		<-finish // an answer still being retrieved and streamed
		handlerDone.Store(true)
		w.WriteHeader(http.StatusOK)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	g.Expect(err).NotTo(HaveOccurred())
	go func() { _ = srv.Serve(ln) }()

	status := make(chan int, 1)
	go func() {
		res, err := http.Get("http://" + ln.Addr().String())
		if err != nil {
			status <- 0
			return
		}
		res.Body.Close()
		status <- res.StatusCode
	}()
	<-entered

	stopped := make(chan struct{})
	go func() {
		drainThenRelease(srv, chat.New(nil, nil, nil), productionDrain, func() error {
			releasedBeforeHandler.Store(!handlerDone.Load())
			released.Store(true)
			return nil
		}, slog.New(slog.NewTextHandler(io.Discard, nil)))
		close(stopped)
	}()
	g.Consistently(released.Load).WithTimeout(300*time.Millisecond).Should(BeFalse(), "released while a request was in flight")

	close(finish)
	g.Eventually(stopped).WithTimeout(10 * time.Second).Should(BeClosed())
	g.Expect(released.Load()).To(BeTrue())
	g.Expect(releasedBeforeHandler.Load()).To(BeFalse())
	g.Expect(<-status).To(Equal(http.StatusOK), "the in-flight request completed")
}
