package main

import (
	"encoding/json"
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
	"mailsetup/server/queue"
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
	code, entry, stderr := runCLI(t, "", "staff", "token", "helpdesk")
	if code != 0 {
		t.Fatalf("staff token: %d %s", code, stderr)
	}
	token := regexp.MustCompile(`mst_[A-Za-z0-9_-]{43}`).FindString(stderr)
	m := startOutbound(t, mx, entry)
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
	// independent verifier (dkimpy) with the keys as the DNS responder
	// publishes them (dig), the same `mailsetup records` prints.
	_, zone, stderr := runCLI(t, "", "records", "--config", m.config)
	recs := map[string]string{}
	for _, name := range []string{"mailsetup-rsa._domainkey.example.test", "mailsetup-ed25519._domainkey.example.test"} {
		recs[name] = strings.Join(digTXT(t, fmt.Sprintf("127.0.0.1:%d", m.ports.DNS), name), "\n")
		if !strings.Contains(zone, name+". 3600 IN TXT \"v=DKIM1;") {
			t.Errorf("mailsetup records lacks %s (%s):\n%s", name, stderr, zone)
		}
	}
	for name, want := range map[string]string{"example.test": "v=spf1 mx a:localhost ~all", "_dmarc.example.test": "v=DMARC1; p=none; rua=mailto:postmaster@example.test",
		"_mta-sts.example.test": "v=STSv1; id=", "_smtp._tls.example.test": "v=TLSRPTv1; rua=mailto:postmaster@example.test"} {
		if got := strings.Join(digTXT(t, fmt.Sprintf("127.0.0.1:%d", m.ports.DNS), name), "\n"); !strings.HasPrefix(got, want) {
			t.Errorf("dig TXT %s = %q, want %q", name, got, want)
		}
		if !strings.Contains(zone, name+". 3600 IN TXT \""+want) {
			t.Errorf("mailsetup records lacks %s %q:\n%s", name, want, zone)
		}
	}
	policy := curl(t, "--resolve", fmt.Sprintf("mta-sts.example.test:%d:127.0.0.1", m.ports.HTTPS), fmt.Sprintf("https://mta-sts.example.test:%d/.well-known/mta-sts.txt", m.ports.HTTPS))
	if policy.status != 200 || !strings.HasPrefix(string(policy.body), "version: STSv1\r\nmode: testing\r\nmx: ") {
		t.Errorf("the MTA-STS policy: %d %q", policy.status, policy.body)
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
	// What the staff console shows of the account: its last sent
	// messages and their fate.
	r = curl(t, "-H", "Authorization: Bearer "+token, fmt.Sprintf("https://127.0.0.1:%d/api/v1/accounts/demo@example.test/observations", m.ports.HTTPS))
	var obs struct {
		Observations struct {
			Sent []struct {
				Result, Detail string
				TLS            bool
			}
		}
	}
	if err := json.Unmarshal(r.body, &obs); err != nil {
		t.Fatalf("%v: %s", err, r.body)
	}
	var sent []string
	for _, s := range obs.Observations.Sent {
		sent = append(sent, fmt.Sprintf("%s %v %s", s.Result, s.TLS, s.Detail))
	}
	joined := strings.Join(sent, "\n")
	for _, want := range []string{"ok true to bob@remote.test: delivered to mx.remote.test", "bounced true to nobody@remote.test: bounced: 550 5.1.1"} {
		if !strings.Contains(joined, want) {
			t.Errorf("the account's sent messages lack %q:\n%s", want, joined)
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
	for _, msg := range mx.WaitMessages("bob", n) {
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

// attempted waits until the queue's only message has been tried n times
// and returns its id.
func attempted(t *testing.T, m *mailService, n int) string {
	t.Helper()
	q, err := queue.Open(filepath.Join(m.dir, "queue"))
	if err != nil {
		t.Fatal(err)
	}
	var id string
	waitFor(t, 20*time.Second, fmt.Sprintf("attempt %d", n), func() bool {
		envs, _ := q.List()
		if len(envs) != 1 {
			return false
		}
		_, st, err := q.Get(envs[0].ID)
		id = envs[0].ID
		return err == nil && st.Attempts >= n
	})
	return id
}

// TestQueueCommands runs the README's queue block as written, in a shell
// with the real binary, on a message the real Postfix MX refuses for now
// (450): list and show name the reply, bounce returns it to the sender
// (the notification is read with curl over IMAPS). Then retry sends a
// message at once instead of in an hour, and remove deletes one.
func TestQueueCommands(t *testing.T) {
	mx := testkit.StartPostfixMX(t, testkit.PostfixOptions{Users: []string{"bob"}})
	mx.Refuse("bob@remote.test", "450 4.2.0 mailbox busy, try later")
	m := startOutbound(t, mx, "")
	cfg, _ := os.ReadFile(m.config)
	if err := os.WriteFile(m.config, []byte(strings.Replace(string(cfg), `retry = ["1s"]`, `retry = ["1h"]`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	m.stop(t)
	m.service = startServe(t, "--config", m.config)
	defer func() { m.stop(t) }()
	sub := fmt.Sprintf("127.0.0.1:%d", m.ports.Submission)
	if err := submitTo(sub, m.password, "queued", "bob@remote.test"); err != nil {
		t.Fatal(err)
	}
	id := attempted(t, m, 1)

	work := t.TempDir()
	if err := os.Symlink(binary, filepath.Join(work, "mailsetup")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(m.dir, filepath.Join(work, "mailsetup-data")); err != nil {
		t.Fatal(err)
	}
	script := "exec 2>&1\n"
	cmds := readmeBlock(t, "#### The queue")
	for i, c := range cmds {
		script += fmt.Sprintf("echo '@@ %d'\n%s\n", i, c)
	}
	cmd := exec.Command("sh", "-e", "-c", script+"echo '@@ end'\n")
	cmd.Dir = work
	raw, err := cmd.Output()
	if err != nil || !strings.HasSuffix(string(raw), "@@ end\n") {
		t.Fatalf("the README's queue block: %v\n%s", err, raw)
	}
	for _, want := range []string{id, "demo@example.test", "1/1", "450 4.2.0 <bob@remote.test>: Recipient address rejected", "to: bob@remote.test: pending (mx.remote.test at ",
		"attempts: 1", "1 message(s) to be tried now", id + " will be returned to its sender"} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("the block's output lacks %q:\n%s", want, raw)
		}
	}
	waitFor(t, 20*time.Second, "the bounced message out of the queue", func() bool { return queuedFiles(t, m) == 0 })
	user := server.DemoAddress + ":" + m.password
	out, err := exec.Command(testkit.Tool(t, "curl", "curl"), "-sS", "-k", "--max-time", "20", "-u", user,
		fmt.Sprintf("imaps://127.0.0.1:%d/INBOX;UID=1", m.ports.IMAPS)).Output()
	if err != nil || !strings.Contains(string(out), "returned to the sender by the postmaster") || !strings.Contains(string(out), "Final-Recipient: rfc822; bob@remote.test") {
		t.Fatalf("the notification of the bounce (%v):\n%s", err, out)
	}

	// remove: gone, the sender not told (bob is still refused).
	if err := submitTo(sub, m.password, "removed", "bob@remote.test"); err != nil {
		t.Fatal(err)
	}
	id = attempted(t, m, 1)
	if code, stdout, stderr := runCLI(t, "", "queue", "remove", id, "--config", m.config); code != 0 || !strings.Contains(stdout, "removed "+id+" from demo@example.test: 1 recipient(s) not delivered") {
		t.Fatalf("queue remove: %d %s %s", code, stdout, stderr)
	}
	if n := queuedFiles(t, m); n != 0 {
		t.Errorf("%d messages queued after remove", n)
	}
	if code, _, stderr := runCLI(t, "", "queue", "show", id, "--config", m.config); code != exitError || !strings.Contains(stderr, "no message "+id) {
		t.Errorf("show of a removed message: %d %s", code, stderr)
	}
	// retry: delivered now, not in an hour (sessions that had a refusal
	// are not kept, so the next one sees Postfix's new settings).
	if err := submitTo(sub, m.password, "retried", "bob@remote.test"); err != nil {
		t.Fatal(err)
	}
	attempted(t, m, 1)
	mx.Refuse("bob@remote.test", "")
	if code, stdout, stderr := runCLI(t, "", "queue", "retry", "--config", m.config); code != 0 || !strings.Contains(stdout, "1 message(s)") {
		t.Fatalf("queue retry: %d %s %s", code, stdout, stderr)
	}
	waitFor(t, 15*time.Second, "the retried message at the MX", func() bool { return len(mx.Messages("bob")) == 1 })

	for _, bad := range [][]string{{"queue"}, {"queue", "show"}, {"queue", "list", "x"}, {"queue", "frob"}, {"queue", "bounce", "../etc"}} {
		code, _, stderr := runCLI(t, "", append(bad, "--config", m.config)...)
		if code == exitOK || stderr == "" {
			t.Errorf("%v: exit %d, stderr %q", bad, code, stderr)
		}
	}
}
