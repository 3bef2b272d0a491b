package server

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"mailsetup/server/handoff"
)

// webOldGrace is how long requests under way on a web listener get to
// finish after a reload replaced its http.Server (new timeouts); then
// their connections are closed.
const webOldGrace = 2 * time.Minute

// swappableHTTP serves one web listener with an http.Server that a
// reload can replace (http.Server's timeouts cannot change while it
// serves): the handoff loop gives each connection to the current
// server; a replaced server stops getting connections, closes its idle
// keep-alive ones (clients open a new one, as after any idle close) and
// finishes its requests under way with its old limits.
type swappableHTTP struct {
	ln    net.Listener
	build func(HTTPLimitConfig) *http.Server

	mu      sync.Mutex
	loop    *handoff.Loop
	cur     *httpGen
	closing bool
	old     sync.WaitGroup // replaced servers still finishing
}

// httpGen is one server and the listener it reads its connections from.
type httpGen struct {
	*handoff.Gen
	srv *http.Server
	err chan error // Serve's result
}

// start serves a new generation with lim.
func (w *swappableHTTP) start(lim HTTPLimitConfig) *httpGen {
	g := &httpGen{Gen: handoff.NewGen(w.ln.Addr()), srv: w.build(lim), err: make(chan error, 1)}
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
	if w.closing {
		w.mu.Unlock()
		return nil
	}
	w.cur = w.start(lim)
	w.loop = handoff.New(w.ln, w.cur.Gen)
	loop := w.loop
	w.mu.Unlock()
	return loop.Serve()
}

// swap replaces the server by one with lim; the old one finishes its
// requests for up to webOldGrace.
func (w *swappableHTTP) swap(lim HTTPLimitConfig) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closing || w.loop == nil {
		return
	}
	g := w.start(lim)
	old := w.cur
	if _, ok := w.loop.Swap(g.Gen); !ok {
		g.srv.Close()
		return
	}
	w.cur = g
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
	cur, loop := w.cur, w.loop
	w.mu.Unlock()
	if loop != nil {
		loop.Close()
	} else {
		_ = w.ln.Close()
	}
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
