package httpapi

// What the server waits for from a client, and how long a request may take.
// Every wait has a bound: a client that sends its headers or its body
// slowly, or never, loses its connection; a request that runs out of time
// answers 503.

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/chatbackend/chatbackend/apiserver/config"
	"github.com/chatbackend/chatbackend/apiserver/httperr"
)

// NewServer returns the http.Server of a listener (the API's and the
// metrics') with the waits on clients bounded: the request line and headers
// (ReadHeaderTimeout), the body (a read deadline set once the headers are
// in, lifted as soon as the body has been read) and a keep-alive connection
// between requests (IdleTimeout).
//
// Why not http.Server's ReadTimeout and WriteTimeout: the read deadline
// stays on the connection while the handler runs, and net/http cancels the
// request's context when it expires, which would end a chat stream that
// outlives it; a WriteTimeout would cut the stream itself. The stream is
// bounded by the chat deadline (see deadline) and the model timeouts
// instead.
func NewServer(h http.Handler, t config.HTTP) *http.Server {
	return &http.Server{
		Handler:           boundBody(h, t.ReadBodyTimeout),
		MaxHeaderBytes:    MaxHeaderBytes,
		ReadHeaderTimeout: t.ReadHeaderTimeout,
		IdleTimeout:       t.IdleTimeout,
	}
}

// errBodyTimeout is what a handler reading the body sees when the client
// did not send it in time; its text is safe to show the client.
var errBodyTimeout = errors.New("request body not received in time")

// boundBody gives the body of each request timeout to arrive. Requests
// without a body get no deadline: net/http is already waiting in the
// background for the client to close the connection, and a deadline there
// would cancel the request. A handler that never reads the body (a request
// refused before it) still leaves the deadline in place for net/http's own
// read of the leftover body, so that read ends too.
func boundBody(next http.Handler, timeout time.Duration) http.Handler {
	if timeout <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			rc := http.NewResponseController(w)
			if err := rc.SetReadDeadline(time.Now().Add(timeout)); err == nil {
				r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// deadlineBody lifts the connection's read deadline once the body has been
// read to its end, and names a timeout for what it is.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	lift sync.Once
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case errors.Is(err, io.EOF):
		// From here on net/http reads in the background only to notice
		// the client leaving; that read must not time out.
		b.lift.Do(func() { _ = b.rc.SetReadDeadline(time.Time{}) })
	case errors.Is(err, os.ErrDeadlineExceeded):
		return n, errBodyTimeout
	}
	return n, err
}

// chatRoutes last as long as the model writes: they get the chat deadline.
var chatRoutes = map[string]bool{
	http.MethodPost + " /v1/conversations/:id/messages": true,
	http.MethodPost + " /agents/run":                    true,
}

// deadline gives each request its deadline: t.ChatTimeout on the chat
// routes, t.RequestTimeout on every other (zero: none). A request that ran
// out of time before answering (its store call gave up with the context)
// gets 503 with Retry-After here, so a database that hangs costs a client
// at most the deadline.
func deadline(t config.HTTP) gin.HandlerFunc {
	return func(c *gin.Context) {
		d := t.RequestTimeout
		if chatRoutes[c.Request.Method+" "+c.FullPath()] {
			d = t.ChatTimeout
		}
		if d <= 0 {
			c.Next()
			return
		}
		ctx, cancel := context.WithTimeout(c.Request.Context(), d)
		defer cancel()
		c.Request = c.Request.WithContext(ctx)
		c.Next()
		if errors.Is(ctx.Err(), context.DeadlineExceeded) && !c.Writer.Written() {
			c.Header("Retry-After", strconv.Itoa(RetryAfterUnavailable))
			httperr.Abort(c, http.StatusServiceUnavailable, httperr.CodeUnavailable, "the request took too long; retry shortly")
		}
	}
}
