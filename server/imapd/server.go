package imapd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"mailsetup/server/auth"
	"mailsetup/server/events"
	"mailsetup/server/imapd/filter"
	"mailsetup/server/mailstore"
)

// Options configure a Server.
type Options struct {
	// Store holds the mailboxes. Required.
	Store *mailstore.Store
	// Auth checks LOGIN and AUTHENTICATE PLAIN credentials. Required.
	Auth *auth.Authenticator
	// Events receives the client's ID (RFC 2971). Nil: discard.
	Events events.Sink
	// Logger receives errors and session summaries; never passwords.
	// Nil: discard.
	Logger *slog.Logger
	// TLSConfig enables STARTTLS on a plain listener (143).
	TLSConfig *tls.Config
	// ImplicitTLS says the listener is already TLS (993, RFC 8314).
	ImplicitTLS bool
	// AllowInsecureAuth allows LOGIN and AUTHENTICATE without TLS. Only
	// for tests on loopback: passwords would travel in the clear.
	// Without it a plain connection advertises LOGINDISABLED until
	// STARTTLS and refuses logins with PRIVACYREQUIRED.
	AllowInsecureAuth bool
	// MaxLiteralBytes bounds one APPEND (advertised as APPENDLIMIT, RFC
	// 7889). Default 25 MiB.
	MaxLiteralBytes int64
	// QuotaBytes returns an account's quota for APPEND, COPY and MOVE
	// (0: none). Nil: no quota.
	QuotaBytes func(account string) int64
	// LoggedIn is told the client's address after each successful login
	// (the listener's limits then count the connection as a customer's);
	// may be nil.
	LoggedIn func(remote net.Addr)
}

// Limits the library does not set itself. go-imap's server already
// bounds a command to 50 KiB, waits 30 s for a command before login and
// 35 minutes after (RFC 3501 §5.4 asks for at least 30), and 5 minutes
// for a literal; literals of commands other than APPEND are at most 4 KiB.
const (
	// authTimeout bounds one credential check.
	authTimeout = 30 * time.Second
	// maxFailedLogins per connection; then the connection is closed.
	maxFailedLogins = 5
	// rescanInterval: a selected mailbox is re-read at least this often
	// on NOOP and during IDLE, to notice Maildir agents that mailstore
	// only sees when asked.
	rescanInterval = 30 * time.Second
	// shutdownPoll is how often Shutdown looks for sessions that became
	// idle.
	shutdownPoll = 20 * time.Millisecond
)

// Server is an IMAP server for one or more listeners sharing options.
type Server struct {
	opts Options
	log  *slog.Logger
	imap *imapserver.Server
	// limits are AllowInsecureAuth and MaxLiteralBytes, then SetLimits';
	// each connection keeps the ones it started with.
	limits atomic.Pointer[Limits]

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	sessions  map[*session]struct{}
	closing   bool
	drained   chan struct{} // closed when closing and no session is left
}

// Limits are the options SetLimits changes.
type Limits struct {
	AllowInsecureAuth bool
	MaxLiteralBytes   int64
}

// SetLimits changes AllowInsecureAuth and MaxLiteralBytes (a config
// reload) for the connections accepted from now on.
func (s *Server) SetLimits(l Limits) {
	if l.MaxLiteralBytes <= 0 {
		l.MaxLiteralBytes = 25 << 20
	}
	l.MaxLiteralBytes = min(l.MaxLiteralBytes, math.MaxUint32)
	s.limits.Store(&l)
}

// New returns a server; call Serve for each listener.
func New(opts Options) *Server {
	if opts.Events == nil {
		opts.Events = events.Discard{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		opts:      opts,
		log:       opts.Logger.With("proto", string(events.ProtoIMAP)),
		listeners: map[net.Listener]struct{}{},
		sessions:  map[*session]struct{}{},
		drained:   make(chan struct{}),
	}
	s.SetLimits(Limits{AllowInsecureAuth: opts.AllowInsecureAuth, MaxLiteralBytes: opts.MaxLiteralBytes})
	s.imap = imapserver.New(&imapserver.Options{
		NewSession: s.newSession,
		Caps: imap.CapSet{
			imap.CapIMAP4rev1:   {},
			imap.CapNamespace:   {},
			imap.CapUIDPlus:     {},
			imap.CapMove:        {},
			imap.CapSpecialUse:  {},
			imap.CapChildren:    {},
			imap.CapESearch:     {},
			imap.CapBinary:      {},
			imap.CapStatusSize:  {},
			imap.CapAppendLimit: {},
		},
		Logger: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		// The connection filter performs STARTTLS and enforces TLS
		// before login (conn.go); the library sees a plain stream.
		TLSConfig:    nil,
		InsecureAuth: true,
	})
	return s
}

// Serve accepts connections on ln until Shutdown, and returns nil then.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()
	err := s.imap.Serve(&listener{Listener: ln, s: s})
	s.mu.Lock()
	closing := s.closing
	s.mu.Unlock()
	if closing || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting, says BYE to every session as soon as it is
// not in the middle of a command (at once for IDLE), and waits for the
// sessions to end. When ctx ends first, the remaining connections are
// closed and ctx's error returned.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.closing {
		s.closing = true
		for ln := range s.listeners {
			ln.Close()
		}
		if len(s.sessions) == 0 {
			close(s.drained)
		}
	}
	s.mu.Unlock()

	tick := time.NewTicker(shutdownPoll)
	defer tick.Stop()
	for {
		s.mu.Lock()
		for sess := range s.sessions {
			sess.byeIfIdle("server shutting down, please reconnect later")
		}
		s.mu.Unlock()
		select {
		case <-s.drained:
			return nil
		case <-ctx.Done():
			s.mu.Lock()
			for sess := range s.sessions {
				sess.c.Close()
			}
			s.mu.Unlock()
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Reject is the netlimit refusal for IMAP: an untagged BYE (RFC 3501
// §7.1.5) with the UNAVAILABLE code (RFC 5530).
func Reject(c net.Conn, reason string) {
	fmt.Fprintf(c, "* BYE [UNAVAILABLE] %s, try again later\r\n", reason)
}

// listener wraps every accepted connection in the filter.
type listener struct {
	net.Listener
	s *Server
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	o := l.s.opts
	return filter.New(c, filter.Options{TLSConfig: o.TLSConfig, ImplicitTLS: o.ImplicitTLS, AllowInsecureAuth: l.s.limits.Load().AllowInsecureAuth}), nil
}

// newSession is imapserver's session factory.
func (s *Server) newSession(ic *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
	c, ok := ic.NetConn().(*filter.Conn)
	if !ok {
		return nil, nil, fmt.Errorf("imapd: connection of type %T not from our listener", ic.NetConn())
	}
	sess := &session{s: s, ic: ic, c: c, remote: remoteAddr(c.RemoteAddr()), insecure: c.AllowInsecureAuth(), maxLiteral: s.limits.Load().MaxLiteralBytes}
	sess.log = s.log.With("remote", sess.remote.String())
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return nil, nil, &imap.Error{Type: imap.StatusResponseTypeBye, Code: imap.ResponseCodeUnavailable, Text: "server shutting down, please reconnect later"}
	}
	s.sessions[sess] = struct{}{}
	c.SetSession(sess)
	return sess, nil, nil
}

// forget removes a closed session.
func (s *Server) forget(sess *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sessions[sess]; !ok {
		return
	}
	delete(s.sessions, sess)
	if s.closing && len(s.sessions) == 0 {
		close(s.drained)
	}
}
