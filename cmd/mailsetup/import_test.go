package main

import (
	"encoding/base32"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"mailsetup/internal/testkit"
	"mailsetup/server"
	"mailsetup/server/migrate"
)

// oldDovecot is a private reference Dovecot (../shared/peers) on loopback
// ports of its own: the old server of an import.
type oldDovecot struct {
	dir                string
	pop3s, imap, imaps int
	// ports by the script's names: POP3, IMAP, SUBMISSION, ...
	ports map[string]int
}

// startOldDovecot starts the reference servers with users user1..user3
// (password "secret") under a private directory.
func startOldDovecot(t *testing.T) *oldDovecot {
	t.Helper()
	testkit.Tool(t, "dovecot", "dovecot-pop3d")
	testkit.Tool(t, "postfix", "postfix")
	script, err := filepath.Abs(filepath.Join("..", "..", "..", "shared", "peers", "dovecot-postfix.sh"))
	if err != nil {
		t.Fatal(err)
	}
	skip := func(msg string) {
		if os.Getenv(testkit.RequireEnv) != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	if _, err := os.Stat(script); err != nil {
		skip("the reference servers' script (shared/peers next to the repository) is missing")
	}
	if os.Geteuid() != 0 {
		skip("the reference servers need root")
	}
	// Not t.TempDir: the mail processes run as nobody.
	dir, err := os.MkdirTemp("", "import-peers-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	d := &oldDovecot{dir: dir, ports: map[string]int{}}
	env := append(os.Environ(), "PEERS_DIR="+dir, "PEERS_USERS=3", "PEERS_EXTRA_USERS=")
	for _, n := range []string{"POP3", "POP3S", "IMAP", "IMAPS", "SUBMISSION", "SUBMISSIONS", "LMTP", "AUTH"} {
		p := freePort(t)
		d.ports[n] = p
		switch n {
		case "POP3S":
			d.pop3s = p
		case "IMAP":
			d.imap = p
		case "IMAPS":
			d.imaps = p
		}
		env = append(env, n+"_PORT="+strconv.Itoa(p))
	}
	run := func(arg string) error {
		log, err := os.Create(filepath.Join(dir, arg+".log"))
		if err != nil {
			return err
		}
		defer log.Close()
		c := exec.Command(script, arg)
		c.Env, c.Stdout, c.Stderr = env, log, log
		if err := c.Run(); err != nil {
			out, _ := os.ReadFile(log.Name())
			return fmt.Errorf("%s %s: %v\n%s", script, arg, err, out)
		}
		return nil
	}
	t.Cleanup(func() {
		if err := run("stop"); err != nil {
			t.Error(err)
		}
		os.RemoveAll(dir)
	})
	if err := run("start"); err != nil {
		t.Fatal(err)
	}
	return d
}

// maildir is the Maildir of user@example.test on the old server.
func (d *oldDovecot) maildir(user string) string {
	return filepath.Join(d.dir, "mail", "example.test", user, "Maildir")
}

// put delivers messages into user's Maildir as a local agent would
// (owned by nobody, as Dovecot's mail processes run).
func (d *oldDovecot) put(t *testing.T, user string, msgs ...string) {
	t.Helper()
	md := d.maildir(user)
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(md, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for i, m := range msgs {
		name := filepath.Join(md, "new", fmt.Sprintf("17000000%02d.M%dP1.old", i, i))
		if err := os.WriteFile(name, []byte(m), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("chown", "-R", "65534:65534", filepath.Dir(md)).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v %s", err, out)
	}
}

// putNumbered puts n numbered messages into user's Maildir.
func (d *oldDovecot) putNumbered(t *testing.T, user string, n int) {
	t.Helper()
	var msgs []string
	for i := range n {
		msgs = append(msgs, fmt.Sprintf("From: a@example.org\nTo: %s@example.test\nSubject: old %d\nMessage-ID: <old%d@example.org>\n\nbody %d\n", user, i, i, i))
	}
	d.put(t, user, msgs...)
}

// ca is the old server's certificate.
func (d *oldDovecot) ca() string { return filepath.Join(d.dir, "dovecot", "ssl", "cert.pem") }

// newPassword is the accounts' password here.
const newPassword = "new-server-password"

// importTarget is a mail service (not started) with mail.max_message_bytes
// 4096 and the accounts user1..user3@example.test (newPassword).
func importTarget(t *testing.T) *mailService {
	t.Helper()
	m := prepareMail(t, func(t *testing.T, m *mailService, config string) string {
		return strings.Replace(config, "max_message_bytes = 26214400", "max_message_bytes = 4096", 1)
	})
	for _, u := range []string{"user1", "user2", "user3"} {
		if code, _, stderr := runCLI(t, newPassword+"\n", "user", "add", "--config", m.config, u+"@example.test"); code != 0 {
			t.Fatalf("user add %s: %s", u, stderr)
		}
	}
	return m
}

// runImport runs `mailsetup import` on the config of m.
func runImport(t *testing.T, m *mailService, args ...string) (int, string, string) {
	t.Helper()
	return runBinary(t, "", "", append([]string{"import", "--config", m.config}, args...)...)
}

// writeAccounts writes an accounts file.
func writeAccounts(t *testing.T, lines ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "accounts.csv")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// importReport parses an import's --json output.
func importReport(t *testing.T, out string) map[string]migrate.AccountReport {
	t.Helper()
	var rep migrate.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("import --json: %v\n%s", err, out)
	}
	m := map[string]migrate.AccountReport{}
	for _, a := range rep.Accounts {
		m[a.Address] = a
	}
	return m
}

// TestImportFromDovecotKeepsClientsState is the cutover with real parts:
// fetchmail (keep, UIDL) fetches everything from a real Dovecot; the
// account is imported into mailsetup from Dovecot's POP3 and, separately,
// from its Maildir on disk; the same fetchmail with the same UIDL state
// pointed at mailsetup downloads nothing. --verify says 0 and exits 0,
// and names the account after one UIDL is changed. A wrong password, an
// unreachable source, a resumed import and a message over
// mail.max_message_bytes are each reported per account.
func TestImportFromDovecotKeepsClientsState(t *testing.T) {
	old := startOldDovecot(t)
	const n = 5
	old.putNumbered(t, "user1", n)
	old.put(t, "user3", "Subject: small\n\nsmall\n", "Subject: big\n\n"+strings.Repeat("0123456789abcde\n", 400))
	oldPOP3 := &mailService{ports: server.Ports{POP3S: old.pop3s}}
	work := t.TempDir()
	if got := fetchmailRunAs(t, oldPOP3, work, "user1@example.test", "secret"); got != n {
		t.Fatalf("fetchmail from the old Dovecot fetched %d, want %d", got, n)
	}
	state, err := os.ReadFile(filepath.Join(work, "fetchids"))
	if err != nil {
		t.Fatal(err)
	}

	m := importTarget(t)
	const password = newPassword
	source := []string{"--from-pop3", fmt.Sprintf("127.0.0.1:%d", old.pop3s), "--ca", old.ca()}
	all := writeAccounts(t, "address,username,password",
		"user1@example.test,user1@example.test,secret",
		"user2@example.test,user2@example.test,not-the-password",
		"user3@example.test,user3@example.test,secret",
		"nobody@example.test,user1@example.test,secret")

	code, out, stderr := runImport(t, m, append(source, "--accounts", all, "--json")...)
	if code != 1 {
		t.Errorf("import with a failed account: exit %d, want 1\n%s%s", code, out, stderr)
	}
	rep := importReport(t, out)
	if a := rep["user1@example.test"]; a.Found != n || a.Imported != n || a.Skipped != 0 || len(a.Refused) != 0 || a.Error != "" || a.Bytes == 0 {
		t.Errorf("user1: %+v", a)
	}
	if a := rep["user2@example.test"]; !strings.Contains(a.Error, "login as user2@example.test") || !strings.Contains(a.Error, "-ERR") || strings.Contains(a.Error, "not-the-password") {
		t.Errorf("user2 (wrong password): %+v", a)
	}
	if a := rep["user3@example.test"]; a.Found != 2 || a.Imported != 1 || len(a.Refused) != 1 || !strings.Contains(a.Refused[0].Reason, "larger than mail.max_message_bytes (4096)") {
		t.Errorf("user3 (one message over the limit): %+v", a)
	}
	if a := rep["nobody@example.test"]; !strings.Contains(a.Error, "mailsetup user add nobody@example.test") {
		t.Errorf("missing account: %+v", a)
	}

	user1 := writeAccounts(t, "user1@example.test,user1@example.test,secret")
	code, out, stderr = runImport(t, m, append(source, "--accounts", user1)...)
	if code != 0 || !strings.Contains(out, "user1@example.test: found 5, imported 0, skipped 5 (already here), refused 0, 0 bytes") {
		t.Errorf("resumed import: exit %d\n%s%s", code, out, stderr)
	}
	code, out, _ = runImport(t, m, "--from-pop3", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--security", "none", "--timeout", "5s", "--accounts", user1)
	if code != 1 || !strings.Contains(out, "failed: connecting to the old server") {
		t.Errorf("unreachable source: exit %d\n%s", code, out)
	}

	m.service = startServe(t, "--config", m.config)
	if got := fetchmailRunAs(t, m, work, "user1@example.test", password); got != 0 {
		t.Errorf("fetchmail with the old server's UIDL state downloaded %d from mailsetup, want 0", got)
	}
	code, out, stderr = runImport(t, m, append(source, "--accounts", user1, "--verify")...)
	if code != 0 || !strings.Contains(out, "1 accounts, 5 messages: 0 would be downloaded again\n") {
		t.Errorf("--verify beside serve: exit %d\n%s%s", code, out, stderr)
	}
	m.stop(t)

	// One message's UIDL changes: --verify names the account.
	newDir := filepath.Join(m.dir, "mail", "example.test", "user1", "Maildir", "new")
	files, _ := os.ReadDir(newDir)
	if len(files) != n {
		t.Fatalf("%d files in %s, want %d", len(files), newDir, n)
	}
	name := files[0].Name()
	i := strings.Index(name, ",X=")
	changed := name[:i] + ",X=" + base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString([]byte("changed-uidl"))
	if err := os.Rename(filepath.Join(newDir, name), filepath.Join(newDir, changed)); err != nil {
		t.Fatal(err)
	}
	code, out, _ = runImport(t, m, append(source, "--accounts", user1, "--verify")...)
	if code != 1 || !strings.Contains(out, "1 would be downloaded again; 1 accounts differ: user1@example.test") {
		t.Errorf("--verify after a UIDL changed: exit %d\n%s", code, out)
	}

	// From the Maildir on disk, with Dovecot's default pop3_uidl_format,
	// into a new data directory.
	m2 := prepareMail(t, func(t *testing.T, m *mailService, config string) string { return config })
	if code, _, stderr := runCLI(t, password+"\n", "user", "add", "--config", m2.config, "user1@example.test"); code != 0 {
		t.Fatalf("user add: %s", stderr)
	}
	fromDisk := writeAccounts(t, "user1@example.test,example.test/user1/Maildir")
	code, out, stderr = runImport(t, m2, "--from-maildir", filepath.Join(old.dir, "mail"), "--accounts", fromDisk)
	if code != 0 || !strings.Contains(out, "user1@example.test: found 5, imported 5, skipped 0") {
		t.Fatalf("import --from-maildir: exit %d\n%s%s", code, out, stderr)
	}
	work2 := t.TempDir()
	if err := os.WriteFile(filepath.Join(work2, "fetchids"), state, 0o600); err != nil {
		t.Fatal(err)
	}
	m2.service = startServe(t, "--config", m2.config)
	defer m2.stop(t)
	if got := fetchmailRunAs(t, m2, work2, "user1@example.test", password); got != 0 {
		t.Errorf("after the Maildir import fetchmail downloaded %d, want 0", got)
	}
	if got := fetchmailRunAs(t, m2, t.TempDir(), "user1@example.test", password); got != n {
		t.Errorf("a client without the old state downloaded %d, want %d (the control)", got, n)
	}
	code, out, _ = runImport(t, m2, append(source, "--accounts", user1, "--verify")...)
	if code != 0 || !strings.Contains(out, "0 would be downloaded again") {
		t.Errorf("--verify after the Maildir import: exit %d\n%s", code, out)
	}
}

// setUIDLFormat changes the old Dovecot's pop3_uidl_format and reloads it.
func (d *oldDovecot) setUIDLFormat(t *testing.T, format string) {
	t.Helper()
	d.set(t, map[string]string{"pop3_uidl_format": format})
}

// set changes top-level settings of the old Dovecot (a line replaced, or
// added at the end) and reloads it.
func (d *oldDovecot) set(t *testing.T, settings map[string]string) {
	t.Helper()
	conf := filepath.Join(d.dir, "dovecot", "dovecot.conf")
	data, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	for key, value := range settings {
		line := []byte(key + " = " + value)
		re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(key) + ` = .*$`)
		if re.Match(data) {
			data = re.ReplaceAllLiteral(data, line)
		} else {
			data = append(append(data, line...), '\n')
		}
	}
	if err := os.WriteFile(conf, data, 0o644); err != nil {
		t.Fatal(err)
	}
	d.reload(t)
}

// reload makes the old Dovecot read its config again and waits until it
// serves logins: the reload restarts its login and auth processes, and a
// client that meets the restart is cut off.
func (d *oldDovecot) reload(t *testing.T) {
	t.Helper()
	conf := filepath.Join(d.dir, "dovecot", "dovecot.conf")
	if out, err := exec.Command(testkit.Tool(t, "doveadm", "dovecot-core"), "-c", conf, "reload").CombinedOutput(); err != nil {
		t.Fatalf("doveadm reload: %v\n%s", err, out)
	}
	d.waitLogin(t)
}

// waitLogin waits until Dovecot answers a POP3 login twice in a row.
func (d *oldDovecot) waitLogin(t *testing.T) {
	t.Helper()
	curl := testkit.Tool(t, "curl", "curl")
	for ok, deadline := 0, time.Now().Add(20*time.Second); ok < 2; {
		err := exec.Command(curl, "-sS", "--max-time", "5", "--user", "user3@example.test:secret",
			fmt.Sprintf("pop3://127.0.0.1:%d/", d.ports["POP3"]), "-X", "NOOP", "-I").Run()
		switch {
		case err == nil:
			ok++
		case time.Now().After(deadline):
			t.Fatalf("Dovecot does not answer a login after its reload: %v", err)
		default:
			ok = 0
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// TestImportDovecotUIDLFormatsWithMpopAndGetmail is the cutover for the
// other POP3 clients and other pop3_uidl_formats: the real mpop and
// getmail6 (keep) fetch from a real Dovecot serving each format; its
// Maildir is imported with --uidl-format set to that format; the same
// clients, with the state they had, find nothing new at mailsetup (the
// host and port stay the same at a cutover: getmail's state file, named
// by the port, is carried over as DNS would carry it), and --verify
// against Dovecot says 0.
func TestImportDovecotUIDLFormatsWithMpopAndGetmail(t *testing.T) {
	old := startOldDovecot(t)
	const n = 3
	old.putNumbered(t, "user1", n)
	const user, oldPassword, password = "user1@example.test", "secret", "new-server-password"
	ca := filepath.Join(old.dir, "dovecot", "ssl", "cert.pem")
	verify := []string{"--verify", "--from-pop3", fmt.Sprintf("127.0.0.1:%d", old.pop3s), "--ca", ca,
		"--accounts", writeAccounts(t, user+","+user+","+oldPassword)}
	// %m: Dovecot fills it only for mbox; on this Maildir its UIDL
	// command fails (the session is cut after "+OK"), which is why the
	// import refuses a %m format.
	old.setUIDLFormat(t, "%m")
	uidl, err := exec.Command(testkit.Tool(t, "curl", "curl"), "-sS", "-k", "--max-time", "10", "-u", user+":"+oldPassword,
		"-X", "UIDL", fmt.Sprintf("pop3s://127.0.0.1:%d/", old.pop3s)).Output()
	if strings.TrimSpace(string(uidl)) != "" {
		t.Errorf("Dovecot's UIDL with %%m on a Maildir: %v %q, want no UIDL listed", err, uidl)
	}
	if code, out, _ := runImport(t, prepareMail(t, func(t *testing.T, m *mailService, c string) string { return c }), "--from-maildir", filepath.Join(old.dir, "mail"),
		"--uidl-format", "%m", "--accounts", writeAccounts(t, "demo@example.test,example.test/user1/Maildir")); code != 1 || !strings.Contains(out, "which Dovecot fills only for mbox") {
		t.Errorf("import --uidl-format %%m: exit %d\n%s", code, out)
	}
	for _, format := range []string{"%v.%u", "%f", "%g"} {
		t.Run(format, func(t *testing.T) {
			old.setUIDLFormat(t, format)
			mpopWork, getmailWork, sink := t.TempDir(), t.TempDir(), startLMTP(t)
			if got := mpopRunAs(t, old.pop3s, user, oldPassword, mpopWork); got != n {
				t.Fatalf("mpop from the old Dovecot fetched %d, want %d", got, n)
			}
			getmailRunAs(t, old.pop3s, getmailWork, user, oldPassword, sink, 0)
			if got := sink.count(); got != n {
				t.Fatalf("getmail from the old Dovecot delivered %d, want %d", got, n)
			}

			m := prepareMail(t, func(t *testing.T, m *mailService, config string) string { return config })
			if code, _, stderr := runCLI(t, password+"\n", "user", "add", "--config", m.config, user); code != 0 {
				t.Fatalf("user add: %s", stderr)
			}
			code, out, stderr := runImport(t, m, "--from-maildir", filepath.Join(old.dir, "mail"), "--uidl-format", format,
				"--accounts", writeAccounts(t, user+",example.test/user1/Maildir"))
			if code != 0 || !strings.Contains(out, fmt.Sprintf("%s: found %d, imported %d, skipped 0", user, n, n)) {
				t.Fatalf("import --uidl-format %s: exit %d\n%s%s", format, code, out, stderr)
			}
			m.service = startServe(t, "--config", m.config)
			defer m.stop(t)

			if got := mpopRunAs(t, m.ports.POP3S, user, password, mpopWork); got != 0 {
				t.Errorf("mpop with its state from the old Dovecot fetched %d from mailsetup, want 0", got)
			}
			states, _ := filepath.Glob(filepath.Join(getmailWork, "oldmail-*"))
			if len(states) != 1 {
				t.Fatalf("getmail state files: %q", states)
			}
			moved := strings.Replace(states[0], fmt.Sprintf("-%d-", old.pop3s), fmt.Sprintf("-%d-", m.ports.POP3S), 1)
			if moved == states[0] {
				t.Fatalf("getmail's state file %s is not named by the port", states[0])
			}
			if err := os.Rename(states[0], moved); err != nil {
				t.Fatal(err)
			}
			getmailRunAs(t, m.ports.POP3S, getmailWork, user, password, sink, 0)
			if got := sink.count(); got != n {
				t.Errorf("getmail with its state from the old Dovecot delivered %d more from mailsetup, want 0", got-n)
			}
			if got := mpopRunAs(t, m.ports.POP3S, user, password, t.TempDir()); got != n {
				t.Errorf("mpop without the old state fetched %d, want %d (the control)", got, n)
			}
			if code, out, _ := runImport(t, m, verify...); code != 0 || !strings.Contains(out, fmt.Sprintf("1 accounts, %d messages: 0 would be downloaded again", n)) {
				t.Errorf("--verify: exit %d\n%s", code, out)
			}
		})
	}
}

// startMboxDovecot starts the old Dovecot serving user1's INBOX from the
// mbox file it returns, with n messages (with X-UIDL headers when xuidl,
// served as the UIDLs with pop3_reuse_xuidl).
func startMboxDovecot(t *testing.T, n int, xuidl bool) (*oldDovecot, string) {
	t.Helper()
	old := startOldDovecot(t)
	home := filepath.Join(old.dir, "mail", "example.test", "user1")
	if err := os.MkdirAll(filepath.Join(home, "mail"), 0o700); err != nil {
		t.Fatal(err)
	}
	var mbox strings.Builder
	for i := range n {
		fmt.Fprintf(&mbox, "From a@example.org Sat Jan  3 0%d:05:34 2004\n", i)
		if xuidl {
			fmt.Fprintf(&mbox, "X-UIDL: 4d2f%02d-qpopper-%d\n", i, i)
		}
		fmt.Fprintf(&mbox, "From: a@example.org\nSubject: mbox %d\n\nbody %d\n>From quoted\n\n", i, i)
	}
	inbox := filepath.Join(home, "inbox")
	if err := os.WriteFile(inbox, []byte(mbox.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("chown", "-R", "65534:65534", home).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v %s", err, out)
	}
	settings := map[string]string{"mail_location": "mbox:~/mail:INBOX=~/inbox"}
	if xuidl {
		settings["pop3_reuse_xuidl"] = "yes"
	}
	old.set(t, settings)
	return old, inbox
}

// TestImportMboxFromDovecot is the cutover from an mbox server with real
// parts: a real Dovecot serves mbox INBOXes, once with X-UIDL headers (as
// qpopper left them) served with pop3_reuse_xuidl, once without them
// under its default pop3_uidl_format (from the X-UID and X-IMAPbase
// headers it writes into the mbox); mpop (keep) fetches everything; the
// mbox file is imported (the second time with --uidl-format); the same
// mpop with its state finds nothing new at mailsetup, a client without
// state gets everything (the control), and --verify says 0.
func TestImportMboxFromDovecot(t *testing.T) {
	const n = 3
	const user, oldPassword, password = "user1@example.test", "secret", "new-server-password"
	for _, xuidl := range []bool{true, false} {
		t.Run(fmt.Sprintf("xuidl=%v", xuidl), func(t *testing.T) {
			old, inbox := startMboxDovecot(t, n, xuidl)
			work := t.TempDir()
			if got := mpopRunAs(t, old.pop3s, user, oldPassword, work); got != n {
				t.Fatalf("mpop from the old Dovecot (mbox) fetched %d, want %d", got, n)
			}
			m := prepareMail(t, func(t *testing.T, m *mailService, config string) string { return config })
			if code, _, stderr := runCLI(t, password+"\n", "user", "add", "--config", m.config, user); code != 0 {
				t.Fatalf("user add: %s", stderr)
			}
			args := []string{"--from-mbox", inbox, "--accounts", writeAccounts(t, user+",-")}
			if !xuidl {
				code, _, stderr := runImport(t, m, append(args, "--uidl-format", "%m")...)
				if code != 2 || !strings.Contains(stderr, "only %u and %v can be computed from an mbox") {
					t.Errorf("--from-mbox --uidl-format %%m: exit %d\n%s", code, stderr)
				}
				args = append(args, "--uidl-format", "%08Xu%08Xv")
			}
			code, out, stderr := runImport(t, m, args...)
			if code != 0 || !strings.Contains(out, fmt.Sprintf("%s: found %d, imported %d, skipped 0", user, n, n)) {
				t.Fatalf("import --from-mbox: exit %d\n%s%s", code, out, stderr)
			}
			m.service = startServe(t, "--config", m.config)
			defer m.stop(t)
			if got := mpopRunAs(t, m.ports.POP3S, user, password, work); got != 0 {
				t.Errorf("mpop with its state from the old Dovecot fetched %d from mailsetup, want 0", got)
			}
			if got := mpopRunAs(t, m.ports.POP3S, user, password, t.TempDir()); got != n {
				t.Errorf("mpop without the old state fetched %d, want %d (the control)", got, n)
			}
			if code, out, _ := runImport(t, m, "--verify", "--from-pop3", fmt.Sprintf("127.0.0.1:%d", old.pop3s), "--ca", old.ca(),
				"--accounts", writeAccounts(t, user+","+user+","+oldPassword)); code != 0 || !strings.Contains(out, fmt.Sprintf("1 accounts, %d messages: 0 would be downloaded again", n)) {
				t.Errorf("--verify against the mbox Dovecot: exit %d\n%s", code, out)
			}
		})
	}
}
