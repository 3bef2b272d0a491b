package smtpd_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"mailsetup/internal/testkit"
	"mailsetup/server/accounts"
	"mailsetup/server/auth"
	"mailsetup/server/events"
	"mailsetup/server/smtpd"
)

// directory: johndoe.com is local; john has the alias info@.
type directory struct{}

func (directory) Resolve(a string) (string, bool) {
	switch strings.ToLower(a) {
	case "john@johndoe.com", "info@johndoe.com":
		return "john@johndoe.com", true
	case "jane@johndoe.com":
		return "jane@johndoe.com", true
	}
	return "", false
}

func (directory) MaySendAs(account, from string) bool {
	acct, ok := directory{}.Resolve(from)
	return ok && acct == account
}

func (directory) IsLocalDomain(d string) bool { return d == "johndoe.com" }

type stored struct {
	account string
	from    string
	to      []string
	data    string
}

type deliverer struct {
	mu  sync.Mutex
	got []stored
}

func (d *deliverer) DeliverLocal(account string, m io.Reader) error {
	b, err := io.ReadAll(m)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.got = append(d.got, stored{account: account, data: string(b)})
	return err
}

func (d *deliverer) Enqueue(from string, to []string, m io.Reader) error {
	b, err := io.ReadAll(m)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.got = append(d.got, stored{from: from, to: to, data: string(b)})
	return err
}

func (d *deliverer) all() []stored {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]stored(nil), d.got...)
}

type eventLog struct {
	mu  sync.Mutex
	got []events.Event
}

func (l *eventLog) Emit(e events.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, e)
}

func (l *eventLog) find(result events.Result) (events.Event, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.got {
		if e.Result == result {
			return e, true
		}
	}
	return events.Event{}, false
}

type rig struct {
	submission, submissions, inbound string
	del                              *deliverer
	ev                               *eventLog
	servers                          []*smtpd.Server
}

func start(t *testing.T) *rig {
	t.Helper()
	return startWith(t, nil)
}

// startWith is start with the servers' options changed by edit.
func startWith(t *testing.T, edit func(*smtpd.Options)) *rig {
	t.Helper()
	tlsConf, _ := testkit.TLS(t)
	store, err := accounts.Open(filepath.Join(t.TempDir(), "accounts.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Add("john@johndoe.com", "correct horse"); err != nil {
		t.Fatal(err)
	}
	ev := &eventLog{}
	authn := auth.New(auth.Options{Accounts: store, IsLocal: directory{}.IsLocalDomain, Events: ev})
	r := &rig{del: &deliverer{}, ev: ev}
	spool := t.TempDir()
	serve := func(mode smtpd.Mode, implicit bool) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		opts := smtpd.Options{Mode: mode, Hostname: "mail.johndoe.com", Auth: authn, Directory: directory{},
			Deliverer: r.del, Events: ev, TLSConfig: tlsConf, ImplicitTLS: implicit, SpoolDir: spool, MaxMessageBytes: 64 << 10}
		if edit != nil {
			edit(&opts)
		}
		s := smtpd.New(opts)
		r.servers = append(r.servers, s)
		go s.Serve(ln)
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			s.Shutdown(ctx)
		})
		return ln.Addr().String()
	}
	r.submission = serve(smtpd.Submission, false)
	r.submissions = serve(smtpd.Submission, true)
	r.inbound = serve(smtpd.Inbound, false)
	return r
}

// swaks runs the real swaks client and returns its transcript.
func swaks(t *testing.T, addr string, args ...string) string {
	t.Helper()
	path := testkit.Tool(t, "swaks", "swaks")
	host, port, _ := net.SplitHostPort(addr)
	all := append([]string{"--server", host, "--port", port, "--timeout", "20", "--helo", "client.example"}, args...)
	out, _ := exec.Command(path, all...).CombinedOutput() // exit status varies with the failure; the transcript is what we check
	return string(out)
}

func expect(t *testing.T, transcript string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(transcript, l) {
			t.Errorf("transcript lacks %q:\n%s", l, transcript)
		}
	}
}

func TestSubmissionWithSwaks(t *testing.T) {
	r := start(t)
	auth := func(user string) []string {
		return []string{"--auth", "PLAIN", "--auth-user", user, "--auth-password", "correct horse"}
	}
	t.Run("starttls full address", func(t *testing.T) {
		out := swaks(t, r.submission, append(auth("john@johndoe.com"), "--tls", "--from", "john@johndoe.com", "--to", "jane@johndoe.com,someone@elsewhere.example")...)
		expect(t, out, "<~  235 2.0.0", "<~  250 2.0.0")
	})
	t.Run("implicit tls login", func(t *testing.T) {
		out := swaks(t, r.submissions, "--tlsc", "--auth", "LOGIN", "--auth-user", "john@johndoe.com", "--auth-password", "correct horse", "--from", "info@johndoe.com", "--to", "jane@johndoe.com")
		expect(t, out, "<~  235 2.0.0", "<~  250 2.0.0")
	})
	t.Run("bare local part", func(t *testing.T) {
		out := swaks(t, r.submission, append(auth("john"), "--tls", "--from", "john@johndoe.com", "--to", "jane@johndoe.com")...)
		expect(t, out, "<~* 535 5.7.8", "use your full email address")
	})
	t.Run("wrong separator", func(t *testing.T) {
		out := swaks(t, r.submission, append(auth("john/johndoe.com"), "--tls", "--from", "john@johndoe.com", "--to", "jane@johndoe.com")...)
		expect(t, out, "<~* 535 5.7.8", "john@johndoe.com, not \"john/johndoe.com\"")
	})
	t.Run("no auth", func(t *testing.T) {
		out := swaks(t, r.submission, "--tls", "--from", "john@johndoe.com", "--to", "jane@johndoe.com")
		expect(t, out, "<~* 530 5.7.0", "requires authentication")
		if e, ok := r.ev.find("auth-required"); !ok || e.Client != "client.example" {
			t.Errorf("event %+v %v", e, ok)
		}
	})
	t.Run("forged sender", func(t *testing.T) {
		out := swaks(t, r.submission, append(auth("john@johndoe.com"), "--tls", "--from", "ceo@johndoe.com", "--to", "jane@johndoe.com")...)
		expect(t, out, "<~* 553 5.7.1", "logged in as john@johndoe.com")
	})
	t.Run("no auth before tls", func(t *testing.T) {
		out := swaks(t, r.submission, append(auth("john@johndoe.com"), "--from", "john@johndoe.com", "--to", "jane@johndoe.com")...)
		if strings.Contains(out, "235 2.0.0") || !strings.Contains(out, "250-STARTTLS") || strings.Contains(out, "250-AUTH") {
			t.Errorf("AUTH offered or accepted without TLS:\n%s", out)
		}
	})
	t.Run("too large", func(t *testing.T) {
		out := swaks(t, r.submission, append(auth("john@johndoe.com"), "--tls", "--from", "john@johndoe.com", "--to", "jane@johndoe.com", "--body", strings.Repeat(strings.Repeat("x", 70)+"\n", 1100))...)
		expect(t, out, "552 5.3.4")
	})
	var local, queued int
	for _, s := range r.del.all() {
		if s.account != "" {
			local++
			if !strings.HasPrefix(s.data, "Return-Path: <john@johndoe.com>\r\nReceived: from client.example (127.0.0.1) by mail.johndoe.com (mailsetup) with ESMTPSA;") &&
				!strings.HasPrefix(s.data, "Return-Path: <info@johndoe.com>\r\n") {
				t.Errorf("trace headers: %q", s.data[:min(200, len(s.data))])
			}
		} else {
			queued++
			if s.to[0] != "someone@elsewhere.example" || s.from != "john@johndoe.com" {
				t.Errorf("queued %+v", s)
			}
		}
	}
	if local != 2 || queued != 1 {
		t.Errorf("local %d queued %d, want 2 and 1", local, queued)
	}
}

func TestInboundWithSwaks(t *testing.T) {
	r := start(t)
	out := swaks(t, r.inbound, "--from", "someone@elsewhere.example", "--to", "info@johndoe.com")
	expect(t, out, "<-  250 2.0.0 OK: queued")
	out = swaks(t, r.inbound, "--from", "spammer@elsewhere.example", "--to", "victim@other.example")
	expect(t, out, "<** 554 5.7.1", "Relay access denied")
	out = swaks(t, r.inbound, "--from", "someone@elsewhere.example", "--to", "nobody@johndoe.com")
	expect(t, out, "<** 550 5.1.1")
	if strings.Contains(swaks(t, r.inbound, "--quit-after", "EHLO"), "250-AUTH") {
		t.Error("inbound port offers AUTH")
	}
	got := r.del.all()
	if len(got) != 1 || got[0].account != "john@johndoe.com" || !strings.Contains(got[0].data, "with ESMTP;") {
		t.Errorf("%+v", got)
	}
	if _, ok := r.ev.find("relay"); !ok {
		t.Error("no relay event")
	}
}

// TestThrottledSubmission: a bounded loop of wrong passwords hits the
// shared throttle and gets a clear temporary failure, not a hang.
func TestThrottledSubmission(t *testing.T) {
	r := start(t)
	var last string
	for i := 0; i < 12; i++ {
		last = swaks(t, r.submission, "--tls", "--auth", "PLAIN", "--auth-user", "john@johndoe.com", "--auth-password", fmt.Sprintf("wrong-%d", i), "--quit-after", "AUTH")
	}
	expect(t, last, "454 4.7.0", "too many failed logins: try again in")
}

func TestOverlongLineInData(t *testing.T) {
	r := start(t)
	out := swaks(t, r.submission, "--tls", "--auth", "PLAIN", "--auth-user", "john@johndoe.com", "--auth-password", "correct horse",
		"--from", "john@johndoe.com", "--to", "jane@johndoe.com", "--body", strings.Repeat("y", 3000))
	expect(t, out, "500 5.5.2 Line too long")
	if len(r.del.all()) != 0 {
		t.Error("a message with an over-long line was stored")
	}
}
