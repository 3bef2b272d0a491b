package pop3d_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"mailsetup/server/pop3d"
)

// The fake backend: one maildrop shared by every user, with fault knobs.

const (
	testUser = "alice@example.test"
	testPass = "correct horse battery"
)

type fakeMsg struct {
	body string
	// open, when set, makes the content (for big, slow or failing
	// messages); size is then the reported size.
	open func() io.Reader
	size int64
	uidl string
}

type loginCall struct {
	info       pop3d.ConnInfo
	user, pass string
}

type fakeBackend struct {
	msgs  []fakeMsg
	infos []pop3d.MessageInfo // prebuilt, shared by every session

	mu sync.Mutex
	// knobs
	loginErr      error
	loginPanic    bool
	messagesErr   error
	messagesPanic bool
	openErr       error
	openPanic     bool
	commitErr     error
	closeDelay    time.Duration // Close waits this long before it counts
	// expire, when set, makes sessions implement pop3d.SessionExpire
	// with this value.
	expire string
	// records
	logins   []loginCall
	sessions []*fakeSession
	opened   chan int // if set, receives n on every Open
}

func newFakeBackend(msgs ...fakeMsg) *fakeBackend {
	b := &fakeBackend{msgs: msgs}
	for i, m := range msgs {
		size := m.size
		if m.open == nil {
			size = int64(len(strings.ReplaceAll(strings.ReplaceAll(m.body, "\r\n", "\n"), "\n", "\r\n")))
		}
		uidl := m.uidl
		if uidl == "" {
			uidl = fmt.Sprintf("uid-%04d", i+1)
		}
		b.infos = append(b.infos, pop3d.MessageInfo{Size: size, UIDL: uidl})
	}
	return b
}

// defaultMessages is a maildrop of three small messages.
func defaultMessages() []fakeMsg {
	return []fakeMsg{
		{body: "Subject: one\r\n\r\nfirst body\r\n"},
		{body: "Subject: two\r\n\r\nsecond body\r\nline two\r\n"},
		{body: "Subject: three\r\n\r\nthird\r\n"},
	}
}

func (b *fakeBackend) set(f func(b *fakeBackend)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	f(b)
}

func (b *fakeBackend) Login(ctx context.Context, c pop3d.ConnInfo, user, pass string) (pop3d.Session, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.logins = append(b.logins, loginCall{c, user, pass})
	if b.loginPanic {
		panic("fake backend: login panic")
	}
	if b.loginErr != nil {
		return nil, b.loginErr
	}
	if user != testUser || pass != testPass {
		return nil, pop3d.ErrAuthFailed
	}
	s := &fakeSession{b: b, user: user, closed: make(chan struct{})}
	b.sessions = append(b.sessions, s)
	if b.expire != "" {
		return expireSession{s, b.expire}, nil
	}
	return s, nil
}

// expireSession is a fakeSession with a per-user EXPIRE value.
type expireSession struct {
	*fakeSession
	expire string
}

func (s expireSession) Expire() string { return s.expire }

var _ pop3d.SessionExpire = expireSession{}

func (b *fakeBackend) lastSession(t *testing.T) *fakeSession {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.sessions) == 0 {
		t.Fatal("no session was opened")
	}
	return b.sessions[len(b.sessions)-1]
}

type fakeSession struct {
	b    *fakeBackend
	user string

	mu         sync.Mutex
	retrieved  []int
	commits    [][]int
	closeCalls int
	closed     chan struct{}
}

func (s *fakeSession) Messages() ([]pop3d.MessageInfo, error) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if s.b.messagesPanic {
		panic("fake backend: messages panic")
	}
	if s.b.messagesErr != nil {
		return nil, s.b.messagesErr
	}
	return s.b.infos, nil
}

func (s *fakeSession) Open(n int) (io.ReadCloser, error) {
	s.b.mu.Lock()
	openErr, openPanic, opened := s.b.openErr, s.b.openPanic, s.b.opened
	s.b.mu.Unlock()
	if opened != nil {
		opened <- n
	}
	if openPanic {
		panic("fake backend: open panic")
	}
	if openErr != nil {
		return nil, openErr
	}
	m := s.b.msgs[n]
	if m.open != nil {
		return io.NopCloser(m.open()), nil
	}
	return io.NopCloser(strings.NewReader(m.body)), nil
}

func (s *fakeSession) Retrieved(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.retrieved = append(s.retrieved, n)
}

func (s *fakeSession) Commit(deleted []int) error {
	s.mu.Lock()
	s.commits = append(s.commits, append([]int(nil), deleted...))
	s.mu.Unlock()
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	return s.b.commitErr
}

func (s *fakeSession) Close() error {
	s.b.mu.Lock()
	delay := s.b.closeDelay
	s.b.mu.Unlock()
	time.Sleep(delay)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeCalls++
	if s.closeCalls == 1 {
		close(s.closed)
	}
	return nil
}

func (s *fakeSession) snapshot() (retrieved []int, commits [][]int, closeCalls int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.retrieved...), append([][]int(nil), s.commits...), s.closeCalls
}

// The test server.

type testServer struct {
	srv    *pop3d.Server
	addr   string
	b      *fakeBackend
	events chan pop3d.SessionEvent
	served chan error // Serve's result

	mu      sync.Mutex
	pending []pop3d.SessionEvent // events read while waiting for another
}

// startServer serves b on 127.0.0.1:0. opts.Events is set by the
// harness; insecure auth is allowed unless configure turns it off.
func startServer(t testing.TB, b *fakeBackend, configure ...func(*pop3d.Options)) *testServer {
	t.Helper()
	opts := pop3d.Options{AllowInsecureAuth: true, Logger: slog.New(slog.DiscardHandler)}
	for _, f := range configure {
		f(&opts)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if opts.ImplicitTLS {
		ln = tls.NewListener(ln, opts.TLSConfig)
	}
	ts := &testServer{b: b, addr: ln.Addr().String(), events: make(chan pop3d.SessionEvent, 1000), served: make(chan error, 1)}
	opts.Events = func(ev pop3d.SessionEvent) {
		select {
		case ts.events <- ev:
		default:
		}
	}
	ts.srv = pop3d.NewServer(b, opts)
	go func() { ts.served <- ts.srv.Serve(ln) }()
	t.Cleanup(func() {
		ts.srv.Close()
		select {
		case err := <-ts.served:
			if !errors.Is(err, pop3d.ErrServerClosed) {
				t.Errorf("Serve returned %v, want ErrServerClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return after Close")
		}
	})
	return ts
}

// event returns the session end event of the client's connection. It
// closes the client's end first, as a client does once the server has
// answered QUIT or closed.
func (c *client) event() pop3d.SessionEvent {
	c.t.Helper()
	ts, local := c.ts, c.nc.LocalAddr().String()
	c.nc.Close()
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for i, ev := range ts.pending {
		if ev.Remote.String() == local {
			ts.pending = append(ts.pending[:i], ts.pending[i+1:]...)
			return ev
		}
	}
	timeout := time.After(5 * time.Second)
	for {
		select {
		case ev := <-ts.events:
			if ev.Remote.String() == local {
				return ev
			}
			ts.pending = append(ts.pending, ev)
		case <-timeout:
			c.t.Fatalf("no session end event for %s", local)
			return pop3d.SessionEvent{}
		}
	}
}

// client speaks raw POP3 lines.
type client struct {
	t  testing.TB
	ts *testServer
	nc net.Conn
	r  *bufio.Reader
}

// dial connects and expects the greeting.
func (ts *testServer) dial(t testing.TB) *client {
	t.Helper()
	c := ts.dialRaw(t)
	c.expect("+OK")
	return c
}

func (ts *testServer) dialRaw(t testing.TB) *client {
	t.Helper()
	nc, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &client{t: t, ts: ts, nc: nc, r: bufio.NewReader(nc)}
}

// login dials and logs in with USER/PASS.
func (ts *testServer) login(t testing.TB) *client {
	t.Helper()
	c := ts.dial(t)
	c.cmd("USER "+testUser, "+OK")
	c.cmd("PASS "+testPass, "+OK")
	return c
}

func (c *client) send(line string) {
	c.t.Helper()
	c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c.nc, line+"\r\n"); err != nil {
		c.t.Fatalf("sending %q: %v", line, err)
	}
}

// readLine returns one line without CRLF.
func (c *client) readLine() string {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("reading reply: %v (got %q)", err, line)
	}
	if !strings.HasSuffix(line, "\r\n") {
		c.t.Fatalf("reply line %q does not end in CRLF", line)
	}
	return strings.TrimSuffix(line, "\r\n")
}

// expect reads one line and checks its prefix.
func (c *client) expect(prefix string) string {
	c.t.Helper()
	line := c.readLine()
	if !strings.HasPrefix(line, prefix) {
		c.t.Fatalf("got %q, want prefix %q", line, prefix)
	}
	return line
}

// cmd sends a line and expects a reply with prefix.
func (c *client) cmd(line, prefix string) string {
	c.t.Helper()
	c.send(line)
	return c.expect(prefix)
}

// multi reads the lines of a multi-line response up to ".", un-stuffed.
func (c *client) multi() []string {
	c.t.Helper()
	var lines []string
	for {
		l := c.readLine()
		if l == "." {
			return lines
		}
		lines = append(lines, strings.TrimPrefix(l, "."))
	}
}

// multiRaw reads a multi-line body as it is on the wire, terminator
// included.
func (c *client) multiRaw() string {
	c.t.Helper()
	var b strings.Builder
	c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		line, err := c.r.ReadString('\n')
		b.WriteString(line)
		if err != nil {
			c.t.Fatalf("reading multi-line body: %v (got %q)", err, b.String())
		}
		if line == ".\r\n" {
			return b.String()
		}
	}
}

// expectClosed checks that the server closes the connection without
// sending anything more, then closes the client's end (the server lingers
// until then, see conn.lingerClose).
func (c *client) expectClosed() {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	rest, err := io.ReadAll(c.r)
	c.nc.Close()
	if err != nil && !isReset(err) {
		c.t.Fatalf("waiting for close: %v (got %q)", err, rest)
	}
	if len(rest) > 0 {
		c.t.Fatalf("got %q before close, want nothing", rest)
	}
}

func isReset(err error) bool {
	var ne net.Error
	return !errors.As(err, &ne) || !ne.Timeout()
}

// startTLS sends STLS and upgrades the connection.
func (c *client) startTLS(cfg *tls.Config) {
	c.t.Helper()
	c.cmd("STLS", "+OK")
	tc := tls.Client(c.nc, cfg)
	tc.SetDeadline(time.Now().Add(5 * time.Second))
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("TLS handshake: %v", err)
	}
	c.nc = tc
	c.r = bufio.NewReader(tc)
}

// tlsClient runs a TLS handshake on a fresh connection (implicit TLS).
func (c *client) tlsClient(cfg *tls.Config) {
	c.t.Helper()
	tc := tls.Client(c.nc, cfg)
	tc.SetDeadline(time.Now().Add(5 * time.Second))
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("TLS handshake: %v", err)
	}
	c.nc = tc
	c.r = bufio.NewReader(tc)
}

func newReader(nc net.Conn) *bufio.Reader { return bufio.NewReader(nc) }

func dialTimeout(addr string) (net.Conn, error) { return net.DialTimeout("tcp", addr, 2*time.Second) }

func mustListen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// runtimeMem is a heap snapshot taken after a GC.
type runtimeMem struct{ heapAlloc, totalAlloc uint64 }

func (m *runtimeMem) read() {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.heapAlloc, m.totalAlloc = ms.HeapAlloc, ms.TotalAlloc
}

// testTLS returns a server config with a fresh self-signed certificate
// for 127.0.0.1 and a client config that trusts it.
func testTLS(t testing.TB) (server, clientCfg *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "pop3d test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	clientCfg = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	return server, clientCfg
}

// logBuffer is a concurrency-safe buffer for a text slog handler.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func debugLogger(buf *logBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
