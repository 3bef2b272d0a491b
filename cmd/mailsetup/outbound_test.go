package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"mailsetup/internal/testkit"
	"mailsetup/server"
	"mailsetup/server/dkim"
)

// startOutbound starts the real binary whose queue delivers to the
// private Postfix mx, found through a DNS server on loopback.
func startOutbound(t *testing.T, mx *testkit.PostfixMX, extra string) *mailService {
	t.Helper()
	resolver := testkit.DNS(t,
		"remote.test. 60 IN MX 10 mx.remote.test.",
		"mx.remote.test. 60 IN A 127.0.0.1",
	)
	m := prepareMail(t, func(t *testing.T, m *mailService, config string) string {
		return config + fmt.Sprintf("\n[queue]\nresolver = %q\nport = %d\nretry = [\"1s\"]\n%s", resolver, mx.Port, extra)
	})
	m.service = startServe(t, "--config", m.config)
	return m
}

// waitFor polls cond for up to d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// queuedFiles counts the queue's items (envelopes) in the data directory.
func queuedFiles(t *testing.T, m *mailService) int {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(m.dir, "queue", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	return len(names)
}

// TestOutboundEndToEnd: a customer submits with swaks to two addresses
// of another domain, whose MX is a real Postfix: the known one gets the
// message (over STARTTLS), the unknown one is refused with 550, and the
// sender reads the delivery status notification in their INBOX with a
// real IMAP client (curl); the queue is empty afterwards and the metrics
// count both outcomes.
func TestOutboundEndToEnd(t *testing.T) {
	mx := testkit.StartPostfixMX(t, testkit.PostfixOptions{Users: []string{"bob"}})
	m := startOutbound(t, mx, "")
	defer m.stop(t)
	out := swaks(t, fmt.Sprintf("127.0.0.1:%d", m.ports.Submission), "--tls", "--auth", "PLAIN",
		"--auth-user", server.DemoAddress, "--auth-password", m.password, "--from", server.DemoAddress,
		"--to", "bob@remote.test,nobody@remote.test", "--header", "Subject: to another domain", "--body", "Hello from the demo account.")
	if !strings.Contains(out, "<~  250 2.0.0") {
		t.Fatalf("submission failed:\n%s", out)
	}
	waitFor(t, 20*time.Second, "the message at the remote MX", func() bool { return len(mx.Messages("bob")) == 1 })
	got := mx.Messages("bob")[0]
	for _, want := range []string{"Subject: to another domain", "Hello from the demo account.", "(using TLS"} {
		if !strings.Contains(got, want) {
			t.Errorf("the message at the MX lacks %q:\n%s", want, got)
		}
	}
	// Signed with the keys generated at the first start, verified by an
	// independent verifier (dkimpy).
	keys, err := dkim.Open(filepath.Join(m.dir, "dkim"), []string{"example.test"})
	if err != nil {
		t.Fatal(err)
	}
	recs := map[string]string{}
	for _, r := range keys.Records("example.test") {
		recs[r.Name] = r.Value
	}
	want := []string{"d=example.test s=mailsetup-rsa a=rsa-sha256 pass", "d=example.test s=mailsetup-ed25519 a=ed25519-sha256 pass"}
	if got := testkit.DKIMVerify(t, []byte(got), recs); !slices.Equal(got, want) {
		t.Errorf("DKIM at the MX: %q, want %q", got, want)
	}
	user := server.DemoAddress + ":" + m.password
	var dsn string
	waitFor(t, 20*time.Second, "the notification in the sender's INBOX", func() bool {
		// curl exits 78 until the message is there.
		out, err := exec.Command(testkit.Tool(t, "curl", "curl"), "-sS", "-k", "--max-time", "20", "-u", user,
			fmt.Sprintf("imaps://127.0.0.1:%d/INBOX;UID=1", m.ports.IMAPS)).Output()
		dsn = string(out)
		return err == nil && strings.Contains(dsn, "multipart/report")
	})
	for _, want := range []string{"Subject: Undelivered mail returned to sender", "Final-Recipient: rfc822; nobody@remote.test",
		"Action: failed", "Status: 5.1.1", "Remote-MTA: dns; mx.remote.test", "Diagnostic-Code: smtp; 550 5.1.1", "Subject: to another domain"} {
		if !strings.Contains(dsn, want) {
			t.Errorf("the notification lacks %q:\n%s", want, dsn)
		}
	}
	if strings.Contains(dsn, "rfc822; bob@") {
		t.Errorf("the notification names the delivered recipient:\n%s", dsn)
	}
	waitFor(t, 10*time.Second, "an empty queue", func() bool { return queuedFiles(t, m) == 0 })
	r := curl(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", m.ports.Admin))
	for _, want := range []string{`mailsetup_outbound_recipients_total{result="delivered"} 1`, `mailsetup_outbound_recipients_total{result="bounced"} 1`,
		"mailsetup_queue_messages 0", `kind="outbound",proto="smtp",result="bounced"`} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestOutboundSurvivesKill: messages are queued for a slow remote MX
// (a real Postfix that waits before answering DATA); the server is
// killed with SIGKILL while deliveries are in flight, and started again:
// every message arrives, at most the ones in flight twice, and the queue
// empties.
func TestOutboundSurvivesKill(t *testing.T) {
	mx := testkit.StartPostfixMX(t, testkit.PostfixOptions{Users: []string{"bob"}, SlowData: true})
	m := startOutbound(t, mx, "max_per_domain = 2\n")
	const n = 12
	for i := range n {
		if err := submitTo(fmt.Sprintf("127.0.0.1:%d", m.ports.Submission), m.password, fmt.Sprintf("kill-%02d", i), "bob@remote.test"); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 20*time.Second, "a first delivery", func() bool { return len(mx.Messages("bob")) >= 1 })
	if err := m.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-m.done
	before := len(mx.Messages("bob"))
	if before >= n {
		t.Fatalf("all %d messages were delivered before the kill; the test did not kill during delivery", n)
	}
	left := queuedFiles(t, m)
	t.Logf("killed with %d of %d delivered, %d queued", before, n, left)
	if left == 0 {
		t.Fatal("the queue was empty after the kill")
	}
	m.service = startServe(t, "--config", m.config)
	defer m.stop(t)
	waitFor(t, 60*time.Second, "an empty queue after the restart", func() bool { return queuedFiles(t, m) == 0 })
	seen := map[string]int{}
	for _, msg := range mx.Messages("bob") {
		for i := range n {
			if strings.Contains(msg, fmt.Sprintf("Subject: crash kill-%02d", i)) {
				seen[fmt.Sprintf("kill-%02d", i)]++
			}
		}
	}
	twice := 0
	for i := range n {
		k := fmt.Sprintf("kill-%02d", i)
		switch seen[k] {
		case 0:
			t.Errorf("%s was lost", k)
		case 1:
		default:
			twice++
		}
	}
	// At most max_per_domain sessions were in flight at the kill.
	if twice > 2 {
		t.Errorf("%d messages delivered twice; at most the 2 in flight may be", twice)
	}
	t.Logf("after the restart: %d messages at the MX, %d delivered twice", len(mx.Messages("bob")), twice)
	if _, err := os.Stat(filepath.Join(m.dir, "queue")); err != nil {
		t.Fatal(err)
	}
}

// TestSendLimitAnswered: over queue.send_limit_per_hour, submission
// answers swaks 451 4.7.1 with a sentence the customer understands, and
// the support API (the staff console's data) shows the finding.
func TestSendLimitAnswered(t *testing.T) {
	code, entry, stderr := runCLI(t, "", "staff", "token", "helpdesk")
	if code != 0 {
		t.Fatalf("staff token: %d %s", code, stderr)
	}
	token := regexp.MustCompile(`mst_[A-Za-z0-9_-]{43}`).FindString(stderr)
	resolver := testkit.DNS(t, "unused.test. 60 IN A 127.0.0.1")
	m := prepareMail(t, func(t *testing.T, m *mailService, config string) string {
		return config + fmt.Sprintf("\n%s\n[queue]\nresolver = %q\nsend_limit_per_hour = 3\n", entry, resolver)
	})
	m.service = startServe(t, "--config", m.config)
	defer m.stop(t)
	sub := fmt.Sprintf("127.0.0.1:%d", m.ports.Submission)
	send := func(to string) string {
		return swaks(t, sub, "--tls", "--auth", "PLAIN", "--auth-user", server.DemoAddress, "--auth-password", m.password,
			"--from", server.DemoAddress, "--to", to)
	}
	if out := send("a@remote.test,b@remote.test,c@remote.test"); !strings.Contains(out, "<~  250 2.0.0") {
		t.Fatalf("three recipients within the limit:\n%s", out)
	}
	// Mail to the account's own domain does not count.
	if out := send(server.DemoAddress); !strings.Contains(out, "<~  250 2.0.0") {
		t.Fatalf("a local recipient over the limit:\n%s", out)
	}
	out := send("d@remote.test")
	if !strings.Contains(out, "451 4.7.1 Sending limit reached: this account may send to 3 recipients per hour") ||
		!strings.Contains(out, "change your password") {
		t.Fatalf("the fourth remote recipient:\n%s", out)
	}
	r := curl(t, "-H", "Authorization: Bearer "+token, fmt.Sprintf("https://127.0.0.1:%d/api/v1/accounts/demo@example.test/observations", m.ports.HTTPS))
	if r.status != 200 || !strings.Contains(string(r.body), `"smtp.send-limit"`) || !strings.Contains(string(r.body), `RCPT TO:\u003cd@remote.test\u003e`) {
		t.Errorf("the support API: %d %s", r.status, r.body)
	}
}

// TestSmarthostWithAuth: with queue.smarthost, mail goes through a real
// Postfix's submission port, over STARTTLS with its certificate verified
// (queue.smarthost_ca_file) and AUTH PLAIN with the password file's
// login; a wrong password defers the mail instead of bouncing it.
func TestSmarthostWithAuth(t *testing.T) {
	mx := testkit.StartPostfixMX(t, testkit.PostfixOptions{Users: []string{"bob"}, SASLUsers: map[string]string{"relay@remote.test": "relay-secret"}})
	pwfile := filepath.Join(t.TempDir(), "smarthost.password")
	if err := os.WriteFile(pwfile, []byte("wrong-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m := prepareMail(t, func(t *testing.T, m *mailService, config string) string {
		return config + fmt.Sprintf("\n[queue]\nretry = [\"1s\"]\nsmarthost = \"127.0.0.1:%d\"\nsmarthost_username = \"relay@remote.test\"\nsmarthost_password_file = %q\nsmarthost_ca_file = %q\n",
			mx.SubmissionPort, pwfile, mx.CertFile)
	})
	m.service = startServe(t, "--config", m.config)
	defer func() { m.stop(t) }() // the service is replaced below
	if err := submitTo(fmt.Sprintf("127.0.0.1:%d", m.ports.Submission), m.password, "smarthost", "bob@remote.test"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "a refused login at the smarthost", func() bool { return strings.Contains(mx.Log(), "authentication failed") })
	time.Sleep(time.Second)
	if n := len(mx.Messages("bob")); n != 0 || queuedFiles(t, m) != 1 {
		t.Fatalf("with a wrong password: %d delivered, %d queued; want 0 and 1", n, queuedFiles(t, m))
	}
	// The right password: the next start (the file is read at start) delivers.
	if err := os.WriteFile(pwfile, []byte("relay-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m.stop(t)
	m.service = startServe(t, "--config", m.config)
	waitFor(t, 20*time.Second, "the message through the smarthost", func() bool { return len(mx.Messages("bob")) == 1 })
	log := mx.Log()
	if !strings.Contains(log, "sasl_method=PLAIN, sasl_username=relay@remote.test") || !strings.Contains(log, "postfix/submission/smtpd") {
		t.Errorf("the smarthost did not see AUTH PLAIN on its submission port:\n%s", log)
	}
	if got := mx.Messages("bob")[0]; !strings.Contains(got, "Subject: crash smarthost") || !strings.Contains(got, "(using TLS") {
		t.Errorf("the message at the smarthost:\n%s", got)
	}
	waitFor(t, 10*time.Second, "an empty queue", func() bool { return queuedFiles(t, m) == 0 })
}
