package delivery_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mailsetup/internal/testkit"
	"mailsetup/server/delivery"
	"mailsetup/server/events"
	"mailsetup/server/queue"
)

// recorder keeps events and notifications.
type recorder struct {
	mu     sync.Mutex
	events []events.Event
	notes  map[string][]string
}

func (r *recorder) Emit(e events.Event) { r.mu.Lock(); r.events = append(r.events, e); r.mu.Unlock() }

func (r *recorder) notify(sender string, msg []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.notes == nil {
		r.notes = map[string][]string{}
	}
	r.notes[sender] = append(r.notes[sender], string(msg))
	return nil
}

func (r *recorder) notesOf(sender string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.notes[sender]...)
}

func startAgent(t *testing.T, q *queue.Queue, opts delivery.Options) *delivery.Agent {
	t.Helper()
	opts.Queue = q
	a, err := delivery.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go a.Run(ctx)
	t.Cleanup(func() { cancel(); <-a.Done() })
	return a
}

// waitEmpty waits until the queue is empty.
func waitEmpty(t *testing.T, q *queue.Queue, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		envs, err := q.List()
		if err != nil {
			t.Fatal(err)
		}
		if len(envs) == 0 {
			return
		}
		if time.Now().After(deadline) {
			_, st, _ := q.Get(envs[0].ID)
			t.Fatalf("%d message(s) still queued; the first: %+v", len(envs), st)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestDeliveryToPostfix: a real Postfix is the remote domain's MX, found
// through a DNS server on loopback. One message to five recipients: two
// delivered over one STARTTLS connection, one refused for good (550: a
// DSN names it, the MX and its reply), one at a null MX domain (bounced
// at once, never connected), one refused for now (450) and delivered on
// the retry; the message leaves the queue only then.
func TestDeliveryToPostfix(t *testing.T) {
	mx := testkit.StartPostfixMX(t, testkit.PostfixOptions{Users: []string{"bob", "carol", "dave"}})
	resolver := testkit.DNS(t,
		"remote.test. 60 IN MX 10 mx.remote.test.",
		"mx.remote.test. 60 IN A 127.0.0.1",
		"nullmx.test. 60 IN MX 0 .",
	)
	mx.Refuse("dave@remote.test", "450 4.2.0 mailbox busy, try later")
	q, err := queue.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	msg := "From: alice@example.test\r\nTo: bob@remote.test\r\nSubject: hello remote\r\nMessage-ID: <m1@example.test>\r\n\r\nHello Bob.\r\n"
	id, err := q.Enqueue("alice@example.test", []string{"bob@remote.test", "carol@remote.test", "nobody@remote.test", "x@nullmx.test", "dave@remote.test"}, strings.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	a := startAgent(t, q, delivery.Options{Resolver: &delivery.Resolver{Server: resolver}, Hostname: "mail.example.test", Port: mx.Port,
		Retry: []time.Duration{2 * time.Second}, Notify: rec.notify, Events: rec, CommandTimeout: 10 * time.Second,
		Account: func(s string) string { return s }})
	a.Queued(id)

	// The first attempt: dave is deferred, the message stays.
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, st, err := q.Get(id)
		if err == nil && st.Attempts >= 1 {
			for _, r := range st.Recipients {
				if r.Address == "dave@remote.test" && (r.Outcome != queue.Pending || !strings.Contains(r.Reply, "450 4.2.0")) {
					t.Fatalf("dave after the first attempt: %+v", r)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no attempt recorded: %v %+v", err, st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	mx.Refuse("dave@remote.test", "")
	waitEmpty(t, q, 30*time.Second)

	for _, u := range []string{"bob", "carol", "dave"} {
		got := mx.WaitMessages(u, 1)
		if len(got) != 1 || !strings.Contains(got[0], "Hello Bob.") {
			t.Fatalf("%s's mailbox at the MX: %d message(s) %q", u, len(got), got)
		}
		if !strings.Contains(got[0], "(using TLS") {
			t.Errorf("%s's message did not come over TLS:\n%s", u, got[0])
		}
	}
	// Postfix's summary per session: the first carried the four
	// recipients of remote.test (two accepted), the retry dave.
	log := mx.Log()
	// (The second session may still be kept open: counted by its TLS.)
	if n := strings.Count(log, "Anonymous TLS connection established"); n != 2 || !strings.Contains(log, "ehlo=2 starttls=1 mail=1 rcpt=2/4 data=1 quit=1") {
		t.Errorf("%d mail sessions at the MX, want 2, the first with all four recipients:\n%s", n, log)
	}
	notes := rec.notesOf("alice@example.test")
	if len(notes) != 1 {
		t.Fatalf("%d notifications to the sender, want 1: %q", len(notes), notes)
	}
	for _, want := range []string{"multipart/report; report-type=delivery-status", "Final-Recipient: rfc822; nobody@remote.test",
		"Remote-MTA: dns; mx.remote.test", "Diagnostic-Code: smtp; 550 5.1.1", "Status: 5.1.1", "Final-Recipient: rfc822; x@nullmx.test",
		"556 5.1.10", "Subject: hello remote", "Action: failed"} {
		if !strings.Contains(notes[0], want) {
			t.Errorf("the notification lacks %q:\n%s", want, notes[0])
		}
	}
	if strings.Contains(notes[0], "rfc822; bob") || strings.Contains(notes[0], "rfc822; dave") {
		t.Errorf("the notification names a delivered recipient:\n%s", notes[0])
	}
	var results []string
	rec.mu.Lock()
	for _, e := range rec.events {
		if e.Kind == events.Outbound {
			results = append(results, string(e.Result)+" "+e.Detail)
		}
	}
	rec.mu.Unlock()
	joined := strings.Join(results, "\n")
	for _, want := range []string{"ok to bob@remote.test: delivered to mx.remote.test", "bounced to nobody@remote.test: bounced: 550 5.1.1",
		"deferred to dave@remote.test: deferred: 450 4.2.0", "ok to dave@remote.test: delivered"} {
		if !strings.Contains(joined, want) {
			t.Errorf("events lack %q:\n%s", want, joined)
		}
	}
}

// TestDelayNoticeThenExpiry: a destination that never answers (nothing
// listens on its MX's port): the sender is told once that the message
// is delayed, then, after MaxAge, that it failed, naming the last
// reason; the message then leaves the queue.
func TestDelayNoticeThenExpiry(t *testing.T) {
	resolver := testkit.DNS(t, "down.test. 60 IN MX 10 mx.down.test.", "mx.down.test. 60 IN A 127.0.0.1")
	q, err := queue.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	id, err := q.Enqueue("alice@example.test", []string{"x@down.test"}, strings.NewReader("Subject: never\r\n\r\nbody\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	a := startAgent(t, q, delivery.Options{Resolver: &delivery.Resolver{Server: resolver}, Port: testkit.FreePort(t),
		Retry: []time.Duration{300 * time.Millisecond}, WarnAfter: time.Second, MaxAge: 3 * time.Second,
		Notify: rec.notify, ConnectTimeout: time.Second})
	a.Queued(id)
	waitEmpty(t, q, 15*time.Second)
	notes := rec.notesOf("alice@example.test")
	if len(notes) != 2 {
		t.Fatalf("%d notifications, want a delay notice and a failure: %q", len(notes), notes)
	}
	for _, want := range []string{"Subject: Delayed mail (still being retried)", "Action: delayed", "Final-Recipient: rfc822; x@down.test", "connection refused"} {
		if !strings.Contains(notes[0], want) {
			t.Errorf("the delay notice lacks %q:\n%s", want, notes[0])
		}
	}
	for _, want := range []string{"Subject: Undelivered mail returned to sender", "Action: failed", "gave up after 3s", "connection refused"} {
		if !strings.Contains(notes[1], want) {
			t.Errorf("the failure notice lacks %q:\n%s", want, notes[1])
		}
	}
}

// TestConcurrencyLimits: at most MaxPerDomain sessions to one domain at
// once, whatever the number of queued messages; sessions are kept and
// reused for the next messages.
func TestConcurrencyLimits(t *testing.T) {
	mx := testkit.StartPostfixMX(t, testkit.PostfixOptions{Users: []string{"bob"}, SlowData: true})
	resolver := testkit.DNS(t, "remote.test. 60 IN MX 10 mx.remote.test.", "mx.remote.test. 60 IN A 127.0.0.1")
	q, err := queue.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var open, most, dials atomic.Int32
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		dials.Add(1)
		n := open.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		return &countedConn{Conn: c, open: &open}, nil
	}
	a := startAgent(t, q, delivery.Options{Resolver: &delivery.Resolver{Server: resolver}, Port: mx.Port, MaxPerDomain: 2, MaxConnections: 10, Dial: dial})
	for i := range 6 {
		id, err := q.Enqueue("alice@example.test", []string{"bob@remote.test"}, strings.NewReader(fmt.Sprintf("Subject: %d\r\n\r\nbody\r\n", i)))
		if err != nil {
			t.Fatal(err)
		}
		a.Queued(id)
	}
	waitEmpty(t, q, 30*time.Second)
	if n := len(mx.WaitMessages("bob", 6)); n != 6 {
		t.Fatalf("%d messages at the MX, want 6", n)
	}
	if m := most.Load(); m != 2 {
		t.Errorf("at most %d sessions at once, want 2 (max_per_domain)", m)
	}
	// The sessions are kept between messages: two carried all six.
	if d := dials.Load(); d != 2 {
		t.Errorf("%d connections for 6 messages, want 2 (kept sessions reused)", d)
	}
}

// countedConn counts itself out of open when closed (once).
type countedConn struct {
	net.Conn
	open *atomic.Int32
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.open.Add(-1) })
	return c.Conn.Close()
}

// stsServer serves an MTA-STS policy over HTTPS with a certificate for
// mta-sts.remote.test, and returns its port and the CA to trust.
func stsServer(t *testing.T, policy string) (int, *x509.CertPool) {
	t.Helper()
	return testkit.HTTPS(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/mta-sts.txt" || r.Host != "mta-sts.remote.test" {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, policy)
	}), "mta-sts.remote.test")
}

// TestMTASTSEnforce: remote.test publishes an MTA-STS policy in enforce
// mode. Its MX mail.remote.test is a real Postfix whose certificate is
// for mx.remote.test (another name): the message is deferred, and
// nothing reaches Postfix in plaintext (no MAIL in its log). When the
// MX record names mx.remote.test (the certificate's name, trusted), the
// same message is delivered over verified TLS.
func TestMTASTSEnforce(t *testing.T) {
	mx := testkit.StartPostfixMX(t, testkit.PostfixOptions{Users: []string{"bob"}})
	policyPort, roots := stsServer(t, "version: STSv1\r\nmode: enforce\r\nmx: mail.remote.test\r\nmx: *.remote.test\r\nmax_age: 86400\r\n")
	pem, err := os.ReadFile(mx.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	roots.AppendCertsFromPEM(pem)
	records := []string{
		"_mta-sts.remote.test. 60 IN TXT \"v=STSv1; id=20261207\"",
		"mta-sts.remote.test. 60 IN A 127.0.0.1",
		"mail.remote.test. 60 IN A 127.0.0.1",
		"mx.remote.test. 60 IN A 127.0.0.1",
	}
	q, err := queue.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	id, err := q.Enqueue("alice@example.test", []string{"bob@remote.test"}, strings.NewReader("Subject: sts\r\n\r\nbody\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	opts := delivery.Options{Port: mx.Port, PolicyPort: policyPort, RootCAs: roots, CommandTimeout: 10 * time.Second, Retry: []time.Duration{time.Hour}}
	opts.Resolver = &delivery.Resolver{Server: testkit.DNS(t, append(records, "remote.test. 60 IN MX 10 mail.remote.test.")...)}
	ctx, cancel := context.WithCancel(context.Background())
	opts.Queue = q
	a, err := delivery.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	go a.Run(ctx)
	a.Queued(id)
	var st queue.State
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; state %+v", what, st)
			}
		}
	}
	waitFor("the first attempt", func() bool { _, st, _ = q.Get(id); return st.Attempts == 1 })
	cancel()
	<-a.Done()
	r := st.Recipients[0]
	if r.Outcome != queue.Pending || !strings.Contains(r.Reply, "certificate") {
		t.Fatalf("with a certificate for another name: %+v, want deferred for the certificate", r)
	}
	if log := mx.Log(); strings.Contains(log, " mail=") || len(mx.Messages("bob")) != 0 {
		t.Fatalf("something reached the MX:\n%s", log)
	}

	// The MX named as in its certificate: delivered over verified TLS.
	opts.Resolver = &delivery.Resolver{Server: testkit.DNS(t, append(records, "remote.test. 60 IN MX 10 mx.remote.test.")...)}
	a = startAgent(t, q, opts)
	a.Queued(id)
	waitEmpty(t, q, 20*time.Second)
	if got := mx.WaitMessages("bob", 1); len(got) != 1 || !strings.Contains(got[0], "(using TLS") {
		t.Fatalf("after the MX fix: %q", got)
	}
}
