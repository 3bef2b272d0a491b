package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"mailsetup/internal/testkit"
	"mailsetup/server"
)

// startMailWith is startMail with the generated config changed by edit
// before the service starts.
func startMailWith(t *testing.T, edit func(t *testing.T, m *mailService, config string) string) *mailService {
	t.Helper()
	m := prepareMail(t, edit)
	m.service = startServe(t, "--config", m.config)
	return m
}

// prepareMail is startMailWith without the start.
func prepareMail(t *testing.T, edit func(t *testing.T, m *mailService, config string) string) *mailService {
	t.Helper()
	dir := t.TempDir()
	ports := freePorts(t)
	created, err := server.EnsureDefault(dir, ports)
	if err != nil {
		t.Fatal(err)
	}
	m := &mailService{dir: dir, config: created.ConfigPath, password: created.DemoPassword, staffPassword: created.StaffPassword, ports: ports}
	data, err := os.ReadFile(m.config)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(m.config, []byte(edit(t, m, string(data))), 0o600); err != nil {
		t.Fatal(err)
	}
	return m
}

// setExpireDays sets the demo domain's pop3_policy.expire_days.
func setExpireDays(t *testing.T, config string, days int) string {
	t.Helper()
	const line = "expire_days = 0\n"
	if strings.Count(config, line) != 1 {
		t.Fatalf("generated config does not have one %q:\n%s", line, config)
	}
	return strings.Replace(config, line, fmt.Sprintf("expire_days = %d\n", days), 1)
}

// pop3Curl runs curl against the POP3S listener as user and returns its
// standard output and, with -v, the dialogue on standard error.
func (m *mailService) pop3Curl(t *testing.T, user, password string, args ...string) (stdout, stderr string) {
	t.Helper()
	path := testkit.Tool(t, "curl", "curl")
	all := append([]string{"-sS", "-k", "--max-time", "20", "-u", user + ":" + password}, args...)
	all = append(all, fmt.Sprintf("pop3s://127.0.0.1:%d/", m.ports.POP3S))
	cmd := exec.Command(path, all...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("curl %v: %v\n%s", args, err, errb.String())
	}
	return out.String(), errb.String()
}

// uidls lists the demo INBOX's UIDLs over POP3 (curl -X UIDL), in order.
func (m *mailService) uidls(t *testing.T) []string {
	t.Helper()
	out, _ := m.pop3Curl(t, server.DemoAddress, m.password, "-X", "UIDL")
	var ids []string
	for _, l := range strings.Split(strings.TrimSpace(strings.ReplaceAll(out, "\r", "")), "\n") {
		if f := strings.Fields(l); len(f) == 2 {
			ids = append(ids, f[1])
		}
	}
	return ids
}

// capaExpire returns the EXPIRE line of CAPA before login (from curl's
// -v dialogue: curl sends CAPA first) and after login (-X CAPA).
func (m *mailService) capaExpire(t *testing.T, user, password string) (before, after string) {
	t.Helper()
	out, dialogue := m.pop3Curl(t, user, password, "-v", "-X", "CAPA")
	for _, l := range strings.Split(dialogue, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimRight(l, "\r"), "< EXPIRE "); ok && before == "" {
			before = rest
		}
	}
	for _, l := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimRight(l, "\r"), "EXPIRE "); ok {
			after = rest
		}
	}
	if before == "" || after == "" {
		t.Fatalf("no EXPIRE before (%q) or after (%q) login:\n%s\n%s", before, after, out, dialogue)
	}
	return before, after
}

// TestPOP3ExpireInCapaPerDomain: RFC 2449 §6.7 with real curl. The demo
// domain expires after 7 days, a second domain never: before login CAPA
// says the smallest value with USER, after login each user's own.
func TestPOP3ExpireInCapaPerDomain(t *testing.T) {
	const other, otherPass = "carol@other.test", "other-domain-password"
	m := startMailWith(t, func(t *testing.T, m *mailService, config string) string {
		config = setExpireDays(t, config, 7)
		demo := config[strings.Index(config, "[[domain]]"):]
		second := strings.Replace(demo, `name = "example.test"`, `name = "other.test"`, 1)
		second = strings.Replace(second, "expire_days = 7\n", "expire_days = 0\n", 1)
		if err := os.WriteFile(m.config, []byte(config+"\n"+second), 0o600); err != nil {
			t.Fatal(err)
		}
		if code, _, stderr := runCLI(t, otherPass+"\n", "user", "add", "--config", m.config, other); code != 0 {
			t.Fatalf("user add: %d %s", code, stderr)
		}
		data, _ := os.ReadFile(m.config)
		return string(data)
	})
	defer m.stop(t)

	before, after := m.capaExpire(t, server.DemoAddress, m.password)
	if before != "7 USER" || after != "7" {
		t.Errorf("demo (expire_days 7): EXPIRE %q before login, %q after; want \"7 USER\", \"7\"", before, after)
	}
	before, after = m.capaExpire(t, other, otherPass)
	if before != "7 USER" || after != "NEVER" {
		t.Errorf("other.test (expire_days 0): EXPIRE %q before login, %q after; want \"7 USER\", \"NEVER\"", before, after)
	}
}

// lmtpSink is a minimal LMTP server (RFC 2033) on loopback that accepts
// every message and keeps it in memory: getmail's destination. Its
// Maildir and mbox destinations fork a child per message and install the
// SIGCHLD handler only after the fork, so a child that finishes first is
// never reaped and the run fails after a 3-minute timeout ("waiting child
// pid ... timed out", seen on a busy machine); MDA_lmtp does not fork.
type lmtpSink struct {
	addr *net.TCPAddr
	mu   sync.Mutex
	msgs []string
}

func startLMTP(t *testing.T) *lmtpSink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &lmtpSink{addr: ln.Addr().(*net.TCPAddr)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

func (s *lmtpSink) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	reply := func(lines ...string) bool {
		for _, l := range lines {
			if _, err := io.WriteString(c, l+"\r\n"); err != nil {
				return false
			}
		}
		return true
	}
	reply("220 sink LMTP")
	rcpts := 0
	for {
		c.SetDeadline(time.Now().Add(time.Minute))
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		verb := strings.ToUpper(strings.Fields(line + " x")[0])
		switch verb {
		case "LHLO":
			reply("250-sink", "250 PIPELINING")
		case "MAIL", "RSET", "NOOP":
			if verb != "NOOP" {
				rcpts = 0
			}
			reply("250 ok")
		case "RCPT":
			rcpts++
			reply("250 ok")
		case "DATA":
			reply("354 go ahead")
			var msg strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" || l == ".\n" {
					break
				}
				msg.WriteString(l)
			}
			s.mu.Lock()
			s.msgs = append(s.msgs, msg.String())
			s.mu.Unlock()
			for range max(rcpts, 1) { // LMTP: one reply per recipient
				reply("250 delivered")
			}
			rcpts = 0
		case "QUIT":
			reply("221 bye")
			return
		default:
			reply("500 unknown command")
		}
	}
}

func (s *lmtpSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.msgs)
}

// getmailRun runs the real getmail6 with delete_after = deleteAfter days
// and leave-on-server (read_all = false, delete = false), delivering to
// sink, and returns its output.
func getmailRun(t *testing.T, m *mailService, work string, sink *lmtpSink, deleteAfter int) string {
	t.Helper()
	return getmailRunAs(t, m.ports.POP3S, work, server.DemoAddress, m.password, sink, deleteAfter)
}

// getmailRunAs is getmailRun as user against the POP3S port.
func getmailRunAs(t *testing.T, port int, work, user, password string, sink *lmtpSink, deleteAfter int) string {
	t.Helper()
	path := testkit.Tool(t, "getmail", "getmail6")
	rc := fmt.Sprintf("[retriever]\ntype = SimplePOP3SSLRetriever\nserver = 127.0.0.1\nport = %d\nusername = %s\npassword = %s\n\n"+
		"[destination]\ntype = MDA_lmtp\nhost = 127.0.0.1\nport = %d\noverride = inbox@sink.example\n\n"+
		"[options]\nverbose = 2\nread_all = false\ndelete = false\ndelete_after = %d\n",
		port, user, password, sink.addr.Port, deleteAfter)
	if err := os.WriteFile(filepath.Join(work, "getmailrc"), []byte(rc), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(path, "--getmaildir", work, "--rcfile", "getmailrc").CombinedOutput()
	if err != nil {
		t.Fatalf("getmail: %v\n%s", err, out)
	}
	return string(out)
}

// TestGetmailDeleteAfter: getmail6 leaves mail on the server and deletes
// each message delete_after days after it first saw it. Its clock is the
// oldmail file (UIDL NUL first-seen time): ageing two entries makes
// exactly those two go from the server on the next run, and nothing is
// downloaded twice.
func TestGetmailDeleteAfter(t *testing.T) {
	m := startMail(t)
	defer m.stop(t)
	const n, deleteAfter = 4, 2
	for i := range n {
		m.send(t, fmt.Sprintf("getmail %d", i))
	}
	work := t.TempDir()
	sink := startLMTP(t)
	out := getmailRun(t, m, work, sink, deleteAfter)
	if !strings.Contains(out, fmt.Sprintf("%d messages", n)) || strings.Contains(out, "deleted") {
		t.Fatalf("first run: want %d messages retrieved and none deleted:\n%s", n, out)
	}
	if got := sink.count(); got != n {
		t.Fatalf("first run delivered %d, want %d", got, n)
	}
	onServer := m.uidls(t)
	if len(onServer) != n {
		t.Fatalf("server after the first run: %q", onServer)
	}

	// Age the first two messages in getmail's oldmail file.
	files, _ := filepath.Glob(filepath.Join(work, "oldmail-*"))
	if len(files) != 1 {
		t.Fatalf("oldmail files: %q", files)
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	aged := map[string]bool{onServer[0]: true, onServer[1]: true}
	old := strconv.FormatInt(time.Now().Add(-time.Duration(deleteAfter+1)*24*time.Hour).Unix(), 10)
	var lines [][]byte
	seen := 0
	for _, l := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
		uidl, _, ok := bytes.Cut(l, []byte{0})
		if !ok {
			t.Fatalf("oldmail line without NUL: %q", l)
		}
		seen++
		if aged[string(uidl)] {
			l = append(append(uidl, 0), old...)
		}
		lines = append(lines, l)
	}
	if seen != n {
		t.Fatalf("oldmail has %d entries, want %d:\n%q", seen, n, data)
	}
	if err := os.WriteFile(files[0], append(bytes.Join(lines, []byte("\n")), '\n'), 0o600); err != nil {
		t.Fatal(err)
	}

	out = getmailRun(t, m, work, sink, deleteAfter)
	if got := strings.Count(out, "deleted"); got != 2 {
		t.Errorf("second run deleted %d, want 2:\n%s", got, out)
	}
	if !strings.Contains(out, "0 messages") {
		t.Errorf("second run retrieved something:\n%s", out)
	}
	if got := sink.count(); got != n {
		t.Errorf("after the second run %d messages were delivered, want %d (nothing twice)", got, n)
	}
	if got, want := m.uidls(t), onServer[2:]; !slices.Equal(got, want) {
		t.Errorf("server after delete_after: %q, want %q", got, want)
	}
}

// countFiles counts the messages in a Maildir's new/ and cur/.
func countFiles(t *testing.T, maildir string) int {
	t.Helper()
	n := 0
	for _, d := range []string{"new", "cur"} {
		entries, err := os.ReadDir(filepath.Join(maildir, d))
		if err != nil {
			t.Fatal(err)
		}
		n += len(entries)
	}
	return n
}

// mpopRun runs the real mpop with keep on and its own uidls file and
// returns how many messages it delivered this time.
func mpopRun(t *testing.T, m *mailService, work string) int {
	t.Helper()
	return mpopRunAs(t, m.ports.POP3S, server.DemoAddress, m.password, work)
}

// mpopRunAs runs mpop (keep on, POP3 over TLS on port) as user once and
// returns how many messages it delivered into work/Maildir.
func mpopRunAs(t *testing.T, port int, user, password, work string) int {
	t.Helper()
	path := testkit.Tool(t, "mpop", "mpop")
	maildir := filepath.Join(work, "Maildir")
	for _, d := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(maildir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	rc := filepath.Join(work, "mpoprc")
	conf := fmt.Sprintf("defaults\ntimeout 15\nuidls_file %s/%%U_at_%%H.uidls\n\naccount demo\nhost 127.0.0.1\nport %d\n"+
		"tls on\ntls_starttls off\ntls_certcheck off\nauth plain\nuser %s\npassword %s\nkeep on\ndelivery maildir %s\n",
		work, port, user, password, maildir)
	if err := os.WriteFile(rc, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	before := countFiles(t, maildir)
	out, err := exec.Command(path, "-C", rc, "demo").CombinedOutput()
	if err != nil {
		t.Fatalf("mpop: %v\n%s", err, out)
	}
	return countFiles(t, maildir) - before
}

// TestMpopKeepNeverDownloadsTwice: mpop with keep on fetches every
// message once, also after a restart of the server.
func TestMpopKeepNeverDownloadsTwice(t *testing.T) {
	m := startMail(t)
	const n = 3
	for i := range n {
		m.send(t, fmt.Sprintf("mpop %d", i))
	}
	work := t.TempDir()
	if got := mpopRun(t, m, work); got != n {
		t.Fatalf("first run fetched %d, want %d", got, n)
	}
	if got := mpopRun(t, m, work); got != 0 {
		t.Errorf("second run fetched %d, want 0", got)
	}
	m.restart(t)
	defer m.stop(t)
	if got := mpopRun(t, m, work); got != 0 {
		t.Errorf("after a restart fetched %d, want 0", got)
	}
	if got := len(m.uidls(t)); got != n {
		t.Errorf("keep on: %d messages on the server, want %d", got, n)
	}
}

// runExpire runs the real binary's expire command.
func runExpire(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return runBinary(t, "", "", append([]string{"expire"}, args...)...)
}

// TestExpireEndToEnd: a domain with expire_days; curl retrieves two of
// three messages; `mailsetup expire` refuses to run beside the service,
// then, with the clock moved on by --now, reports in a dry run and
// deletes in a real one exactly the retrieved messages whose time has
// come; the never-retrieved one stays with its UIDL.
func TestExpireEndToEnd(t *testing.T) {
	const days = 7
	m := startMailWith(t, func(t *testing.T, m *mailService, config string) string {
		return setExpireDays(t, config, days)
	})
	for i := range 3 {
		m.send(t, fmt.Sprintf("expiry %d", i))
	}
	all := m.uidls(t)
	if len(all) != 3 {
		t.Fatalf("UIDL: %q", all)
	}
	if _, after := m.capaExpire(t, server.DemoAddress, m.password); after != strconv.Itoa(days) {
		t.Errorf("CAPA after login: EXPIRE %q, want %d", after, days)
	}
	retrievedAt := time.Now()
	for _, msg := range []string{"1", "2"} {
		r := curl(t, "-u", server.DemoAddress+":"+m.password, fmt.Sprintf("pop3s://127.0.0.1:%d/%s", m.ports.POP3S, msg))
		if !bytes.Contains(r.body, []byte("Subject: expiry")) {
			t.Fatalf("RETR %s: %q", msg, r.body)
		}
	}
	r := curl(t, m.urls["admin"]+"/metrics")
	for _, metric := range []string{"mailsetup_pop3_expired_total 0", "mailsetup_pop3_expire_candidates 0"} {
		if !bytes.Contains(r.body, []byte(metric+"\n")) {
			t.Errorf("/metrics lacks %q", metric)
		}
	}

	// The service owns the mail storage.
	code, out, stderr := runExpire(t, "--config", m.config, "--dry-run")
	if code != exitError || !strings.Contains(stderr, "mailsetup serve") {
		t.Errorf("expire beside the service: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	m.stop(t)

	at := func(d time.Duration) string { return retrievedAt.Add(d).UTC().Format(time.RFC3339) }
	// Not yet: retrieved less than 7 days before "now".
	code, out, stderr = runExpire(t, "--config", m.config, "--now", at((days-1)*24*time.Hour))
	if code != 0 || !strings.Contains(out, "total: 0 messages, 0 bytes expired in 0 of 1 accounts") {
		t.Errorf("after %d days: exit %d\n%s%s", days-1, code, out, stderr)
	}
	// Dry run 8 days later: reports both, deletes nothing.
	code, out, stderr = runExpire(t, "--config", m.config, "--dry-run", "--now", at((days+1)*24*time.Hour))
	if code != 0 || !regexp.MustCompile(`(?m)^would expire demo@example\.test: 2 messages, \d+ bytes \(retrieved over POP3 more than 7 days ago\)$`).MatchString(out) ||
		!strings.Contains(out, "total (dry run): 2 messages") || !strings.Contains(out, "would expire in 1 of 1 accounts; nothing was deleted") {
		t.Errorf("dry run: exit %d\n%s%s", code, out, stderr)
	}
	code, out, stderr = runExpire(t, "--config", m.config, "--now", at((days+1)*24*time.Hour))
	if code != 0 || !regexp.MustCompile(`(?m)^expired demo@example\.test: 2 messages, \d+ bytes`).MatchString(out) ||
		!strings.Contains(out, "total: 2 messages") {
		t.Errorf("expire: exit %d\n%s%s", code, out, stderr)
	}

	m.service = startServe(t, "--config", m.config)
	defer m.stop(t)
	if got := m.uidls(t); !slices.Equal(got, all[2:]) {
		t.Errorf("after expiry the server has %q, want the never-retrieved %q", got, all[2:])
	}
}

// TestExpireCommandLine: usage errors, the help with the testing flag, and
// a config without expiry.
func TestExpireCommandLine(t *testing.T) {
	dir := t.TempDir()
	if _, err := server.EnsureDefault(dir, server.DefaultPorts()); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"expire", "--data", dir, "extra"},
		{"expire", "--data", dir, "--bogus"},
		{"expire", "--data", dir, "--now", "yesterday"},
	} {
		code, _, stderr := runCLI(t, "", args...)
		if code != exitUsage || !strings.Contains(stderr, "usage:") {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr)
		}
		if slices.Contains(args, "yesterday") && !strings.Contains(stderr, `"yesterday"`) {
			t.Errorf("bad --now not named: %s", stderr)
		}
	}
	code, out, _ := runCLI(t, "", "expire", "--help")
	if code != 0 || !strings.Contains(out, "--now T") || !strings.Contains(out, "pretend the current time is T, RFC 3339 (testing)") {
		t.Errorf("expire --help: %d\n%s", code, out)
	}
	if _, out, _ := runCLI(t, "", "help"); !strings.Contains(out, "mailsetup expire") || strings.Contains(out, "--now") {
		t.Errorf("usage: expire missing or --now shown:\n%s", out)
	}
	code, out, stderr := runCLI(t, "", "expire", "--data", dir)
	if code != 0 || !strings.Contains(out, "no domain sets pop3_policy.expire_days") {
		t.Errorf("no expiry configured: %d %q %q", code, out, stderr)
	}
	code, _, stderr = runCLI(t, "", "expire", "--data", filepath.Join(dir, "missing"))
	if code != exitError || !strings.Contains(stderr, "no config") {
		t.Errorf("missing data: %d %q", code, stderr)
	}
}

// TestPOP3LoginDelay: with mail.pop3_login_delay_seconds set, CAPA
// advertises LOGIN-DELAY and a second login within it gets
// -ERR [LOGIN-DELAY] with the interval to set.
func TestPOP3LoginDelay(t *testing.T) {
	m := startMailWith(t, func(t *testing.T, m *mailService, config string) string {
		const line = "pop3_idle_minutes = 10\n"
		if !strings.Contains(config, line) {
			t.Fatalf("generated config lacks %q", line)
		}
		return strings.Replace(config, line, line+"pop3_login_delay_seconds = 300\n", 1)
	})
	defer m.stop(t)
	_, dialogue := m.pop3Curl(t, server.DemoAddress, m.password, "-v") // LIST
	if !strings.Contains(dialogue, "LOGIN-DELAY 300") {
		t.Errorf("CAPA lacks LOGIN-DELAY 300:\n%s", dialogue)
	}
	path := testkit.Tool(t, "curl", "curl")
	out, err := exec.Command(path, "-sS", "-k", "-v", "--max-time", "20", "-u", server.DemoAddress+":"+m.password,
		fmt.Sprintf("pop3s://127.0.0.1:%d/", m.ports.POP3S)).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "-ERR [LOGIN-DELAY] checking mail too often") || !strings.Contains(string(out), "every 5 minutes") {
		t.Errorf("second login within the delay: %v\n%s", err, out)
	}
}

// TestProbeSaysItsOwnLoginCountsForLoginDelay: with LOGIN-DELAY set, the
// probe reports it and warns that its own POP3 login delays the
// customer's next check.
func TestProbeSaysItsOwnLoginCountsForLoginDelay(t *testing.T) {
	m := startMailWith(t, func(t *testing.T, m *mailService, config string) string {
		return strings.Replace(config, "pop3_idle_minutes = 10\n", "pop3_idle_minutes = 10\npop3_login_delay_seconds = 300\n", 1)
	})
	defer m.stop(t)
	_, rep, out := runProbe(t, m, m.password)
	for _, f := range rep.Findings {
		if f.ID == "pop3.login-delay" && slices.ContainsFunc(f.Evidence, func(e string) bool { return strings.Contains(e, "this check logs in over POP3 too") }) {
			return
		}
	}
	t.Errorf("no pop3.login-delay finding with the note about the probe's own login:\n%s", out)
}
