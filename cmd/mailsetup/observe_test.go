package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"mailsetup/finding"
	"mailsetup/internal/testkit"
	"mailsetup/server"
)

// observeToken is the support API's token of the observe tests, and
// observeStaff, observePassword the console's staff member.
const (
	observeToken    = "mst_observe-test-token-0123456789"
	observeStaff    = "helper"
	observePassword = "the helper's long password"
)

// beside is a mailsetup serve without a mail server of its own, reading
// the logs of the private Dovecot and Postfix (old).
type beside struct {
	old  *oldDovecot
	svc  *service
	base string // http://127.0.0.1:PORT
}

// observeConfig is a config without mail listeners: one domain,
// example.test, served by the other servers, the API token, and the
// [[observe.source]] entries given.
func observeConfig(t *testing.T, sources string) string {
	t.Helper()
	dir := t.TempDir()
	sum := sha256.Sum256([]byte(observeToken))
	code, staffEntry, stderr := runCLI(t, observePassword+"\n", "staff", "hash", observeStaff)
	if code != 0 {
		t.Fatalf("staff hash: %s", stderr)
	}
	cfg := fmt.Sprintf(`hostname = "localhost"
data_dir = "."

[listen]
http = "127.0.0.1:%d"
admin = "127.0.0.1:%d"

[log]
level = "debug"

[staff]
  [[staff.token]]
  name = "helpdesk"
  sha256 = "%s"
%s

[[domain]]
name = "example.test"
display_name = "Example Test Mail"
web_url = "https://mail.example.test"
  [[domain.imap]]
  host = "mail.example.test"
  port = 993
  security = "tls"
  [[domain.pop3]]
  host = "mail.example.test"
  port = 995
  security = "tls"
  [[domain.submission]]
  host = "mail.example.test"
  port = 465
  security = "tls"

%s
`, freePort(t), freePort(t), hex.EncodeToString(sum[:]), strings.Replace(staffEntry, "[[staff.user]]", "  [[staff.user]]", 1), sources)
	path := filepath.Join(dir, "mailsetup.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// applyReadmeSnippets runs the README's block of "Beside Dovecot and
// Postfix" against the private daemons: the paths and the daemons'
// commands point at their private config.
func applyReadmeSnippets(t *testing.T, old *oldDovecot) {
	t.Helper()
	dv := filepath.Join(old.dir, "dovecot")
	conf := filepath.Join(dv, "dovecot.conf")
	// The conf.d of a packaged Dovecot.
	if err := os.MkdirAll(filepath.Join(dv, "conf.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	appendFile(t, conf, "\n!include_try "+filepath.Join(dv, "conf.d")+"/*.conf\n")
	pfEtc := filepath.Join(old.dir, "postfix", "etc")
	r := strings.NewReplacer(
		"./mailsetup ", binary+" ",
		"/etc/dovecot/conf.d/", filepath.Join(dv, "conf.d")+"/",
		"doveadm reload", "doveadm -c "+conf+" reload",
		"postconf -e", "postconf -c "+pfEtc+" -e",
		"postfix reload", "postfix -c "+pfEtc+" reload")
	for _, c := range readmeBlock(t, "## Beside Dovecot and Postfix") {
		out, err := exec.Command("sh", "-e", "-c", r.Replace(c)).CombinedOutput()
		if err != nil {
			t.Fatalf("the README's %q: %v\n%s", c, err, out)
		}
	}
	old.waitLogin(t)
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

// readmeSources are the README's [[observe.source]] entries with the
// private daemons' log files.
func readmeSources(t *testing.T, old *oldDovecot) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, _ := strings.Cut(string(data), "\n## Beside Dovecot and Postfix\n")
	_, block, ok := strings.Cut(after, "```toml\n")
	if !ok {
		t.Fatal("the README's section has no toml block")
	}
	block, _, _ = strings.Cut(block, "```\n")
	return strings.NewReplacer(
		"/var/log/dovecot-info.log", filepath.Join(old.dir, "dovecot", "log", "dovecot-info.log"),
		"/var/log/mail.log", filepath.Join(old.dir, "postfix", "log", "postfix.log")).Replace(block)
}

// observations asks the support API (with the real curl) for address's
// observations: whether any, and the findings' ids.
func (b *beside) observations(t *testing.T, address string) (bool, []finding.Finding) {
	t.Helper()
	return apiObservations(t, b.base, observeToken, address)
}

// apiObservations asks the support API at base (with the real curl and
// a bearer token) for address's observations: whether any, and the
// findings.
func apiObservations(t *testing.T, base, token, address string) (bool, []finding.Finding) {
	t.Helper()
	r := curl(t, "-H", "Authorization: Bearer "+token, base+"/api/v1/accounts/"+address+"/observations")
	var obs struct {
		Observed     bool `json:"observed"`
		Observations struct {
			Findings []finding.Finding `json:"findings"`
		} `json:"observations"`
	}
	if err := json.Unmarshal(r.body, &obs); err != nil || r.status != http.StatusOK {
		t.Fatalf("observations of %s at %s: %d %s (%v)", address, base, r.status, r.body, err)
	}
	return obs.Observed, obs.Observations.Findings
}

// waitFindings waits until address's findings are exactly want (ids,
// sorted), and returns them.
func (b *beside) waitFindings(t *testing.T, address string, want ...string) []finding.Finding {
	t.Helper()
	slices.Sort(want)
	var got []string
	var fs []finding.Finding
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(300 * time.Millisecond) {
		_, fs = b.observations(t, address)
		got = got[:0]
		for _, f := range fs {
			got = append(got, f.ID)
		}
		slices.Sort(got)
		if slices.Equal(got, want) {
			return fs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: findings %v, want %v\nlog:\n%s", address, got, want, tail(b.svc.stderr.String(), 4000))
		}
	}
}

func tail(s string, n int) string { return s[max(0, len(s)-n):] }

// keepClient runs one session of a POP3 client that keeps the mail on
// the server (mpop or fetchmail) as address, its state in work, and
// returns how many messages it downloaded.
type keepClient func(t *testing.T, old *oldDovecot, address, work string) int

func mpopKeep(t *testing.T, old *oldDovecot, address, work string) int {
	return mpopRunAs(t, old.pop3s, address, "secret", work)
}

func fetchmailKeep(t *testing.T, old *oldDovecot, address, work string) int {
	return fetchmailRunAs(t, &mailService{ports: server.Ports{POP3S: old.pop3s}}, work, address, "secret")
}

// mistakes makes the incident's mistakes for user with the real
// clients: the bare local part (POP3, curl), "user/example.test" (IMAP,
// curl), sending without logging in (swaks), POP3 keep-for-ever (pop3),
// then a changed UIDL set: Dovecot's index rebuilt with another
// pop3_uidl_format, and the client downloads everything again.
func (b *beside) mistakes(t *testing.T, user string, pop3 keepClient) {
	t.Helper()
	old := b.old
	addr := user + "@example.test"
	var msgs []string
	for i := range 5 {
		msgs = append(msgs, fmt.Sprintf("From: a@example.org\nTo: %s\nSubject: m%d\nMessage-ID: <%s.%d@example.org>\n\nbody %d\n", addr, i, user, i, i))
	}
	old.put(t, user, msgs...)
	curlPath := testkit.Tool(t, "curl", "curl")
	for _, c := range [][]string{
		{"--user", user + ":secret", fmt.Sprintf("pop3://127.0.0.1:%d/", old.ports["POP3"])},
		{"--user", user + "/example.test:secret", fmt.Sprintf("imap://127.0.0.1:%d/", old.ports["IMAP"])},
	} {
		if out, err := exec.Command(curlPath, append([]string{"-sS", "--max-time", "20"}, c...)...).CombinedOutput(); err == nil {
			t.Fatalf("curl %v logged in:\n%s", c, out)
		}
	}
	if out := swaks(t, fmt.Sprintf("127.0.0.1:%d", old.ports["SUBMISSION"]), "--from", addr, "--to", "user2@example.test"); !strings.Contains(out, "554") {
		t.Fatalf("submission without AUTH was not refused:\n%s", out)
	}
	work := t.TempDir()
	if n := pop3(t, old, addr, work); n != 5 {
		t.Fatalf("the POP3 client fetched %d, want 5", n)
	}
	// A second session, nothing new: the client keeps the messages.
	if n := pop3(t, old, addr, work); n != 0 {
		t.Fatalf("the POP3 client fetched %d again, want 0", n)
	}
	// The server's fault: another pop3_uidl_format, the index rebuilt.
	dv := filepath.Join(old.dir, "dovecot")
	if err := os.WriteFile(filepath.Join(dv, "conf.d", "50-uidl.conf"), []byte("pop3_uidl_format = %v.%u\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(old.maildir(user), "dovecot*"))
	for _, f := range files {
		os.RemoveAll(f)
	}
	old.reload(t)
	if n := pop3(t, old, addr, work); n != 5 {
		t.Fatalf("the POP3 client fetched %d after the UIDL change, want all 5 again", n)
	}
	os.Remove(filepath.Join(dv, "conf.d", "50-uidl.conf"))
}

// incident are the findings the mistakes leave.
var incident = []string{"username.not-full-address", "username.not-full-address", "smtp.auth-disabled",
	"pop3.leave-forever", "pop3.uidl-changed", "pop3.redownload"}

// TestObserveDovecotPostfix: Debian's Dovecot and Postfix, configured as
// the README says (its snippets, applied by its block), driven by curl,
// swaks and mpop making the incident's mistakes; a mailsetup without a
// mail server of its own, reading their log files as the README's
// [[observe.source]] entries say, shows exactly those findings for that
// account in the support API, the staff console (in the browser), the
// troubles, the re-download alarm and the metrics; then, after the real
// logrotate renamed Dovecot's log (and had it reopened) and copied and
// truncated Postfix's, a wrong password and a submission without AUTH
// show for another account.
func TestObserveDovecotPostfix(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Dovecot and Postfix")
	}
	testkit.Tool(t, "swaks", "swaks")
	old := startOldDovecot(t)
	applyReadmeSnippets(t, old)
	cfg := observeConfig(t, readmeSources(t, old))
	svc := startServe(t, "--config", cfg)
	defer svc.stop(t)
	b := &beside{old: old, svc: svc, base: svc.urls["http"]}

	b.mistakes(t, "user1", mpopKeep)
	fs := b.waitFindings(t, "user1@example.test", incident...)
	for _, f := range fs {
		if f.ID == "pop3.uidl-changed" && (f.Severity.String() != "critical" || f.Fault != finding.FaultServer) {
			t.Errorf("uidl-changed: %+v", f)
		}
	}
	auth := "Authorization: Bearer " + observeToken
	if r := curl(t, "-H", auth, b.base+"/api/v1/troubles"); r.status != 200 || !strings.Contains(string(r.body), "user1@example.test") ||
		!strings.Contains(string(r.body), `"domain":"example.test"`) {
		t.Errorf("troubles: %d %s", r.status, r.body)
	}
	metrics := string(curl(t, svc.urls["admin"]+"/metrics").body)
	for _, want := range []string{`mailsetup_pop3_redownload_accounts{domain="example.test"} 1`,
		`mailsetup_pop3_redownloaded_messages_total{domain="example.test"} 5`,
		`mailsetup_observe_lines_total{result="event",source="dovecot:`, `mailsetup_observe_lines_total{result="event",source="postfix:`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// Every line the daemons wrote, configured with the snippets, is
	// understood.
	for _, l := range strings.Split(metrics, "\n") {
		if strings.HasPrefix(l, "mailsetup_observe_lines_total{") && !strings.HasSuffix(l, " 0") &&
			(strings.Contains(l, `result="unknown"`) || strings.Contains(l, `result="bad-time"`) || strings.Contains(l, `result="binary"`)) {
			t.Errorf("lines not understood: %s\n%s", l, svc.stderr)
		}
	}
	if seen, _ := b.observations(t, "nobody-seen@example.test"); seen {
		t.Error("an address the logs never showed is observed")
	}
	b.consoleShows(t, "user1@example.test", incident)

	// The real logrotate: Dovecot's log renamed and reopened, Postfix's
	// copied and truncated.
	dvLog := filepath.Join(old.dir, "dovecot", "log", "dovecot-info.log")
	pfLog := filepath.Join(old.dir, "postfix", "log", "postfix.log")
	rot := filepath.Join(t.TempDir(), "logrotate.conf")
	if err := os.WriteFile(rot, []byte(fmt.Sprintf(`%s {
  rotate 2
  nocompress
  postrotate
    doveadm -c %s log reopen
  endscript
}
%s {
  rotate 2
  nocompress
  copytruncate
}
`, dvLog, filepath.Join(old.dir, "dovecot", "dovecot.conf"), pfLog)), 0o644); err != nil {
		t.Fatal(err)
	}
	lr := testkit.Tool(t, "logrotate", "logrotate")
	if out, err := exec.Command(lr, "--force", "--state", rot+".state", rot).CombinedOutput(); err != nil {
		t.Fatalf("logrotate: %v\n%s", err, out)
	}
	for _, f := range []string{dvLog + ".1", pfLog + ".1"} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("logrotate did not rotate: %v", err)
		}
	}
	if out, err := exec.Command("curl", "-sS", "--max-time", "20", "--user", "user2@example.test:wrong",
		fmt.Sprintf("imap://127.0.0.1:%d/", old.ports["IMAP"])).CombinedOutput(); err == nil {
		t.Fatalf("a wrong password logged in: %s", out)
	}
	if out := swaks(t, fmt.Sprintf("127.0.0.1:%d", old.ports["SUBMISSION"]), "--from", "user2@example.test", "--to", "user1@example.test"); !strings.Contains(out, "554") {
		t.Fatalf("submission without AUTH was not refused:\n%s", out)
	}
	b.waitFindings(t, "user2@example.test", "login.failed", "smtp.auth-disabled")
	if _, err := os.Stat(dvLog); err != nil {
		t.Errorf("Dovecot did not reopen its log: %v", err)
	}
}

// TestObserveSyslog: the same mistakes with the lines delivered by
// syslog instead of read from a file: a private rsyslog (Debian's) takes
// the daemons' lines (imfile, tagged as their syslog would tag them) and
// forwards them with the rules `mailsetup observe snippet --syslog`
// prints: Dovecot's as RFC 5424 over UDP, Postfix's as RFC 3164 to a
// unix socket. The POP3 client here is fetchmail (keep, UIDL), the
// incident's.
func TestObserveSyslog(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Dovecot, Postfix and rsyslog")
	}
	testkit.Tool(t, "swaks", "swaks")
	rsyslogd := testkit.Tool(t, "rsyslogd", "rsyslog")
	old := startOldDovecot(t)
	applyReadmeSnippets(t, old)
	udp := freePort(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "postfix.sock")
	dvSyslog, pfSyslog := fmt.Sprintf("udp://127.0.0.1:%d", udp), "unix://"+sock
	cfg := observeConfig(t, fmt.Sprintf(`[[observe.source]]
kind = "dovecot"
syslog = %q

[[observe.source]]
kind = "postfix"
syslog = %q
`, dvSyslog, pfSyslog))
	svc := startServe(t, "--config", cfg)
	defer svc.stop(t)
	b := &beside{old: old, svc: svc, base: svc.urls["http"]}

	// rsyslog: the daemons' log files as their syslog lines, then the
	// snippets' forwarding rules as printed.
	conf := fmt.Sprintf(`global(workDirectory=%q)
module(load="imfile" PollingInterval="1")
input(type="imfile" File=%q Tag="dovecot:")
input(type="imfile" File=%q Tag="postfix:")
`, dir, filepath.Join(old.dir, "dovecot", "log", "dovecot-info.log"), filepath.Join(old.dir, "postfix", "log", "postfix.log"))
	for kind, addr := range map[string]string{"dovecot": dvSyslog, "postfix": pfSyslog} {
		code, out, stderr := runCLI(t, "", "observe", "snippet", kind, "--syslog", addr)
		_, rule, ok := strings.Cut(out, "# /etc/rsyslog.d/")
		if code != 0 || !ok {
			t.Fatalf("observe snippet %s --syslog %s: %d %s\n%s", kind, addr, code, stderr, out)
		}
		conf += "# " + rule
	}
	confPath := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(rsyslogd, "-N1", "-f", confPath).CombinedOutput(); err != nil {
		t.Fatalf("rsyslogd refuses the snippets' rules: %v\n%s\n%s", err, out, conf)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rs := exec.CommandContext(ctx, rsyslogd, "-n", "-f", confPath, "-i", filepath.Join(dir, "rsyslogd.pid"))
	rsOut := &syncBuffer{}
	rs.Stdout, rs.Stderr = stderrWriter{rsOut}, stderrWriter{rsOut}
	if err := rs.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Only the rsyslogd this test started.
		_ = rs.Process.Kill()
		_ = rs.Wait()
	})

	b.mistakes(t, "user3", fetchmailKeep)
	b.waitFindings(t, "user3@example.test", incident...)
	metrics := string(curl(t, svc.urls["admin"]+"/metrics").body)
	if !strings.Contains(metrics, `mailsetup_observe_lines_total{result="event",source="dovecot:udp://`) ||
		!strings.Contains(metrics, `mailsetup_observe_lines_total{result="event",source="postfix:unix://`) {
		t.Errorf("metrics: %s\nrsyslogd: %s", metrics, rsOut)
	}
}

// TestObserveSnippetCommand: `mailsetup observe snippet` prints what the
// README shows (so the two cannot drift), refuses other programs and a
// syslog address off loopback with exit status 2 naming the bad value.
func TestObserveSnippetCommand(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(data), "\n## Beside Dovecot and Postfix\n")
	section, _, _ = strings.Cut(section, "\n## ")
	for _, kind := range []string{"dovecot", "postfix"} {
		code, out, stderr := runCLI(t, "", "observe", "snippet", kind)
		if code != 0 || !strings.Contains(section, "```\n"+out+"```\n") {
			t.Errorf("observe snippet %s: exit %d %s\nthe README's section lacks it:\n%s", kind, code, stderr, out)
		}
	}
	code, out, _ := runCLI(t, "", "observe", "snippet", "dovecot", "--syslog", "tcp://127.0.0.1:5514")
	if code != 0 || !strings.Contains(out, `action(type="omfwd" target="127.0.0.1" port="5514" protocol="tcp"`) {
		t.Errorf("--syslog: %d\n%s", code, out)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"observe", "snippet", "exim"}, `"exim": want dovecot or postfix`},
		{[]string{"observe", "snippet"}, "want exactly one of dovecot or postfix"},
		{[]string{"observe"}, "want `observe snippet dovecot|postfix`"},
		{[]string{"observe", "snippet", "postfix", "--syslog", "udp://192.0.2.1:514"}, `"udp://192.0.2.1:514": listen on a loopback address`},
	} {
		code, _, stderr := runCLI(t, "", c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q, want 2 and %q", c.args, code, stderr, c.want)
		}
	}
}

// consoleShows signs in to the staff console in the real browser and
// checks that the start page lists address among the accounts with
// trouble, and that its page says it exists and shows exactly the
// findings want.
func (b *beside) consoleShows(t *testing.T, address string, want []string) {
	t.Helper()
	ctx := newBrowser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(b.base+"/staff/"), chromedp.WaitVisible(chromedp.CSS("#password"))); err != nil {
		t.Fatalf("sign-in form: %v", err)
	}
	signInBrowser(t, ctx, observeStaff, observePassword)
	problems := reloadUntil(t, ctx, "#problems", address)
	if !strings.Contains(problems, address) || !strings.Contains(problems, "pop3.uidl-changed") {
		t.Errorf("the start page's accounts with trouble:\n%s", problems)
	}
	// The domain-wide re-download alarm.
	alarm, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#redownloads")))
	if err != nil || !strings.Contains(alarm, "example.test") || !strings.Contains(alarm, address) {
		t.Errorf("the start page's re-download alarm (%v):\n%s", err, alarm)
	}
	// The search finds the addresses the logs showed.
	local, _, _ := strings.Cut(address, "@")
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS("#address"), local), chromedp.Click(chromedp.CSS("#find")),
		chromedp.WaitVisible(chromedp.CSS("#matches"))); err != nil {
		t.Fatalf("search: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#matches a[href="/staff/accounts/`+address+`"]`)),
		chromedp.WaitVisible(chromedp.CSS("#observed"))); err != nil {
		t.Fatalf("the account's page from the search: %v", err)
	}
	page, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(page, "Account exists") || strings.Contains(page, "No such account") {
		t.Errorf("the account's page does not say it exists:\n%s", page)
	}
	shown, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll('#observed .finding code')).map(e => e.textContent)`))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(shown)
	want = slices.Clone(want)
	slices.Sort(want)
	if !slices.Equal(shown, want) {
		t.Errorf("the console shows %v, want %v", shown, want)
	}
	checkPhonePage(t, ctx, "account beside Dovecot")
}
