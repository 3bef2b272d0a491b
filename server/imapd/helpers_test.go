package imapd_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"mailsetup/internal/testkit"
	"mailsetup/server/accounts"
	"mailsetup/server/auth"
	"mailsetup/server/events"
	"mailsetup/server/imapd"
	"mailsetup/server/mailstore"
)

const (
	john     = "john@johndoe.com"
	password = "correct horse"
)

type eventLog struct {
	mu  sync.Mutex
	got []events.Event
}

func (l *eventLog) Emit(e events.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, e)
}

func (l *eventLog) find(kind events.Kind) (events.Event, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.got {
		if e.Kind == kind {
			return e, true
		}
	}
	return events.Event{}, false
}

// rig is a mail store with one account and IMAP servers on loopback:
// implicit TLS (993-style), plain with STARTTLS (143-style), and plain
// with insecure logins allowed (for raw protocol tests).
type rig struct {
	store    *mailstore.Store
	ev       *eventLog
	certFile string
	roots    *x509.CertPool
	tlsConf  *tls.Config

	implicit, starttls, insecure string
	servers                      []*imapd.Server
	log                          *testWriter // the servers' log
}

func start(t *testing.T) *rig {
	t.Helper()
	tlsConf, certFile := testkit.TLS(t)
	pem, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	accts, err := accounts.Open(filepath.Join(t.TempDir(), "accounts.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := accts.Add(john, password); err != nil {
		t.Fatal(err)
	}
	ev := &eventLog{}
	authn := auth.New(auth.Options{Accounts: accts, IsLocal: func(d string) bool { return d == "johndoe.com" }, Events: ev})
	store, err := mailstore.Open(t.TempDir(), mailstore.Options{NoSync: true, Hostname: "test.example"})
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{store: store, ev: ev, certFile: certFile, roots: roots, tlsConf: tlsConf, log: newTestWriter(t)}
	serve := func(opts imapd.Options) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if opts.ImplicitTLS {
			ln = tls.NewListener(ln, tlsConf)
		}
		opts.Store, opts.Auth, opts.Events, opts.Logger = store, authn, ev, slog.New(slog.NewTextHandler(r.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
		s := imapd.New(opts)
		done := make(chan error, 1)
		go func() { done <- s.Serve(ln) }()
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := s.Shutdown(ctx); err != nil {
				t.Errorf("shutdown: %v", err)
			}
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
		})
		r.servers = append(r.servers, s)
		return ln.Addr().String()
	}
	r.implicit = serve(imapd.Options{TLSConfig: tlsConf, ImplicitTLS: true, MaxLiteralBytes: 1 << 20})
	r.starttls = serve(imapd.Options{TLSConfig: tlsConf, MaxLiteralBytes: 1 << 20})
	r.insecure = serve(imapd.Options{AllowInsecureAuth: true, TLSConfig: tlsConf, MaxLiteralBytes: 1 << 20})
	return r
}

func (r *rig) clientTLS() *tls.Config {
	return &tls.Config{RootCAs: r.roots, ServerName: "localhost"}
}

// dial connects with go-imap's client over implicit TLS and logs in.
func (r *rig) dial(t *testing.T, opts *imapclient.Options) *imapclient.Client {
	t.Helper()
	if opts == nil {
		opts = &imapclient.Options{}
	}
	opts.TLSConfig = r.clientTLS()
	c, err := imapclient.DialTLS(r.implicit, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(john, password).Wait(); err != nil {
		t.Fatalf("login: %v", err)
	}
	return c
}

// user returns john's mail storage.
func (r *rig) user(t *testing.T) *mailstore.User {
	t.Helper()
	u, err := r.store.User(john)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// deliver puts a message into a mailbox as SMTP would.
func (r *rig) deliver(t *testing.T, mailbox, subject, body string) mailstore.Message {
	t.Helper()
	m, err := r.user(t).Deliver(mailbox, strings.NewReader(message(subject, body)), mailstore.DeliverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func message(subject, body string) string {
	return "From: Jane Doe <jane@johndoe.com>\r\n" +
		"To: John Doe <john@johndoe.com>\r\n" +
		"Subject: " + subject + "\r\n" +
		"Date: Mon, 02 Mar 2026 10:00:00 +0100\r\n" +
		"Message-ID: <" + strings.ReplaceAll(subject, " ", "-") + "@johndoe.com>\r\n" +
		"\r\n" + body + "\r\n"
}

// raw is a line-oriented protocol connection for transcript tests.
type raw struct {
	t    *testing.T
	c    net.Conn
	r    *bufio.Reader
	tags int
}

func dialRaw(t *testing.T, addr string, tlsConf *tls.Config) *raw {
	t.Helper()
	var c net.Conn
	var err error
	if tlsConf != nil {
		c, err = tls.Dial("tcp", addr, tlsConf)
	} else {
		c, err = net.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	rc := &raw{t: t, c: c, r: bufio.NewReader(c)}
	if g := rc.line(); !strings.HasPrefix(g, "* OK") {
		t.Fatalf("greeting %q", g)
	}
	return rc
}

func (rc *raw) line() string {
	rc.t.Helper()
	l, err := rc.r.ReadString('\n')
	if err != nil {
		rc.t.Fatalf("reading: %v (got %q)", err, l)
	}
	return strings.TrimRight(l, "\r\n")
}

func (rc *raw) send(s string) {
	rc.t.Helper()
	if _, err := rc.c.Write([]byte(s)); err != nil {
		rc.t.Fatal(err)
	}
}

// cmd sends a command with a fresh tag and returns every line up to and
// including the tagged reply.
func (rc *raw) cmd(s string) []string {
	rc.t.Helper()
	rc.tags++
	tag := fmt.Sprintf("t%d", rc.tags)
	rc.send(tag + " " + s + "\r\n")
	return rc.until(tag)
}

func (rc *raw) until(tag string) []string {
	rc.t.Helper()
	var lines []string
	for {
		l := rc.line()
		lines = append(lines, l)
		if strings.HasPrefix(l, tag+" ") {
			return lines
		}
	}
}

func last(lines []string) string { return lines[len(lines)-1] }

func hasLine(lines []string, prefix string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

// newTestWriter passes log lines to t until the test ends and keeps them.
func newTestWriter(t *testing.T) *testWriter {
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return w
}

type testWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
	all  strings.Builder
}

// String returns everything logged so far.
func (w *testWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.all.String()
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.all.Write(p)
	if !w.done {
		w.t.Log(strings.TrimSpace(string(p)))
	}
	return len(p), nil
}
