package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"mailsetup/internal/testkit"
	"mailsetup/server"
)

// mailService is a running serve with every mail listener on a free port.
type mailService struct {
	*service
	dir      string
	config   string
	password string
	// staffPassword is the console's admin password.
	staffPassword string
	ports         server.Ports
}

func startMail(t *testing.T) *mailService {
	t.Helper()
	dir := t.TempDir()
	ports := freePorts(t)
	created, err := server.EnsureDefault(dir, ports)
	if err != nil {
		t.Fatal(err)
	}
	return &mailService{service: startServe(t, "--config", created.ConfigPath), dir: dir, config: created.ConfigPath, password: created.DemoPassword, staffPassword: created.StaffPassword, ports: ports}
}

func (m *mailService) restart(t *testing.T) {
	t.Helper()
	m.stop(t)
	m.service = startServe(t, "--config", m.config)
}

// send submits one message with swaks over STARTTLS as the demo account.
func (m *mailService) send(t *testing.T, subject string) {
	t.Helper()
	out := swaks(t, fmt.Sprintf("127.0.0.1:%d", m.ports.Submission), "--tls", "--auth", "PLAIN",
		"--auth-user", server.DemoAddress, "--auth-password", m.password,
		"--from", server.DemoAddress, "--to", server.DemoAddress, "--header", "Subject: "+subject)
	if !strings.Contains(out, "<~  250 2.0.0") {
		t.Fatalf("submission failed:\n%s", out)
	}
}

func swaks(t *testing.T, addr string, args ...string) string {
	t.Helper()
	path := testkit.Tool(t, "swaks", "swaks")
	host, port, _ := strings.Cut(addr, ":")
	out, _ := exec.Command(path, append([]string{"--server", host, "--port", port, "--timeout", "20", "--helo", "client.example"}, args...)...).CombinedOutput()
	return string(out)
}

// TestMailEndToEnd: the advertised settings work with real clients: swaks
// submits, curl reads over POP3 and IMAP, and the wrong username forms and
// a missing AUTH get replies that name the fix.
func TestMailEndToEnd(t *testing.T) {
	m := startMail(t)
	defer m.stop(t)
	m.send(t, "hello over submission")

	sub := fmt.Sprintf("127.0.0.1:%d", m.ports.Submission)
	out := swaks(t, sub, "--tls", "--auth", "PLAIN", "--auth-user", "demo", "--auth-password", m.password, "--from", server.DemoAddress, "--to", server.DemoAddress)
	if !strings.Contains(out, "535 5.7.8") || !strings.Contains(out, "use your full email address") {
		t.Errorf("bare local part:\n%s", out)
	}
	out = swaks(t, sub, "--tls", "--from", server.DemoAddress, "--to", server.DemoAddress)
	if !strings.Contains(out, "530 5.7.0") {
		t.Errorf("no AUTH:\n%s", out)
	}
	out = swaks(t, fmt.Sprintf("127.0.0.1:%d", m.ports.SMTP), "--from", "x@elsewhere.example", "--to", "y@other.example")
	if !strings.Contains(out, "554 5.7.1") {
		t.Errorf("relay on 25:\n%s", out)
	}
	out = swaks(t, fmt.Sprintf("127.0.0.1:%d", m.ports.Submissions), "--tlsc", "--auth", "LOGIN", "--auth-user", server.DemoAddress, "--auth-password", m.password, "--from", server.DemoAddress, "--to", server.DemoAddress)
	if !strings.Contains(out, "<~  250 2.0.0") {
		t.Errorf("465:\n%s", out)
	}

	user := server.DemoAddress + ":" + m.password
	r := curl(t, "-u", user, fmt.Sprintf("pop3s://127.0.0.1:%d/", m.ports.POP3S))
	if lines := strings.Count(string(r.body), "\n"); lines != 2 {
		t.Errorf("pop3s LIST: %q", r.body)
	}
	r = curl(t, "-u", user, fmt.Sprintf("pop3s://127.0.0.1:%d/1", m.ports.POP3S))
	if !strings.Contains(string(r.body), "Subject: hello over submission") || !strings.Contains(string(r.body), "Received: from client.example") {
		t.Errorf("pop3s RETR:\n%s", r.body)
	}
	r = curl(t, "--ssl-reqd", "-u", user, fmt.Sprintf("pop3://127.0.0.1:%d/", m.ports.POP3), "-X", "UIDL")
	if strings.Count(string(r.body), "\n") != 2 {
		t.Errorf("pop3 STLS UIDL: %q", r.body)
	}
	// curl exits 67 (login denied) on -ERR [AUTH].
	bad := exec.Command(testkit.Tool(t, "curl", "curl"), "-sS", "-k", "--max-time", "20", "-v", "-u", "demo:"+m.password, fmt.Sprintf("pop3s://127.0.0.1:%d/", m.ports.POP3S))
	res, err := bad.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 67 || !strings.Contains(string(res), "-ERR [AUTH] use your full email address") {
		t.Errorf("pop3 bare local part: %v\n%s", err, res)
	}
	r = curl(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", m.ports.Admin))
	for _, want := range []string{`kind="pop3-session",proto="pop3",result="ok"`, `kind="auth",proto="pop3",result="username-form"`, `kind="submission-refused",proto="submission",result="auth-required"`} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	r = curl(t, "-u", user, fmt.Sprintf("imaps://127.0.0.1:%d/", m.ports.IMAPS))
	for _, box := range []string{"INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"} {
		if !strings.Contains(string(r.body), box) {
			t.Errorf("imaps LIST lacks %s:\n%s", box, r.body)
		}
	}
	r = curl(t, "-u", user, fmt.Sprintf("imaps://127.0.0.1:%d/INBOX;UID=1", m.ports.IMAPS))
	if !strings.Contains(string(r.body), "Subject: hello over submission") {
		t.Errorf("imaps FETCH:\n%s", r.body)
	}
}

// fetchmailRun runs the real fetchmail in keep mode with UIDL tracking and
// returns how many messages it downloaded.
func fetchmailRun(t *testing.T, m *mailService, work string) int {
	t.Helper()
	return fetchmailRunAs(t, m, work, server.DemoAddress, m.password)
}

// fetchmailRunAs is fetchmailRun for another account.
func fetchmailRunAs(t *testing.T, m *mailService, work, user, password string) int {
	t.Helper()
	path := testkit.Tool(t, "fetchmail", "fetchmail")
	out := filepath.Join(work, "out")
	os.MkdirAll(out, 0o700)
	before, _ := os.ReadDir(out)
	rc := filepath.Join(work, "fetchmailrc")
	conf := fmt.Sprintf("set no syslog\npoll localhost service %d protocol pop3 uidl\n  user \"%s\" there with password \"%s\" is \"root\" here\n  ssl no sslcertck\n  keep\n  mda \"/bin/sh -c 'cat > %s/msg.$$.eml'\"\n",
		m.ports.POP3S, user, password, out)
	if err := os.WriteFile(rc, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path, "-f", rc, "-i", filepath.Join(work, "fetchids"), "--pidfile", filepath.Join(work, "fetchmail.pid"), "--nodetach")
	cmd.Env = append(os.Environ(), "HOME="+work)
	res, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); err != nil && (!ok || ee.ExitCode() > 1) {
		t.Fatalf("fetchmail: %v\n%s", err, res)
	}
	after, _ := os.ReadDir(out)
	return len(after) - len(before)
}

// TestFetchmailNeverDownloadsTwice is the incident: a client that leaves
// mail on the server fetches each message once, also after a restart and
// after the index is deleted and rebuilt.
func TestFetchmailNeverDownloadsTwice(t *testing.T) {
	m := startMail(t)
	const n = 5
	for i := 0; i < n; i++ {
		m.send(t, fmt.Sprintf("message %d", i))
	}
	work := t.TempDir()
	if got := fetchmailRun(t, m, work); got != n {
		t.Fatalf("first run fetched %d, want %d", got, n)
	}
	if got := fetchmailRun(t, m, work); got != 0 {
		t.Errorf("second run fetched %d, want 0", got)
	}
	m.restart(t)
	if got := fetchmailRun(t, m, work); got != 0 {
		t.Errorf("after a restart fetched %d, want 0", got)
	}
	m.stop(t)
	idx, _ := filepath.Glob(filepath.Join(m.dir, "mail", "example.test", "demo", "Maildir", "mailsetup.*"))
	if len(idx) == 0 {
		t.Fatal("no index files found to delete")
	}
	for _, f := range idx {
		os.Remove(f)
	}
	m.service = startServe(t, "--config", m.config)
	defer m.stop(t)
	if got := fetchmailRun(t, m, work); got != 0 {
		t.Errorf("after an index rebuild fetched %d, want 0", got)
	}
	m.send(t, "one more")
	if got := fetchmailRun(t, m, work); got != 1 {
		t.Errorf("new message: fetched %d, want 1", got)
	}
}
