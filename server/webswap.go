package server

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"
)

// webOldGrace is how long requests under way on a web listener get to
// finish after a reload replaced its http.Server (new timeouts); then
// their connections are closed.
const webOldGrace = 2 * time.Minute

// swappableHTTP serves one web listener with an http.Server that a
// reload can replace (http.Server's timeouts cannot change while it
// serves): one accept loop hands each connection to the current
// server; a replaced server stops getting connections, closes its idle
// keep-alive ones (clients open a new one, as after any idle close) and
// finishes its requests under way with its old limits.
type swappableHTTP struct {
	ln    net.Listener
	build func(HTTPLimitConfig) *http.Server

	mu      sync.Mutex
	cur     *httpGen
	closing bool
	old     sync.WaitGroup // replaced servers still finishing
}

// httpGen is one server and the listener it reads its connections from.
type httpGen struct {
	srv   *http.Server
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	err   chan error // Serve's result
}

func (g *httpGen) Accept() (net.Conn, error) {
	select {
	case c := <-g.conns:
		return c, nil
	case <-g.done:
		return nil, net.ErrClosed
	}
}

func (g *httpGen) Close() error {
	g.once.Do(func() { close(g.done) })
	return nil
}

func (g *httpGen) Addr() net.Addr { return g.addr }

// start serves a new generation with lim.
func (w *swappableHTTP) start(lim HTTPLimitConfig) *httpGen {
	g := &httpGen{srv: w.build(lim), addr: w.ln.Addr(), conns: make(chan net.Conn), done: make(chan struct{}), err: make(chan error, 1)}
	go func() {
		err := g.srv.Serve(g)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		g.err <- err
	}()
	return g
}

// serve runs the accept loop with lim until the listener is closed.
func (w *swappableHTTP) serve(lim HTTPLimitConfig) error {
	w.mu.Lock()
	w.cur = w.start(lim)
	w.mu.Unlock()
	var wait time.Duration
	for {
		c, err := w.ln.Accept()
		if err != nil {
			w.mu.Lock()
			closing := w.closing
			w.mu.Unlock()
			if closing || errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Out of descriptors under a flood (EMFILE) and the like:
			// wait and accept again, as http.Server.Serve does, rather
			// than stop serving the web.
			//lint:ignore SA1019 accept's EMFILE/ENFILE/ECONNABORTED still say Temporary, and http.Server.Serve relies on it too
			if ne, ok := err.(net.Error); ok && ne.Temporary() {
				wait = min(max(2*wait, 5*time.Millisecond), time.Second)
				time.Sleep(wait)
				continue
			}
			return err
		}
		wait = 0
		w.hand(c)
	}
}

// hand gives c to the current server (the next one if it is replaced
// meanwhile); it closes c when the listener is shutting down.
func (w *swappableHTTP) hand(c net.Conn) {
	for {
		w.mu.Lock()
		g, closing := w.cur, w.closing
		w.mu.Unlock()
		if closing {
			c.Close()
			return
		}
		select {
		case g.conns <- c:
			return
		case <-g.done:
		}
	}
}

// swap replaces the server by one with lim; the old one finishes its
// requests for up to webOldGrace.
func (w *swappableHTTP) swap(lim HTTPLimitConfig) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closing || w.cur == nil {
		return
	}
	old := w.cur
	w.cur = w.start(lim)
	w.old.Add(1)
	go func() {
		defer w.old.Done()
		ctx, cancel := context.WithTimeout(context.Background(), webOldGrace)
		defer cancel()
		if old.srv.Shutdown(ctx) != nil {
			old.srv.Close()
		}
		<-old.err
	}()
}

// shutdown stops accepting and shuts the current server down within
// ctx (and waits, within ctx, for replaced ones).
func (w *swappableHTTP) shutdown(ctx context.Context) error {
	w.mu.Lock()
	w.closing = true
	cur := w.cur
	w.mu.Unlock()
	_ = w.ln.Close()
	var err error
	if cur != nil {
		err = cur.srv.Shutdown(ctx)
	}
	done := make(chan struct{})
	go func() { w.old.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	return err
}
