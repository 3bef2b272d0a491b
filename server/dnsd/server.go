package dnsd

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// ErrServerClosed is returned by Serve when it is called after Shutdown.
var ErrServerClosed = errors.New("dnsd: server closed")

// Server runs the handler on a UDP PacketConn and a TCP Listener.
type Server struct {
	h                         *Handler
	log                       *slog.Logger
	readTimeout, writeTimeout time.Duration
	started                   chan struct{}

	mu      sync.Mutex
	state   serverState
	members []*member
	done    chan struct{} // closed when Serve returns
	stop    sync.Once
}

type serverState int

const (
	idle serverState = iota
	serving
	closed
)

// member is one of the two miekg servers (UDP or TCP).
type member struct {
	srv      *dns.Server
	started  chan struct{} // closed by NotifyStartedFunc
	returned chan struct{} // closed when ActivateAndServe returns
}

// New returns a server answering with NewHandler(opts); it panics when
// opts.Policies is nil.
func New(opts Options) *Server {
	s := &Server{
		h:            NewHandler(opts),
		log:          opts.Logger,
		readTimeout:  opts.ReadTimeout,
		writeTimeout: opts.WriteTimeout,
		started:      make(chan struct{}),
		done:         make(chan struct{}),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.readTimeout <= 0 {
		s.readTimeout = DefaultTimeout
	}
	if s.writeTimeout <= 0 {
		s.writeTimeout = DefaultTimeout
	}
	return s
}

// Handler returns the server's handler.
func (s *Server) Handler() *Handler { return s.h }

// Started returns a channel closed once the server serves on every
// connection given to Serve. It is never closed when Serve fails before
// that, so wait on it together with Serve's result.
func (s *Server) Started() <-chan struct{} { return s.started }

// Serve answers queries on udp and tcp until Shutdown, then returns nil;
// if serving on either fails, it stops the other and returns the first
// error. Either connection may be nil (not both) to serve on one transport
// only. Serve takes ownership of the connections and closes them before it
// returns. Serve can be called once; after Shutdown it closes the
// connections and returns ErrServerClosed.
//
// Queries with the QR bit set are dropped unanswered; unparseable ones get
// FORMERR from the dns library; everything else reaches the Handler.
func (s *Server) Serve(udp net.PacketConn, tcp net.Listener) error {
	if udp == nil && tcp == nil {
		return errors.New("dnsd: Serve needs a UDP PacketConn or a TCP Listener")
	}
	s.mu.Lock()
	switch s.state {
	case closed:
		s.mu.Unlock()
		closeAll(udp, tcp)
		return ErrServerClosed
	case serving:
		s.mu.Unlock()
		return errors.New("dnsd: Serve called twice")
	}
	s.state = serving
	var pending atomic.Int32
	notify := func(m *member) func() {
		return func() {
			close(m.started)
			if pending.Add(-1) == 0 {
				close(s.started)
			}
		}
	}
	if udp != nil {
		m := s.newMember()
		m.srv.PacketConn = udp
		// Room for any query a client may send (the default is 512).
		m.srv.UDPSize = dns.DefaultMsgSize
		m.srv.NotifyStartedFunc = notify(m)
		s.members = append(s.members, m)
	}
	if tcp != nil {
		m := s.newMember()
		m.srv.Listener = writeTimeoutListener{tcp, s.writeTimeout}
		m.srv.NotifyStartedFunc = notify(m)
		s.members = append(s.members, m)
	}
	pending.Store(int32(len(s.members)))
	members := s.members
	s.mu.Unlock()
	defer close(s.done)

	errc := make(chan error, len(members))
	for _, m := range members {
		go func() {
			err := m.srv.ActivateAndServe()
			close(m.returned)
			errc <- err
		}()
	}
	var first error
	for range members {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
		// One transport stopped (by Shutdown or an error): stop the other.
		s.stopMembers()
	}
	// The dns library closes what it served on; this also covers a
	// transport that failed before it started.
	closeAll(udp, tcp)
	return first
}

func (s *Server) newMember() *member {
	m := &member{started: make(chan struct{}), returned: make(chan struct{})}
	m.srv = &dns.Server{
		Handler:       s.h,
		ReadTimeout:   s.readTimeout,
		WriteTimeout:  s.writeTimeout,
		MsgAcceptFunc: acceptQuery,
		MsgInvalidFunc: func(_ []byte, err error) {
			s.log.LogAttrs(context.Background(), slog.LevelDebug, "dns query unparseable", slog.String("error", err.Error()))
		},
	}
	return m
}

// acceptQuery drops responses (answering them could start a loop between
// two servers) and lets the Handler judge everything else, so that its
// NOTIMP and FORMERR rules hold on the wire too.
func acceptQuery(dh dns.Header) dns.MsgAcceptAction {
	const qr = 1 << 15
	if dh.Bits&qr != 0 {
		return dns.MsgIgnore
	}
	return dns.MsgAccept
}

// stopMembers starts the shutdown of every member once. A member is shut
// down once it has started; one that returned before starting needs
// nothing.
func (s *Server) stopMembers() {
	s.stop.Do(func() {
		for _, m := range s.members {
			go func() {
				select {
				case <-m.started:
					m.srv.ShutdownContext(context.Background())
				case <-m.returned:
				}
			}()
		}
	})
}

// Shutdown stops the server: it stops accepting queries, lets the
// in-flight ones finish, and waits until Serve has returned or ctx is
// done (then it returns ctx's error; the server still stops). Shutdown
// before Serve makes Serve return ErrServerClosed. It may be called more
// than once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	prev := s.state
	s.state = closed
	served := prev == serving || len(s.members) > 0
	s.mu.Unlock()
	if !served {
		return nil
	}
	s.stopMembers()
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func closeAll(udp net.PacketConn, tcp net.Listener) {
	if udp != nil {
		udp.Close()
	}
	if tcp != nil {
		tcp.Close()
	}
}

// writeTimeoutListener gives every accepted connection a write deadline
// per write (the dns library declares WriteTimeout but does not apply it).
type writeTimeoutListener struct {
	net.Listener
	timeout time.Duration
}

func (l writeTimeoutListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &writeTimeoutConn{Conn: c, timeout: l.timeout}, nil
}

type writeTimeoutConn struct {
	net.Conn
	timeout time.Duration
}

func (c *writeTimeoutConn) Write(b []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}
