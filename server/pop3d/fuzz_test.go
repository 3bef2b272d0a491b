//go:build unix

package pop3d_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"mailsetup/server/pop3d"
)

// socketPair returns the two ends of a Unix stream socket pair: buffered
// like TCP and able to half-close (unlike net.Pipe), without the
// TIME_WAIT ports thousands of loopback TCP connections would leave.
func socketPair() (a, b *net.UnixConn, err error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		return nil, nil, err
	}
	conns := make([]*net.UnixConn, 2)
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "socketpair")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			return nil, nil, err
		}
		conns[i] = c.(*net.UnixConn)
	}
	return conns[0], conns[1], nil
}

// pairListener hands the server ends of socket pairs to Serve.
type pairListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newPairListener() *pairListener {
	return &pairListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pairListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pairListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *pairListener) Addr() net.Addr { return &net.UnixAddr{Name: "socketpair", Net: "unix"} }

// dial returns the client end of a new socket pair whose server end
// Serve accepts.
func (l *pairListener) dial() (*net.UnixConn, error) {
	client, server, err := socketPair()
	if err != nil {
		return nil, err
	}
	select {
	case l.conns <- server:
		return client, nil
	case <-l.done:
		client.Close()
		server.Close()
		return nil, net.ErrClosed
	}
}

// fuzzSession is a stateless Session over a fixed maildrop, so that
// millions of fuzz runs keep no records.
type fuzzSession struct{ msgs []fakeMsg }

func (s fuzzSession) Messages() ([]pop3d.MessageInfo, error) {
	infos := make([]pop3d.MessageInfo, len(s.msgs))
	for i, m := range s.msgs {
		infos[i] = pop3d.MessageInfo{Size: int64(len(m.body)), UIDL: m.uidl}
	}
	return infos, nil
}
func (s fuzzSession) Open(n int) (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader(s.msgs[n].body)), nil
}
func (fuzzSession) Retrieved(int)      {}
func (fuzzSession) Commit([]int) error { return nil }
func (fuzzSession) Close() error       { return nil }

// panicWatch is a slog handler that notes the server's "pop3 panic" log
// line, which is all a recovered panic leaves on the wire's side.
type panicWatch struct{ seen *atomic.Bool }

func (h panicWatch) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelError }
func (h panicWatch) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "panic") {
		h.seen.Store(true)
	}
	return nil
}
func (h panicWatch) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h panicWatch) WithGroup(string) slog.Handler      { return h }

// Replies after which the server closes the connection, so that later
// lines get none.
var closingReplies = []string{
	"+OK bye",
	"-ERR line too long",
	"-ERR too many errors",
	"-ERR unknown command, closing connection",
}

// FuzzCommand feeds arbitrary lines to a session over a socket pair (it
// can half-close, unlike net.Pipe, so the whole input is sent at once,
// pipelined, then EOF) and requires no panic and one reply per line, up to
// a reply after which the server closes. With login set, the lines run in
// the TRANSACTION state.
func FuzzCommand(f *testing.F) {
	for _, seed := range []struct {
		login bool
		in    string
	}{
		{false, "CAPA\r\nUSER " + testUser + "\r\nPASS " + testPass + "\r\nSTAT\r\nQUIT\r\n"},
		{false, "AUTH PLAIN " + b64("\x00"+testUser+"\x00"+testPass) + "\r\nLIST\r\nUIDL\r\n"},
		{false, "AUTH PLAIN\r\n" + b64("\x00"+testUser+"\x00"+testPass) + "\r\nRETR 1\r\n"},
		{false, "AUTH PLAIN\r\n*\r\nAUTH\r\nAUTH X\r\nSTLS\r\nSTAT\r\n"},
		{false, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"},
		{true, "STAT\r\nLIST\r\nLIST 1\r\nUIDL\r\nUIDL 2\r\nRETR 1\r\nTOP 2 0\r\nTOP 3 1\r\n"},
		{true, "DELE 1\r\nDELE 1\r\nRETR 1\r\nRSET\r\nNOOP\r\nQUIT\r\n"},
		{true, "list 99999999999999999999\r\ntop 1 -1\r\ndele\r\nnoop x\r\nuser a\r\npass b\r\n"},
		{true, "capa\nstat\n\n\x00\r\nTOP 1"},
		{false, strings.Repeat("x", 600) + "\r\nCAPA\r\n"},
	} {
		f.Add(seed.login, seed.in)
	}

	var panicked atomic.Bool
	msgs := []fakeMsg{
		{body: "Subject: a\r\n\r\n.dot\r\nbody\r\n", uidl: "u1"},
		{body: "Subject: b\n\nbare lf\n.\n", uidl: "u2"},
		{body: "no header end", uidl: "u3"},
	}
	backend := pop3d.BackendFunc(func(_ context.Context, _ pop3d.ConnInfo, user, pass string) (pop3d.Session, error) {
		if user != testUser || pass != testPass {
			return nil, pop3d.ErrAuthFailed
		}
		return fuzzSession{msgs}, nil
	})
	srv := pop3d.NewServer(backend, pop3d.Options{
		AllowInsecureAuth: true,
		MaxSessions:       -1,
		MaxPerIP:          -1,
		Logger:            slog.New(panicWatch{&panicked}),
	})
	ln := newPairListener()
	go srv.Serve(ln)
	f.Cleanup(func() { srv.Close() })

	f.Fuzz(func(t *testing.T, login bool, in string) {
		wire := in
		if !strings.HasSuffix(wire, "\n") {
			wire += "\r\n"
		}
		if login {
			wire = "USER " + testUser + "\r\nPASS " + testPass + "\r\n" + wire
		}
		lines := strings.Count(wire, "\n")

		nc, err := ln.dial()
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		go func() {
			nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
			nc.Write([]byte(wire)) // fails once the server has closed
			nc.CloseWrite()
		}()
		nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		out, err := io.ReadAll(nc)
		if err != nil {
			t.Fatalf("reading replies: %v (got %q)", err, out)
		}
		if panicked.Load() {
			t.Fatalf("server panicked on %q", wire)
		}
		if len(out) > 0 && !strings.HasSuffix(string(out), "\r\n") {
			t.Fatalf("output does not end in CRLF: %q", out)
		}
		replyLines := strings.Split(strings.TrimSuffix(string(out), "\r\n"), "\r\n")
		if !strings.HasPrefix(replyLines[0], "+OK") {
			t.Fatalf("greeting %q", replyLines[0])
		}
		var replies []string
		for _, l := range replyLines[1:] {
			if len(l) > 512-2 {
				t.Errorf("reply line of %d octets", len(l))
			}
			if strings.HasPrefix(l, "+OK") || strings.HasPrefix(l, "-ERR") || l == "+ " {
				replies = append(replies, l)
			}
		}
		switch {
		case len(replies) > lines:
			t.Fatalf("%d replies to %d lines:\n%s", len(replies), lines, out)
		case len(replies) == 0 && lines > 0:
			t.Fatalf("no reply to %q", wire)
		case len(replies) < lines:
			last := replies[len(replies)-1]
			closing := false
			for _, p := range closingReplies {
				closing = closing || strings.HasPrefix(last, p)
			}
			if !closing {
				t.Fatalf("%d replies to %d lines, the last %q does not close:\n%q\n%s", len(replies), lines, last, wire, out)
			}
		}
	})
}
