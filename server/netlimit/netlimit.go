// Package netlimit bounds the connections a listener hands out: in total
// and per remote address (IPv6 per /64). A connection over a limit is
// answered by the protocol's own "try later" line (Options.Reject) and
// closed, so a client sees a clear temporary failure, never a hang.
package netlimit

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// Options are the limits.
type Options struct {
	// MaxConns is the most open connections; 0 means no limit.
	MaxConns int
	// MaxPerIP is the most open connections from one address; 0 means no
	// limit.
	MaxPerIP int
	// Reject writes the protocol's refusal (e.g. SMTP "421 4.7.0 ...")
	// to a connection over a limit before it is closed. It runs in its
	// own goroutine with a 5 s write deadline. Nil just closes.
	Reject func(c net.Conn, reason string)
	// OnReject is told of each refusal (for metrics); may be nil.
	OnReject func(reason string)
}

// Listener enforces Options on an inner listener.
type Listener struct {
	net.Listener
	opts Options

	mu    sync.Mutex
	total int
	perIP map[netip.Prefix]int
}

// Wrap returns a limiting listener.
func Wrap(ln net.Listener, opts Options) *Listener {
	return &Listener{Listener: ln, opts: opts, perIP: map[netip.Prefix]int{}}
}

// Reasons given to Reject.
const (
	ReasonTotal = "too many connections"
	ReasonPerIP = "too many connections from your address"
)

func prefixOf(a net.Addr) netip.Prefix {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Prefix{}
	}
	ip := ap.Addr().Unmap()
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return p
}

// Accept returns the next connection within the limits.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		p := prefixOf(c.RemoteAddr())
		reason := ""
		l.mu.Lock()
		switch {
		case l.opts.MaxConns > 0 && l.total >= l.opts.MaxConns:
			reason = ReasonTotal
		case l.opts.MaxPerIP > 0 && l.perIP[p] >= l.opts.MaxPerIP:
			reason = ReasonPerIP
		default:
			l.total++
			l.perIP[p]++
		}
		l.mu.Unlock()
		if reason == "" {
			return &conn{Conn: c, l: l, p: p}, nil
		}
		if l.opts.OnReject != nil {
			l.opts.OnReject(reason)
		}
		go func() {
			if l.opts.Reject != nil {
				_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
				l.opts.Reject(c, reason)
			}
			c.Close()
		}()
	}
}

func (l *Listener) release(p netip.Prefix) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.perIP[p]--; l.perIP[p] <= 0 {
		delete(l.perIP, p)
	}
}

// Open returns the number of open connections.
func (l *Listener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

type conn struct {
	net.Conn
	l    *Listener
	p    netip.Prefix
	once sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.p) })
	return err
}
