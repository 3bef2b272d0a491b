// Package handoff serves one listener with a server that can be
// replaced while it serves: one accept loop hands each connection to
// the current generation, a listener of its own that the server reads.
// It is for servers whose settings cannot change under sessions
// already open (http.Server's timeouts, go-smtp's Server fields): a new
// server with the new settings takes the connections from then on and
// the old one finishes its sessions.
package handoff

import (
	"errors"
	"net"
	"sync"
	"time"
)

// Gen is one generation: the listener one server reads its connections
// from. Closing it ends that server's Accept with net.ErrClosed, not
// its connections.
type Gen struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

// NewGen returns a generation whose Addr is addr.
func NewGen(addr net.Addr) *Gen {
	return &Gen{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

// Accept implements net.Listener.
func (g *Gen) Accept() (net.Conn, error) {
	select {
	case c := <-g.conns:
		return c, nil
	case <-g.done:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener; it may be called more than once.
func (g *Gen) Close() error {
	g.once.Do(func() { close(g.done) })
	return nil
}

// Addr implements net.Listener.
func (g *Gen) Addr() net.Addr { return g.addr }

// Loop accepts on one listener and hands the connections to the
// current generation.
type Loop struct {
	ln net.Listener

	mu      sync.Mutex
	cur     *Gen
	closing bool
}

// New returns a loop that hands ln's connections to first until Swap.
func New(ln net.Listener, first *Gen) *Loop {
	return &Loop{ln: ln, cur: first}
}

// Serve accepts until Close (then it returns nil) or an accept error
// that is not temporary.
func (l *Loop) Serve() error {
	var wait time.Duration
	for {
		c, err := l.ln.Accept()
		if err != nil {
			l.mu.Lock()
			closing := l.closing
			l.mu.Unlock()
			if closing || errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Out of descriptors under a flood (EMFILE) and the like:
			// wait and accept again, as http.Server.Serve does, rather
			// than stop serving.
			//lint:ignore SA1019 accept's EMFILE/ENFILE/ECONNABORTED still say Temporary, and http.Server.Serve relies on it too
			if ne, ok := err.(net.Error); ok && ne.Temporary() {
				wait = min(max(2*wait, 5*time.Millisecond), time.Second)
				time.Sleep(wait)
				continue
			}
			return err
		}
		wait = 0
		l.hand(c)
	}
}

// hand gives c to the current generation (the next one if it is
// replaced meanwhile); it closes c when the loop is closing.
func (l *Loop) hand(c net.Conn) {
	for {
		l.mu.Lock()
		g, closing := l.cur, l.closing
		l.mu.Unlock()
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

// Swap makes g the current generation and returns the one it replaces;
// ok is false (and nothing changes) after Close. The caller closes old
// when its server should stop accepting.
func (l *Loop) Swap(g *Gen) (old *Gen, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing {
		return nil, false
	}
	old, l.cur = l.cur, g
	return old, true
}

// Close stops accepting: it closes the listener; connections accepted
// from then on are closed.
func (l *Loop) Close() {
	l.mu.Lock()
	l.closing = true
	l.mu.Unlock()
	_ = l.ln.Close()
}
