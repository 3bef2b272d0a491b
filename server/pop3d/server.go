package pop3d

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Server is a POP3 server. Create it with NewServer; it serves any number
// of listeners until Shutdown or Close.
type Server struct {
	backend Backend
	opts    Options // defaults applied
	log     *slog.Logger
	bufPool sync.Pool // *[]byte of copyBufferSize, for streaming messages

	idPrefix string
	nextID   atomic.Uint64
	// expire is the pre-login CAPA EXPIRE value (Options.Expire, then
	// SetExpire's); idle is Options.IdleTimeout, then SetIdleTimeout's.
	expire atomic.Pointer[string]
	idle   atomic.Int64
	// login is Options.LoginDelay and AllowInsecureAuth, then
	// SetLogin's; each connection keeps the value it started with.
	login atomic.Pointer[loginPolicy]

	// baseCtx is the parent of every connection's context; cancelled
	// when Shutdown gives up waiting, or by Close.
	baseCtx context.Context
	cancel  context.CancelFunc

	// closing is set (under mu) when Shutdown or Close starts: no new
	// connections, no new commands.
	closing atomic.Bool

	mu        sync.Mutex
	listeners map[*net.Listener]struct{}
	conns     map[*trackedConn]struct{}
	active    int            // admitted connections
	perIP     map[string]int // admitted connections per remote IP
	drained   chan struct{}  // closed once closing and no connection is left
	isDrained bool
}

// trackedConn is an accepted connection, admitted or being refused.
type trackedConn struct {
	raw      net.Conn
	ip       string
	admitted bool // counted in active and perIP
	released bool // no longer counted
}

// SetExpire changes the pre-login CAPA EXPIRE value (Options.Expire; a
// config reload changed the domains' expiry). Sessions logged in keep
// their own value.
func (s *Server) SetExpire(v string) error {
	if err := ValidExpire(v, true); err != nil {
		return err
	}
	s.expire.Store(&v)
	return nil
}

// SetIdleTimeout changes IdleTimeout (a config reload); every session,
// open ones included, waits that long for its next command from then
// on. 0 or less takes the default.
func (s *Server) SetIdleTimeout(d time.Duration) {
	if d <= 0 {
		d = DefaultIdleTimeout
	}
	s.idle.Store(int64(d))
}

// loginPolicy is what a connection allows and advertises about login.
type loginPolicy struct {
	delay    int  // CAPA LOGIN-DELAY seconds
	insecure bool // login without TLS
}

// SetLogin changes LoginDelay and AllowInsecureAuth (a config reload)
// for the connections accepted from then on; open ones keep theirs.
func (s *Server) SetLogin(loginDelay int, allowInsecureAuth bool) {
	s.login.Store(&loginPolicy{delay: max(loginDelay, 0), insecure: allowInsecureAuth})
}

// idleTimeout is IdleTimeout in force.
func (s *Server) idleTimeout() time.Duration { return time.Duration(s.idle.Load()) }

// NewServer returns a server that authenticates with b. It panics if b is
// nil or opts.Expire is not a valid EXPIRE value (ValidExpire with the
// " USER" suffix allowed): both are wiring mistakes, not runtime
// conditions.
func NewServer(b Backend, opts Options) *Server {
	if b == nil {
		panic("pop3d: NewServer with a nil Backend")
	}
	if opts.Expire == "" {
		opts.Expire = "NEVER"
	}
	if err := ValidExpire(opts.Expire, true); err != nil {
		panic("pop3d: Options.Expire: " + err.Error())
	}
	opts.Implementation = sanitize(opts.Implementation, false)
	if opts.Implementation == "" {
		opts.Implementation = DefaultImplementation
	}
	if opts.LoginDelay < 0 {
		opts.LoginDelay = 0
	}
	if opts.MaxSessions == 0 {
		opts.MaxSessions = DefaultMaxSessions
	}
	if opts.MaxPerIP == 0 {
		opts.MaxPerIP = DefaultMaxPerIP
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = DefaultWriteTimeout
	}
	if opts.MaxLineLength <= 0 {
		opts.MaxLineLength = DefaultMaxLineLength
	}
	opts.MaxLineLength = max(opts.MaxLineLength, minLineLength)
	if opts.MaxErrors <= 0 {
		opts.MaxErrors = DefaultMaxErrors
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	var rb [4]byte
	rand.Read(rb[:])
	s := &Server{
		backend:   b,
		opts:      opts,
		log:       opts.Logger,
		idPrefix:  hex.EncodeToString(rb[:]) + "-",
		listeners: make(map[*net.Listener]struct{}),
		conns:     make(map[*trackedConn]struct{}),
		perIP:     make(map[string]int),
		drained:   make(chan struct{}),
	}
	s.expire.Store(&opts.Expire)
	s.idle.Store(int64(opts.IdleTimeout))
	s.SetLogin(opts.LoginDelay, opts.AllowInsecureAuth)
	s.bufPool.New = func() any {
		b := make([]byte, copyBufferSize)
		return &b
	}
	s.baseCtx, s.cancel = context.WithCancel(context.Background())
	return s
}

func (s *Server) newID() string {
	return s.idPrefix + strconv.FormatUint(s.nextID.Add(1), 36)
}

// Serve accepts connections on ln and serves each in its own goroutine
// until Shutdown or Close, then returns ErrServerClosed; on another accept
// error it returns that error. Temporary accept errors are retried with a
// backoff of 5 ms doubling to 1 s. Serve closes ln before it returns. It
// may run on several listeners at once; the limits are shared.
func (s *Server) Serve(ln net.Listener) error {
	if !s.trackListener(&ln, true) {
		ln.Close()
		return ErrServerClosed
	}
	defer s.trackListener(&ln, false)
	defer ln.Close()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return ErrServerClosed
			}
			var te interface{ Temporary() bool }
			if errors.As(err, &te) && te.Temporary() {
				backoff = min(max(2*backoff, acceptBackoffMin), acceptBackoffMax)
				s.log.Warn("pop3 accept failed, retrying", "error", err, "delay", backoff)
				t := time.NewTimer(backoff)
				select {
				case <-t.C:
				case <-s.baseCtx.Done():
					t.Stop()
				}
				continue
			}
			return err
		}
		backoff = 0
		tc := s.admit(nc)
		switch {
		case tc == nil:
			nc.Close()
		case tc.admitted:
			go s.handle(tc)
		default:
			go s.refuse(tc)
		}
	}
}

func (s *Server) trackListener(ln *net.Listener, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.closing.Load() {
			return false
		}
		s.listeners[ln] = struct{}{}
	} else {
		delete(s.listeners, ln)
	}
	return true
}

// admit registers a new connection and decides whether it is within the
// limits. It returns nil when the server is closing.
func (s *Server) admit(nc net.Conn) *trackedConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return nil
	}
	tc := &trackedConn{raw: nc, ip: remoteIP(nc.RemoteAddr())}
	o := &s.opts
	over := o.MaxSessions > 0 && s.active >= o.MaxSessions ||
		o.MaxPerIP > 0 && s.perIP[tc.ip] >= o.MaxPerIP
	if !over {
		tc.admitted = true
		s.active++
		s.perIP[tc.ip]++
	}
	s.conns[tc] = struct{}{}
	return tc
}

// release frees the connection's place in the limits, once its socket is
// closed.
func (s *Server) release(tc *trackedConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.releaseLocked(tc)
}

func (s *Server) releaseLocked(tc *trackedConn) {
	if !tc.admitted || tc.released {
		return
	}
	tc.released = true
	s.active--
	if s.perIP[tc.ip]--; s.perIP[tc.ip] <= 0 {
		delete(s.perIP, tc.ip)
	}
}

// untrack forgets a connection whose goroutine is done.
func (s *Server) untrack(tc *trackedConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.releaseLocked(tc)
	delete(s.conns, tc)
	s.checkDrained()
}

// checkDrained closes drained once closing and empty; s.mu must be held.
func (s *Server) checkDrained() {
	if s.closing.Load() && len(s.conns) == 0 && !s.isDrained {
		s.isDrained = true
		close(s.drained)
	}
}

func remoteIP(a net.Addr) string {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.IP.String()
	case nil:
		return ""
	}
	if host, _, err := net.SplitHostPort(a.String()); err == nil {
		return host
	}
	return a.String()
}

// handle serves one admitted connection.
func (s *Server) handle(tc *trackedConn) {
	defer s.untrack(tc)
	newConn(s, tc).serve()
}

// refuse answers a connection beyond MaxSessions or MaxPerIP and closes
// it.
func (s *Server) refuse(tc *trackedConn) {
	defer s.untrack(tc)
	defer tc.raw.Close()
	s.log.Warn("pop3 connection refused: too many connections",
		"remote", addrString(tc.raw.RemoteAddr()), "max_sessions", s.opts.MaxSessions, "max_per_ip", s.opts.MaxPerIP)
	// On an implicit-TLS listener this write runs the handshake; the
	// deadline bounds both.
	tc.raw.SetDeadline(time.Now().Add(rejectTimeout))
	tc.raw.Write([]byte(errLine(CodeSysTemp, "too many connections") + "\r\n"))
}

// Shutdown stops the server in two phases. First it closes the
// listeners and the sessions that are waiting for a command. A command in
// progress (e.g. a RETR streaming a large message, or a QUIT committing)
// completes; the session's next command, if it arrives within a second,
// is answered "-ERR [SYS/TEMP] server shutting down", then the connection
// is closed. When every session has ended (Session.Close and
// Options.Events done) it returns nil. If ctx ends
// first, it closes the remaining connections, cancels the contexts given
// to the Backend and returns ctx's error. Sessions that did not QUIT are
// closed without Commit, so no deletion is lost or half-done.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing.Store(true)
	for ln := range s.listeners {
		(*ln).Close()
	}
	conns := make([]*trackedConn, 0, len(s.conns))
	for tc := range s.conns {
		conns = append(conns, tc)
	}
	s.checkDrained()
	s.mu.Unlock()

	// Wake every connection blocked reading a command. A connection
	// about to read checks closing after setting its own deadline (see
	// conn.readLine), so none is missed.
	past := time.Unix(1, 0)
	for _, tc := range conns {
		tc.raw.SetReadDeadline(past)
	}
	select {
	case <-s.drained:
		s.cancel()
		return nil
	case <-ctx.Done():
	}
	s.forceClose()
	return ctx.Err()
}

// Close closes the listeners and every connection at once, without
// waiting. Sessions are closed without Commit.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closing.Store(true)
	for ln := range s.listeners {
		(*ln).Close()
	}
	s.checkDrained()
	s.mu.Unlock()
	s.forceClose()
	return nil
}

func (s *Server) forceClose() {
	s.cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	for tc := range s.conns {
		tc.raw.Close()
	}
}
