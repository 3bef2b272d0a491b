package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailsetup/internal/testkit"
	"mailsetup/server"
)

// plainLines is a line client without TLS.
func plainLines(t *testing.T, addr, greeting string) *lineClient {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	l := &lineClient{t: t, c: c, r: bufio.NewReader(c)}
	l.cmd("", greeting)
	return l
}

// all sends line and returns every reply line up to and including the
// one starting with done.
func (l *lineClient) all(line, done string) string {
	l.t.Helper()
	if _, err := fmt.Fprintf(l.c, "%s\r\n", line); err != nil {
		l.t.Fatalf("%s: %v", line, err)
	}
	var b strings.Builder
	for {
		got, err := l.r.ReadString('\n')
		if err != nil {
			l.t.Fatalf("after %q: %v (got %q)", line, err, b.String())
		}
		b.WriteString(got)
		if strings.HasPrefix(got, done) {
			return b.String()
		}
	}
}

// TestReloadMailLimits: one SIGHUP lowers mail.max_message_bytes and
// mail.smtp_command_seconds, sets mail.unknown_recipients_* to 1 and
// mail.pop3_login_delay_seconds, and turns on
// mail.insecure_auth_on_loopback. Sessions open across it keep their
// values (SMTP: the old SIZE, a larger message accepted, no timeout;
// IMAP: no login without TLS; POP3: no LOGIN-DELAY); the next ones get
// the new values with the protocols' replies: swaks sees SIZE 4096 and
// 552, a silent client is closed after 2 s, the second unknown recipient
// gets 421, swaks logs in without TLS on loopback, curl reads POP3 and
// IMAP without TLS, and the next POP3 login gets -ERR [LOGIN-DELAY].
func TestReloadMailLimits(t *testing.T) {
	curlPath := testkit.Tool(t, "curl", "curl")
	testkit.Tool(t, "swaks", "swaks")
	dir := t.TempDir()
	ports := freePorts(t)
	created, err := server.EnsureDefault(dir, ports)
	if err != nil {
		t.Fatal(err)
	}
	s := startServe(t, "--config", created.ConfigPath)
	defer s.stop(t)
	pw := created.DemoPassword
	addr := func(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }

	oldSMTP := plainLines(t, addr(ports.SMTP), "220 ")
	if e := oldSMTP.all("EHLO client.example", "250 "); !strings.Contains(e, "250-SIZE 26214400") {
		t.Fatalf("EHLO before the reload:\n%s", e)
	}
	oldIMAP := plainLines(t, addr(ports.IMAP), "* OK")
	oldPOP, _ := dialLines(t, addr(ports.POP3S))
	oldPOP.cmd("", "+OK")
	oldPOP.cmd("USER "+server.DemoAddress, "+OK")
	if got := oldPOP.cmd("PASS "+pw, "+OK"); !strings.HasPrefix(got, "+OK") {
		t.Fatalf("POP3 PASS: %s", got)
	}

	conf, err := os.ReadFile(created.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	c := string(conf)
	for _, r := range [][2]string{
		{"max_message_bytes = 26214400", "max_message_bytes = 4096"},
		{"insecure_auth_on_loopback = false", "insecure_auth_on_loopback = true"},
		{"pop3_idle_minutes = 10", "pop3_idle_minutes = 10\nsmtp_command_seconds = 2\npop3_login_delay_seconds = 600\nunknown_recipients_slow = 1\nunknown_recipients_max = 1"},
	} {
		if !strings.Contains(c, r[0]) {
			t.Fatalf("no %q in the default config", r[0])
		}
		c = strings.Replace(c, r[0], r[1], 1)
	}
	if err := os.WriteFile(created.ConfigPath, []byte(c), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, s, "config reloaded: connection, login and check limits applied", 10*time.Second)
	if strings.Contains(s.stderr.String(), "config changes that need a restart") {
		t.Fatalf("the mail limits should apply without a restart:\n%s", s.stderr)
	}

	// The sessions open across the reload keep their values.
	time.Sleep(2500 * time.Millisecond) // longer than the new command timeout
	if e := oldSMTP.all("EHLO client.example", "250 "); !strings.Contains(e, "250-SIZE 26214400") {
		t.Errorf("EHLO of the open SMTP session after the reload:\n%s", e)
	}
	oldSMTP.all("MAIL FROM:<someone@elsewhere.example>", "250 ")
	for _, rcpt := range []string{"nobody1@example.test", "nobody2@example.test"} {
		if got := oldSMTP.all("RCPT TO:<"+rcpt+">", "5"); !strings.HasPrefix(got, "550") {
			t.Errorf("open SMTP session, unknown %s: %s", rcpt, got)
		}
	}
	oldSMTP.all("RCPT TO:<"+server.DemoAddress+">", "250 ")
	oldSMTP.all("DATA", "354 ")
	body := strings.Repeat(strings.Repeat("x", 70)+"\n", 120) // about 8 KiB
	if _, err := fmt.Fprintf(oldSMTP.c, "Subject: open across the reload\r\n\r\n%s.\r\n", strings.ReplaceAll(body, "\n", "\r\n")); err != nil {
		t.Fatal(err)
	}
	if got := oldSMTP.cmd("", ""); !strings.HasPrefix(got, "250") {
		t.Errorf("open SMTP session, 8 KiB under its 25 MiB: %s", got)
	}
	if got := oldIMAP.cmd("a1 LOGIN "+server.DemoAddress+" "+pw, "a1 "); strings.HasPrefix(got, "a1 OK") {
		t.Errorf("the IMAP connection opened before insecure auth logged in without TLS: %s", got)
	}
	if capa := oldPOP.all("CAPA", "."); strings.Contains(capa, "LOGIN-DELAY") {
		t.Errorf("the open POP3 session advertises the new LOGIN-DELAY:\n%s", capa)
	}
	oldPOP.cmd("STAT", "+OK")
	oldPOP.cmd("QUIT", "+OK")

	// New connections get the new values.
	out := swaks(t, addr(ports.SMTP), "--from", "someone@elsewhere.example", "--to", server.DemoAddress, "--body", body)
	if !strings.Contains(out, "250-SIZE 4096") || !strings.Contains(out, "552 5.3.4") {
		t.Errorf("swaks after the reload, 8 KiB over 4096:\n%s", out)
	}
	out = swaks(t, addr(ports.SMTP), "--from", "someone@elsewhere.example", "--to", "nobody1@example.test,nobody2@example.test")
	if !strings.Contains(out, "<** 421") {
		t.Errorf("swaks, the second unknown recipient over unknown_recipients_max = 1:\n%s", out)
	}
	out = swaks(t, addr(ports.Submission), "--auth", "PLAIN", "--auth-user", server.DemoAddress, "--auth-password", pw,
		"--from", server.DemoAddress, "--to", server.DemoAddress)
	if !strings.Contains(out, "<-  235 2.0.0") || !strings.Contains(out, "<-  250 2.0.0 OK: queued") {
		t.Errorf("swaks AUTH without TLS on loopback after insecure_auth_on_loopback:\n%s", out)
	}
	silent := plainLines(t, addr(ports.SMTP), "220 ")
	start := time.Now()
	_, _ = silent.r.ReadString('\n')
	if took := time.Since(start); took < 1500*time.Millisecond || took > 8*time.Second {
		t.Errorf("a silent new SMTP connection was closed after %s, want the new 2 s", took)
	}
	for _, u := range []string{fmt.Sprintf("imap://%s/INBOX", addr(ports.IMAP)), fmt.Sprintf("pop3://%s/", addr(ports.POP3))} {
		cmd := exec.Command(curlPath, "-sS", "--max-time", "20", "-u", server.DemoAddress+":"+pw, u)
		if b, err := runBounded(t, cmd, 30*time.Second); err != nil {
			t.Errorf("curl %s without TLS on loopback: %v\n%s", u, err, b)
		}
	}
	// curl's POP3 login above was the first under the delay.
	pop := plainLines(t, addr(ports.POP3), "+OK")
	if capa := pop.all("CAPA", "."); !strings.Contains(capa, "LOGIN-DELAY 600") || !strings.Contains(capa, "USER") {
		t.Errorf("CAPA of a new POP3 connection:\n%s", capa)
	}
	pop.cmd("USER "+server.DemoAddress, "+OK")
	if got := pop.cmd("PASS "+pw, "+OK"); !strings.HasPrefix(got, "-ERR [LOGIN-DELAY]") {
		t.Errorf("a second POP3 login within the new delay: %s", got)
	}
}
