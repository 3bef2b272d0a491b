package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"mailsetup/internal/testkit"
	"mailsetup/server"
)

// logLines are lines as Dovecot and Postfix write them (from the log
// parser's test data, dated now so that none is out of time).
func logLines(lines ...string) string {
	now := time.Now().Format("Jan 02 15:04:05")
	var b strings.Builder
	for _, l := range lines {
		fmt.Fprintf(&b, "%s %s\n", now, l)
	}
	return b.String()
}

// metricLine returns the admin listener's line for a series, "" if none.
func metricLine(t *testing.T, s *service, series string) string {
	t.Helper()
	for _, l := range strings.Split(string(curl(t, s.urls["admin"]+"/metrics").body), "\n") {
		if strings.HasPrefix(l, series+" ") {
			return l
		}
	}
	return ""
}

// waitMetric waits (bounded) until a series' line is want.
func waitMetric(t *testing.T, s *service, series, want string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := metricLine(t, s, series)
		if got == series+" "+want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("metric %s: %q, want %s", series, got, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestReloadLimitsSourcesDomains: one SIGHUP lowers the mail and web
// connection limits, replaces an observe source by another, adds a
// domain (with POP3 expiry) and changes a key that needs a restart. A
// POP3 session and an IMAP IDLE (go-imap's client) opened before it go
// on after it: the IDLE hears of mail delivered after the reload, the
// POP3 session lists and quits. The next POP3S connection from the same
// address is refused with the protocol's reply; the new source reads a
// Dovecot log appended after the reload, the old one no longer counts;
// the new domain has its autoconfig document (curl), SRV and DKIM
// records (dig), takes mail (swaks) and is swept by the POP3 expiry.
func TestReloadLimitsSourcesDomains(t *testing.T) {
	dig := testkit.Tool(t, "dig", "dnsutils")
	dir := t.TempDir()
	ports := freePorts(t)
	created, err := server.EnsureDefault(dir, ports)
	if err != nil {
		t.Fatal(err)
	}
	oldLog, newLog := filepath.Join(dir, "old-postfix.log"), filepath.Join(dir, "dovecot.log")
	for _, f := range []string{oldLog, newLog} {
		appendFile(t, f, "")
	}
	base, err := os.ReadFile(created.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	source := func(name, kind, file string) string {
		return fmt.Sprintf("\n[[observe.source]]\nname = %q\nkind = %q\nfile = %q\n", name, kind, file)
	}
	// The observe sources go before the [[domain]] tables (TOML: a key
	// after [[domain]] would belong to it).
	domainAt := strings.Index(string(base), "[[domain]]")
	before, domains := string(base[:domainAt]), string(base[domainAt:])
	if err := os.WriteFile(created.ConfigPath, []byte(before+source("old", "postfix", oldLog)+"\n"+domains), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServe(t, "--config", created.ConfigPath)
	defer s.stop(t)
	pw := created.DemoPassword
	smtpAddr := fmt.Sprintf("127.0.0.1:%d", ports.SMTP)
	dnsAddr := fmt.Sprintf("127.0.0.1:%d", ports.DNS)

	// Before: example.net is not served.
	if out := swaks(t, smtpAddr, "--from", "a@elsewhere.example", "--to", "new@example.net"); !strings.Contains(out, "<** ") {
		t.Fatalf("mail for example.net accepted before it is configured:\n%s", out)
	}
	if r := curl(t, fmt.Sprintf("https://localhost:%d/mail/config-v1.1.xml?emailaddress=new@example.net", ports.HTTPS)); r.status == 200 {
		t.Fatalf("autoconfig for example.net before it is configured: %d", r.status)
	}

	// A POP3 session and an IMAP IDLE, logged in.
	pop, _ := dialLines(t, fmt.Sprintf("127.0.0.1:%d", ports.POP3S))
	pop.cmd("", "+OK")
	pop.cmd("USER "+server.DemoAddress, "+OK")
	if got := pop.cmd("PASS "+pw, "+OK"); !strings.HasPrefix(got, "+OK") {
		t.Fatalf("POP3 PASS: %s", got)
	}
	conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", ports.IMAPS), &tls.Config{InsecureSkipVerify: true}) // the self-signed default
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(90 * time.Second)) // our deadline on the library's connection
	exists := make(chan uint32, 10)
	imap := imapclient.New(conn, &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				exists <- *d.NumMessages
			}
		}}})
	defer imap.Close()
	if err := imap.Login(server.DemoAddress, pw).Wait(); err != nil {
		t.Fatalf("IMAP LOGIN: %v", err)
	}
	sel, err := imap.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	idle, err := imap.Idle()
	if err != nil {
		t.Fatal(err)
	}

	// The old source reads while it is configured.
	appendFile(t, oldLog, logLines("mail postfix/submission/smtpd[8194]: warning: localhost[127.0.0.1]: SASL LOGIN authentication failed: (reason unavailable), sasl_username=demo@example.test"))
	waitMetric(t, s, `mailsetup_observe_lines_total{result="event",source="old"}`, "1")

	// The reload: limits down to one connection per address, the old
	// source replaced by a Dovecot log, example.net added with expiry
	// (dry run), and one key that needs a restart.
	conf := strings.Replace(before, "max_connections_per_ip = 20", "max_connections_per_ip = 1", 1)
	conf = strings.Replace(conf, `hostname = "localhost"`, `hostname = "mail.example.test"`, 1)
	conf = strings.Replace(conf, "expire_dry_run = false", "expire_dry_run = true", 1)
	conf += "\n[http_limits]\nmax_connections_per_ip = 1\nread_header_seconds = 3\n"
	conf += "\n[queue]\nmax_per_domain = 2\nretry = [\"1m\", \"10m\"]\nsend_limit_per_hour = 100\n"
	conf += source("new", "dovecot", newLog) + "\n" + domains
	netDomain := strings.Replace(domains, `name = "example.test"`, `name = "example.net"`, 1)
	netDomain = strings.Replace(netDomain, "expire_days = 0", "expire_days = 7", 1)
	if netDomain == domains || !strings.Contains(netDomain, "expire_days = 7") {
		t.Fatalf("could not make example.net from:\n%s", domains)
	}
	conf += "\n" + netDomain
	if err := os.WriteFile(created.ConfigPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCLI(t, "a password\n", "user", "add", "--config", created.ConfigPath, "new@example.net"); code != 0 {
		t.Fatalf("user add new@example.net: %d %s %s", code, out, errOut)
	}
	// The README's block: checkconfig, then SIGHUP to $MAINPID (the
	// config is the test's, in dir, as /etc/mailsetup/mailsetup.toml).
	t.Setenv("MAINPID", strconv.Itoa(s.cmd.Process.Pid))
	if out := runReadmeBlock(t, "### Reloading and upgrading", dir, dir, dir); !strings.Contains(out, "config OK: 2 domain(s)") {
		t.Fatalf("the README's reload block:\n%s", out)
	}
	waitLog(t, s, "config reloaded: staff members and API tokens applied", 10*time.Second)
	waitLog(t, s, "config changes that need a restart", 5*time.Second)
	if !strings.Contains(s.stderr.String(), `keys=hostname`) {
		t.Errorf("the restart line does not name hostname alone:\n%s", s.stderr)
	}
	waitLog(t, s, "observe source stopped", 5*time.Second)

	// The sessions go on: mail delivered after the reload reaches the IDLE.
	if out := swaks(t, smtpAddr, "--from", "a@elsewhere.example", "--to", server.DemoAddress, "--header", "Subject: after the reload"); !strings.Contains(out, "<-  250 2.0.0") {
		t.Fatalf("delivery after the reload:\n%s", out)
	}
	select {
	case n := <-exists:
		if n != sel.NumMessages+1 {
			t.Errorf("IDLE: EXISTS %d, want %d", n, sel.NumMessages+1)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the IDLE opened before the reload heard of no new mail")
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatalf("IDLE after the reload: %v", err)
	}
	if err := imap.Noop().Wait(); err != nil {
		t.Fatalf("NOOP after the reload: %v", err)
	}
	pop.cmd("LIST", ".")

	// The new limit: a second POP3S connection from this address is
	// refused with -ERR [SYS/TEMP]; the open session is not.
	refused, _ := dialLines(t, fmt.Sprintf("127.0.0.1:%d", ports.POP3S))
	if got := refused.cmd("", "-ERR"); !strings.HasPrefix(got, "-ERR [SYS/TEMP] too many connections from your address") {
		t.Errorf("a connection over the new limit: %q", got)
	}
	imapRefused, _ := dialLines(t, fmt.Sprintf("127.0.0.1:%d", ports.IMAPS))
	if got := imapRefused.cmd("", "* BYE"); !strings.HasPrefix(got, "* BYE [UNAVAILABLE] too many connections from your address") {
		t.Errorf("an IMAPS connection over the new limit: %q", got)
	}
	// The web's new limit: with one connection held open, curl gets 503.
	held, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", ports.HTTP))
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		// (until the server has accepted the held connection)
		r := curl(t, fmt.Sprintf("http://127.0.0.1:%d/", ports.HTTP))
		if r.status == 503 && strings.Contains(string(r.body), "too many connections from your address") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("HTTP over http_limits.max_connections_per_ip = 1: %d %s", r.status, r.body)
		}
	}
	held.Close()
	// The new http_limits.read_header_seconds (3, was 5): a connection
	// that sends nothing is closed after it.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", ports.HTTP))
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		start := time.Now()
		data, _ := io.ReadAll(c)
		took := time.Since(start)
		c.Close()
		if strings.Contains(string(data), "503") && time.Now().Before(deadline) {
			continue // the held connection's close not seen yet
		}
		if len(data) > 0 && !strings.Contains(string(data), "408") || took < 2*time.Second || took > 4500*time.Millisecond {
			t.Errorf("a silent HTTP connection after the reload: closed after %s with %q, want about 3 s", took, data)
		}
		break
	}
	pop.cmd("STAT", "+OK")
	pop.cmd("QUIT", "+OK")

	// The new source reads Dovecot's lines written after the reload; the
	// old one is gone (its series too).
	appendFile(t, newLog, logLines("imap-login: Info: Login: user=<demo@example.test>, method=PLAIN, rip=127.0.0.1, lip=127.0.0.1, mpid=10379, TLS, session=<dEgTlABinKN/AAAB>"))
	appendFile(t, oldLog, logLines("mail postfix/submission/smtpd[8194]: warning: localhost[127.0.0.1]: SASL LOGIN authentication failed: (reason unavailable), sasl_username=demo@example.test"))
	waitMetric(t, s, `mailsetup_observe_lines_total{result="event",source="new"}`, "1")
	if l := metricLine(t, s, `mailsetup_observe_lines_total{result="event",source="old"}`); l != "" {
		t.Errorf("the removed source still counts: %s", l)
	}

	// The new domain: its document, its records, its mail, its DKIM key,
	// its expiry.
	r := curl(t, fmt.Sprintf("https://localhost:%d/mail/config-v1.1.xml?emailaddress=new@example.net", ports.HTTPS))
	if r.status != 200 || !strings.Contains(string(r.body), `<domain>example.net</domain>`) {
		t.Errorf("autoconfig for example.net after the reload: %d\n%s", r.status, r.body)
	}
	host, port, _ := strings.Cut(dnsAddr, ":")
	out, err := exec.Command(dig, "@"+host, "-p", port, "+short", "+time=5", "+tries=1", "SRV", "_imaps._tcp.example.net").Output()
	if err != nil || !strings.Contains(string(out), fmt.Sprintf("%d localhost.", ports.IMAPS)) {
		t.Errorf("dig SRV _imaps._tcp.example.net: %v %s", err, out)
	}
	if txt := digTXT(t, dnsAddr, "mailsetup-rsa._domainkey.example.net"); len(txt) != 1 || !strings.Contains(txt[0], "v=DKIM1") {
		t.Errorf("the new domain's DKIM record: %q", txt)
	}
	if _, err := os.Stat(filepath.Join(dir, "dkim", "example.net.rsa.pem")); err != nil {
		t.Errorf("no DKIM key generated for example.net: %v", err)
	}
	if out := swaks(t, smtpAddr, "--from", "a@elsewhere.example", "--to", "new@example.net"); !strings.Contains(out, "<-  250 2.0.0") {
		t.Errorf("mail for example.net after the reload:\n%s", out)
	}
	waitLog(t, s, "pop3 expiry sweep", 10*time.Second)
	if !strings.Contains(s.stderr.String(), "dry_run=true domains=1") {
		t.Errorf("the expiry sweep after the reload did not cover example.net in a dry run:\n%s", s.stderr)
	}
	// The open session closed, a new one is let in (once the server
	// has seen the close).
	deadline := time.Now().Add(10 * time.Second)
	for {
		again, _ := dialLines(t, fmt.Sprintf("127.0.0.1:%d", ports.POP3S))
		got := again.cmd("", "+OK")
		again.c.Close()
		if strings.HasPrefix(got, "+OK") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("POP3S after the session closed: %s", got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
