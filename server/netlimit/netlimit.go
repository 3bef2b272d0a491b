// Package netlimit bounds the connections a listener hands out: in total
// and per remote address (IPv6 per /64). A connection over a limit is
// answered by the protocol's own "try later" line (Options.Reject) and
// closed, so a client sees a clear temporary failure, never a hang.
//
// It also keeps idle strangers from holding the slots customers need:
//
//   - a connection that has not logged in (LoggedIn) within LoginTimeout
//     of being accepted is closed, whatever it sends meanwhile, so a
//     trickle of bytes cannot keep it open;
//   - connections that have not logged in have their own share of the
//     limit, MaxUnauthenticated; when it is full, a new connection
//     pushes out the oldest waiting connection of the address that has
//     the most of them (the flooder's, not a customer's single one), or
//     is refused if its own address holds half as many or more, so a
//     client that logs in promptly gets through unless the flood comes
//     from more addresses than the share has places.
//
// Refusals are logged at most once a minute per listener, with a count.
//
// Imports: the standard library only; the servers tell it about logins
// (LoggedIn, Idle).
package netlimit

import (
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Options are the limits.
type Options struct {
	// MaxConns is the most open connections; 0 means no limit.
	MaxConns int
	// MaxPerIP is the most open connections from one address; 0 means no
	// limit.
	MaxPerIP int
	// MaxUnauthenticated is the most open connections that have not
	// logged in yet; 0 means MaxConns.
	MaxUnauthenticated int
	// LoginTimeout closes a connection that has not logged in this long
	// after it was accepted; 0 means never.
	LoginTimeout time.Duration
	// Reject writes the protocol's refusal (e.g. SMTP "421 4.7.0 ...")
	// to a connection over a limit before it is closed. It runs in its
	// own goroutine with a 5 s deadline. Nil just closes.
	Reject func(c net.Conn, reason string)
	// OnReject is told of each refusal and each connection closed for
	// the reasons above (for metrics); may be nil.
	OnReject func(reason string)
	// Logger gets the refusals, at most a line a minute; nil logs
	// nothing.
	Logger *slog.Logger
}

// Listener enforces Options on an inner listener.
type Listener struct {
	net.Listener
	opts Options

	mu      sync.Mutex
	total   int
	perIP   map[netip.Prefix]int
	waiting map[netip.Prefix]*waitList // not logged in (web: idle), per address
	nwait   int
	byAddr  map[string]*Conn // remote ip:port -> open connection
	logged  time.Time        // last refusal log line
	unlog   map[string]int   // refusals since, by reason
}

// Wrap returns a limiting listener.
func Wrap(ln net.Listener, opts Options) *Listener {
	opts.MaxUnauthenticated = shareOf(opts.MaxConns, opts.MaxUnauthenticated)
	return &Listener{Listener: ln, opts: opts, perIP: map[netip.Prefix]int{},
		waiting: map[netip.Prefix]*waitList{}, byAddr: map[string]*Conn{}, unlog: map[string]int{}}
}

// shareOf is MaxUnauthenticated with its default and bound.
func shareOf(maxConns, unauth int) int {
	if unauth <= 0 || maxConns > 0 && unauth > maxConns {
		return maxConns
	}
	return unauth
}

// Limits are the Options a running listener can change.
type Limits struct {
	MaxConns, MaxPerIP, MaxUnauthenticated int
	LoginTimeout                           time.Duration
}

// SetLimits changes the limits (a config reload): connections accepted
// from now on are held to them. Open connections stay open even when
// they are over a lowered limit, and keep the login deadline they were
// accepted with; they count against the new limits until they close.
func (l *Listener) SetLimits(lim Limits) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.opts.MaxConns, l.opts.MaxPerIP, l.opts.LoginTimeout = lim.MaxConns, lim.MaxPerIP, lim.LoginTimeout
	l.opts.MaxUnauthenticated = shareOf(lim.MaxConns, lim.MaxUnauthenticated)
}

// Limits returns the limits in effect.
func (l *Listener) Limits() Limits {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Limits{MaxConns: l.opts.MaxConns, MaxPerIP: l.opts.MaxPerIP, MaxUnauthenticated: l.opts.MaxUnauthenticated, LoginTimeout: l.opts.LoginTimeout}
}

// Reasons given to Reject and OnReject.
const (
	ReasonTotal = "too many connections"
	ReasonPerIP = "too many connections from your address"
	// ReasonWaiting: the share for connections that have not logged in
	// is full, and the new one's address holds the most of them.
	ReasonWaiting = "too many connections from your address that have not logged in"
	// ReasonPushedOut: a waiting connection made room for a new one.
	ReasonPushedOut = "pushed out by a newer connection that had not logged in either"
	// ReasonLoginTimeout: no login within LoginTimeout.
	ReasonLoginTimeout = "no login in time"
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
		var victim *Conn
		l.mu.Lock()
		waitFull := l.opts.MaxUnauthenticated > 0 && l.nwait >= l.opts.MaxUnauthenticated
		totalFull := l.opts.MaxConns > 0 && l.total >= l.opts.MaxConns
		switch {
		case l.opts.MaxPerIP > 0 && l.perIP[p] >= l.opts.MaxPerIP:
			reason = ReasonPerIP
		case (waitFull || totalFull) && l.nwait > 0:
			if victim = l.pushOutLocked(p); victim == nil {
				reason = ReasonWaiting
			}
		case totalFull:
			reason = ReasonTotal
		}
		var nc *Conn
		if reason == "" {
			nc = &Conn{Conn: c, l: l, p: p, key: c.RemoteAddr().String(), accepted: time.Now()}
			l.total++
			l.perIP[p]++
			l.waitLocked(nc)
			l.byAddr[nc.key] = nc
			if l.opts.LoginTimeout > 0 {
				nc.timer = time.AfterFunc(l.opts.LoginTimeout, func() {
					l.mu.Lock()
					in := nc.loggedIn
					l.mu.Unlock()
					if !in {
						nc.closeFor(ReasonLoginTimeout)
					}
				})
			}
		}
		l.mu.Unlock()
		if victim != nil {
			victim.closeFor(ReasonPushedOut)
		}
		if reason == "" {
			return nc, nil
		}
		l.refused(reason)
		go func() {
			if l.opts.Reject != nil {
				_ = c.SetDeadline(time.Now().Add(5 * time.Second)) // a TLS handshake reads too
				l.opts.Reject(c, reason)
			}
			c.Close()
		}()
	}
}

// pushOutLocked takes the oldest waiting connection of the address with
// the most waiting connections out of the waiting list, for the caller
// to close (caller holds mu). When the new connection's own address p
// has half as many waiting as that address or more, it gets nil: the
// newcomer is the one to refuse, so that a flooder's reconnections (or
// two of his addresses taking turns) do not churn through the waiting
// connections, while a customer with one or two waiting connections
// still gets in.
func (l *Listener) pushOutLocked(p netip.Prefix) *Conn {
	var worst *waitList
	for _, w := range l.waiting {
		if worst == nil || w.n > worst.n {
			worst = w
		}
	}
	if worst == nil || worst.n == 0 {
		return nil
	}
	if own := l.waiting[p]; own != nil && 2*own.n >= worst.n {
		return nil
	}
	v := worst.head
	l.unwaitLocked(v)
	return v
}

// waitList is one address's waiting connections, oldest first, linked
// through the connections themselves: a web listener moves a connection
// in and out on every request, so both are O(1) and allocate nothing.
type waitList struct {
	head, tail *Conn
	n          int
}

// waitLocked appends c to its address's waiting list (caller holds mu).
func (l *Listener) waitLocked(c *Conn) {
	w := l.waiting[c.p]
	if w == nil {
		w = &waitList{}
		l.waiting[c.p] = w
	}
	c.prev, c.next, c.inWait = w.tail, nil, true
	if w.tail != nil {
		w.tail.next = c
	} else {
		w.head = c
	}
	w.tail = c
	w.n++
	l.nwait++
}

// unwaitLocked removes c from its waiting list, if it is on it (caller
// holds mu).
func (l *Listener) unwaitLocked(c *Conn) {
	if !c.inWait {
		return
	}
	w := l.waiting[c.p]
	if c.prev != nil {
		c.prev.next = c.next
	} else {
		w.head = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	} else {
		w.tail = c.prev
	}
	c.prev, c.next, c.inWait = nil, nil, false
	w.n--
	l.nwait--
	if w.n == 0 {
		delete(l.waiting, c.p)
	}
}

// refused counts a refusal and logs at most a line a minute.
func (l *Listener) refused(reason string) {
	if l.opts.OnReject != nil {
		l.opts.OnReject(reason)
	}
	if l.opts.Logger == nil {
		return
	}
	l.mu.Lock()
	l.unlog[reason]++
	now := time.Now()
	if now.Sub(l.logged) < time.Minute {
		l.mu.Unlock()
		return
	}
	counts := l.unlog
	l.unlog, l.logged = map[string]int{}, now
	open, waiting, lim := l.total, l.nwait, l.opts
	l.mu.Unlock()
	for r, n := range counts {
		l.opts.Logger.Warn("connections refused or closed (at most one line a minute per reason)", "reason", r, "count", n,
			"open", open, "not_logged_in", waiting, "max", lim.MaxConns, "max_per_ip", lim.MaxPerIP, "max_not_logged_in", lim.MaxUnauthenticated)
	}
}

// LoggedIn tells the listener that the connection from remote has
// logged in (or, on port 25, named a recipient): it no longer counts
// against MaxUnauthenticated and LoginTimeout no longer applies. An
// unknown address is ignored.
func (l *Listener) LoggedIn(remote net.Addr) {
	if c := l.conn(remote); c != nil {
		c.LoggedIn()
	}
}

// conn is the open connection from remote, or nil.
func (l *Listener) conn(remote net.Addr) *Conn {
	if remote == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.byAddr[remote.String()]
}

// LoggedIn is Listener.LoggedIn for a connection at hand.
func (c *Conn) LoggedIn() {
	l := c.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.loggedIn {
		return
	}
	c.loggedIn = true
	if c.timer != nil {
		c.timer.Stop()
	}
	l.unwaitLocked(c)
}

// Idle puts the connection from remote back among those that may be
// pushed out: an HTTP keep-alive connection between requests (the web
// listeners call LoggedIn when a request starts, Idle when it ends). An
// unknown address is ignored.
func (l *Listener) Idle(remote net.Addr) {
	if c := l.conn(remote); c != nil {
		c.Idle()
	}
}

// Idle is Listener.Idle for a connection at hand.
func (c *Conn) Idle() {
	l := c.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if !c.loggedIn || c.closed.Load() {
		return
	}
	c.loggedIn = false
	l.waitLocked(c)
}

func (l *Listener) release(c *Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.perIP[c.p]--; l.perIP[c.p] <= 0 {
		delete(l.perIP, c.p)
	}
	if !c.loggedIn {
		c.loggedIn = true // no longer waiting
		l.unwaitLocked(c)
	}
	if l.byAddr[c.key] == c {
		delete(l.byAddr, c.key)
	}
}

// Open returns the number of open connections.
func (l *Listener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

// Waiting returns the number of open connections that have not logged
// in.
func (l *Listener) Waiting() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.nwait
}

// Conn is an accepted connection.
type Conn struct {
	net.Conn
	l        *Listener
	p        netip.Prefix
	key      string
	accepted time.Time
	timer    *time.Timer
	loggedIn bool // under l.mu
	// prev, next, inWait: the address's waiting list (under l.mu).
	prev, next *Conn
	inWait     bool
	once       sync.Once
	closed     atomic.Bool
}

// Closed reports whether the connection was closed (by a limit, or by
// the server).
func (c *Conn) Closed() bool { return c.closed.Load() }

// closeFor closes the connection for one of the listener's reasons.
func (c *Conn) closeFor(reason string) {
	c.l.refused(reason)
	_ = c.Close()
}

// Close closes the connection and frees its place.
func (c *Conn) Close() error {
	c.closed.Store(true)
	err := c.Conn.Close()
	c.once.Do(func() {
		if c.timer != nil {
			c.timer.Stop()
		}
		c.l.release(c)
	})
	return err
}

// Of returns the listener's connection under c (c itself, or the one
// under a *tls.Conn or another wrapper with NetConn), or nil.
func Of(c net.Conn) *Conn {
	for c != nil {
		if nc, ok := c.(*Conn); ok {
			return nc
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return nil
		}
		c = u.NetConn()
	}
	return nil
}
