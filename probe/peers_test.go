package probe

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"mailsetup/autoconfig"
	"mailsetup/finding"
	"mailsetup/internal/testkit"
)

// peers is a private instance of the reference Dovecot + Postfix
// (shared/peers/dovecot-postfix.sh) on loopback ports of its own.
type peers struct {
	script, dir string
	env         []string
	port        map[string]int
}

// requireFile returns path, or skips the test (fails it when
// MAILSETUP_REQUIRE_TOOLS is set) when the file is missing.
func requireFile(t *testing.T, path, what string) string {
	t.Helper()
	if _, err := os.Stat(path); err == nil {
		return path
	}
	msg := what + " not found at " + path
	if os.Getenv(testkit.RequireEnv) != "" {
		t.Fatalf("%s; %s is set, so a missing tool fails the test", msg, testkit.RequireEnv)
	}
	t.Skip(msg)
	return ""
}

// freePorts returns n distinct free TCP ports on 127.0.0.1, from
// 12000-19999: below the kernel's ephemeral range, so no outgoing
// connection takes one before the daemons bind it, and apart from the
// ranges other tests use (cmd/mailsetup: 22000-31999, the peers
// defaults: 21xxx, the embedded default: 10xxx).
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	start := mrand.IntN(8000)
	for i := 0; i < 8000 && len(ports) < n; i++ {
		p := 12000 + (start+i)%8000
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		ln.Close()
		ports = append(ports, p)
	}
	if len(ports) < n {
		t.Fatalf("only %d free ports in 12000-19999", len(ports))
	}
	return ports
}

// startPeers starts the reference servers with two users under a private
// directory and stops them when the test ends.
func startPeers(t *testing.T) *peers {
	t.Helper()
	testkit.Tool(t, "dovecot", "dovecot-imapd")
	testkit.Tool(t, "postfix", "postfix")
	script, err := filepath.Abs(filepath.Join("..", "..", "shared", "peers", "dovecot-postfix.sh"))
	if err != nil {
		t.Fatal(err)
	}
	requireFile(t, script, "the reference servers' script (shared/peers next to the repository)")
	if os.Geteuid() != 0 {
		msg := "the reference servers need root"
		if os.Getenv(testkit.RequireEnv) != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	// Not t.TempDir: the mail processes run as nobody and must be able to
	// traverse the directory.
	dir, err := os.MkdirTemp("", "probe-peers-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := &peers{script: script, dir: dir, port: map[string]int{}}
	names := []string{"POP3", "POP3S", "IMAP", "IMAPS", "SUBMISSION", "SUBMISSIONS", "LMTP", "AUTH"}
	ports := freePorts(t, len(names))
	p.env = append(os.Environ(), "PEERS_DIR="+dir, "PEERS_USERS=2", "PEERS_EXTRA_USERS=")
	for i, n := range names {
		p.port[n] = ports[i]
		p.env = append(p.env, n+"_PORT="+strconv.Itoa(ports[i]))
	}
	t.Cleanup(func() {
		if err := p.run("stop"); err != nil {
			t.Errorf("stopping the reference servers: %v", err)
		}
		os.RemoveAll(dir)
	})
	if err := p.run("start"); err != nil {
		t.Fatalf("starting the reference servers: %v", err)
	}
	return p
}

// run runs the script with stdio on files: the daemons it starts keep
// inherited pipes open.
func (p *peers) run(args ...string) error {
	return p.cmd(p.script, args...)
}

func (p *peers) cmd(name string, args ...string) error {
	log, err := os.CreateTemp(p.dir, "cmd-*.log")
	if err != nil {
		return err
	}
	defer log.Close()
	c := exec.Command(name, args...)
	c.Env = p.env
	c.Stdout, c.Stderr = log, log
	if err := c.Run(); err != nil {
		out, _ := os.ReadFile(log.Name())
		return &cmdError{err: err, out: string(out)}
	}
	return nil
}

type cmdError struct {
	err error
	out string
}

func (e *cmdError) Error() string { return e.err.Error() + ": " + e.out }

func (p *peers) postfixConf() string { return filepath.Join(p.dir, "postfix", "etc") }
func (p *peers) dovecotConf() string { return filepath.Join(p.dir, "dovecot", "dovecot.conf") }

// postconf changes the private Postfix configuration (postconf args, e.g.
// "-e", "name=value") and reloads it; the test's Cleanup restores the
// previous main.cf and master.cf.
func (p *peers) postconf(t *testing.T, args ...string) {
	t.Helper()
	p.keep(t, filepath.Join(p.postfixConf(), "main.cf"), filepath.Join(p.postfixConf(), "master.cf"))
	if err := p.cmd("postconf", append([]string{"-c", p.postfixConf()}, args...)...); err != nil {
		t.Fatal(err)
	}
	p.reload(t)
}

// keep restores the files' current contents and reloads both servers
// when the test ends.
func (p *peers) keep(t *testing.T, files ...string) {
	t.Helper()
	saved := map[string][]byte{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		saved[f] = data
	}
	t.Cleanup(func() {
		for f, data := range saved {
			if err := os.WriteFile(f, data, 0o600); err != nil {
				t.Error(err)
			}
		}
		p.reload(t)
	})
}

func (p *peers) reload(t *testing.T) {
	t.Helper()
	if err := p.cmd("postfix", "-c", p.postfixConf(), "reload"); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd("doveadm", "-c", p.dovecotConf(), "reload"); err != nil {
		// Why Dovecot is gone (it was seen once under a fully loaded
		// test run): the end of its own log.
		logText, _ := os.ReadFile(filepath.Join(p.dir, "dovecot", "log", "dovecot.log"))
		t.Fatalf("%v\nthe end of dovecot.log:\n%s", err, logText[max(0, len(logText)-4096):])
	}
}

// policy is example.test served by the peers under host.
func (p *peers) policy(host string) autoconfig.Policy {
	ep := func(proto autoconfig.Protocol, port string, sec autoconfig.Security) autoconfig.Endpoint {
		return autoconfig.Endpoint{Protocol: proto, Host: host, Port: p.port[port], Security: sec}
	}
	return autoconfig.Policy{
		Domain: "example.test", DisplayName: "Peers",
		IMAP:       []autoconfig.Endpoint{ep(autoconfig.IMAP, "IMAPS", autoconfig.TLS), ep(autoconfig.IMAP, "IMAP", autoconfig.STARTTLS)},
		POP3:       []autoconfig.Endpoint{ep(autoconfig.POP3, "POP3S", autoconfig.TLS), ep(autoconfig.POP3, "POP3", autoconfig.STARTTLS)},
		Submission: []autoconfig.Endpoint{ep(autoconfig.SMTP, "SUBMISSIONS", autoconfig.TLS), ep(autoconfig.SMTP, "SUBMISSION", autoconfig.STARTTLS)},
		Prefer:     autoconfig.IMAP, Username: autoconfig.FullAddress,
		POP: autoconfig.POP3Policy{LeaveOnServer: true, DeleteAfterDays: 7},
	}
}

// probe runs the probe for user1 against the peers under host (every
// name resolves to 127.0.0.1), trusting the peers' original certificate.
func (p *peers) probe(t *testing.T, host string, roots *x509.CertPool, client *ClientSettings) *Report {
	t.Helper()
	pol := p.policy(host)
	rep, err := Run(context.Background(), Request{Address: "user1@example.test", Password: "secret", Client: client}, Options{
		Policy:      func(d string) (autoconfig.Policy, bool) { return pol, d == pol.Domain },
		RootCAs:     roots,
		StepTimeout: 10 * time.Second,
		Resolve:     func(string) (string, bool) { return "127.0.0.1", true },
		// From another loopback address: Dovecot takes a client whose
		// address is its own for a local, secure one and offers it
		// plaintext logins whatever disable_plaintext_auth says.
		Dialer: &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// expect runs the probe until its findings are want: a reload reaches
// new connections within a moment, not at once. It fails with the last
// report after 15 s.
func (p *peers) expect(t *testing.T, host string, roots *x509.CertPool, want []string) *Report {
	t.Helper()
	return p.expectWith(t, host, roots, nil, want)
}

// expectWith is expect for a customer who reports client's settings.
func (p *peers) expectWith(t *testing.T, host string, roots *x509.CertPool, client *ClientSettings, want []string) *Report {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		rep := p.probe(t, host, roots, client)
		got := ids(rep.Findings)
		if slices.Equal(got, want) {
			return rep
		}
		if time.Now().After(deadline) {
			t.Fatalf("findings %v, want %v\nsteps: %+v\nfindings: %+v", got, want, rep.Steps, rep.Findings)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// dovecotSet changes "name = from" to "name = to" in the private
// Dovecot configuration (the caller reloads).
func (p *peers) dovecotSet(t *testing.T, name, from, to string) {
	t.Helper()
	data, err := os.ReadFile(p.dovecotConf())
	if err != nil {
		t.Fatal(err)
	}
	old, repl := name+" = "+from+"\n", name+" = "+to+"\n"
	if !strings.Contains(string(data), old) {
		t.Fatalf("%s lacks %q", p.dovecotConf(), old)
	}
	if err := os.WriteFile(p.dovecotConf(), []byte(strings.Replace(string(data), old, repl, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// dovecotAppend appends text to the private Dovecot configuration (the
// caller reloads).
func (p *peers) dovecotAppend(t *testing.T, text string) {
	t.Helper()
	f, err := os.OpenFile(p.dovecotConf(), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

// certFrom reads the first certificate of a PEM file.
func certFrom(t *testing.T, file string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatalf("%s: no PEM", file)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// writeExpiredCert writes an expired self-signed certificate for the
// peers' names over certFile and keyFile.
func writeExpiredCert(t *testing.T, certFile, keyFile string) {
	testkit.WriteSelfSigned(t, certFile, keyFile, time.Now().Add(-60*24*time.Hour), time.Now().Add(-30*24*time.Hour), "localhost", "mail.example.test")
}

// TestPeers probes the real Dovecot and Postfix from Debian, correctly
// configured and then with one deliberate fault at a time; each fault is
// found, and only it.
func TestPeers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Dovecot and Postfix")
	}
	p := startPeers(t)
	certFile := filepath.Join(p.dir, "dovecot", "ssl", "cert.pem")
	keyFile := filepath.Join(p.dir, "dovecot", "ssl", "key.pem")
	roots := rootsFrom(t, certFile)
	const host = "mail.example.test"
	submission := "127.0.0.1:" + strconv.Itoa(p.port["SUBMISSION"]) + "/inet/"

	// The script's Postfix offers AUTH before STARTTLS
	// (smtpd_tls_auth_only = no) and its Dovecot plaintext logins before
	// STARTTLS/STLS (disable_plaintext_auth = no); a correct setup has
	// both on.
	if err := p.cmd("postconf", "-c", p.postfixConf(), "-e", "smtpd_tls_auth_only=yes"); err != nil {
		t.Fatal(err)
	}
	p.dovecotSet(t, "disable_plaintext_auth", "no", "yes")
	p.reload(t)

	t.Run("baseline", func(t *testing.T) {
		rep := p.expect(t, host, roots, nil)
		if rep.Worst != finding.OK {
			t.Errorf("worst %s, want ok", rep.Worst)
		}
		// The full address works: no extra login with the bare local
		// part (it would leave a failed-login line on the server).
		for _, st := range rep.Steps {
			if slices.ContainsFunc(st.Evidence, func(e string) bool { return strings.Contains(e, "extra login") }) {
				t.Errorf("%s: %q", st.Name, st.Evidence)
			}
		}
	})
	t.Run("certificate for another name", func(t *testing.T) {
		rep := p.expect(t, "imap.other.test", roots, []string{"tls.name-mismatch", "tls.failed"})
		// The customer uses the name given; the server's certificate is
		// at fault, and the fix must not send them to "use the name".
		for _, f := range rep.Findings {
			if f.Fault != finding.FaultServer || strings.Contains(f.Fix, "exactly as given") || !strings.Contains(f.Fix, "Nothing on your side is wrong") {
				t.Errorf("%s: fault %s, fix %q", f.ID, f.Fault, f.Fix)
			}
		}
	})
	t.Run("expired certificate", func(t *testing.T) {
		p.keep(t, certFile, keyFile)
		writeExpiredCert(t, certFile, keyFile)
		p.reload(t)
		leaf := certFrom(t, certFile)
		// The expiry is reported alone (no tls.untrusted checked at a
		// made-up moment), with the certificate's real dates.
		rep := p.expect(t, host, rootsFrom(t, certFile), []string{"tls.expired", "tls.failed"})
		valid := "valid from " + leaf.NotBefore.UTC().Format(time.RFC3339) + " until " + leaf.NotAfter.UTC().Format(time.RFC3339)
		if ev := rep.Findings[0].Evidence; !slices.ContainsFunc(ev, func(e string) bool { return strings.Contains(e, valid) }) {
			t.Errorf("tls.expired evidence %q lacks %q", ev, valid)
		}
	})
	t.Run("POP3 without STLS", func(t *testing.T) {
		p.keep(t, p.dovecotConf())
		p.dovecotAppend(t, "protocol pop3 {\n  ssl = no\n}\n")
		p.reload(t)
		// Dovecot's POP3 without TLS: the STARTTLS port lacks STLS (a
		// missing STARTTLS, not a temporary failure) and the SSL/TLS
		// port fails its handshake.
		rep := p.expect(t, host, roots, []string{"server.starttls-missing", "tls.failed"})
		f := rep.Findings[0]
		if f.Fault != finding.FaultServer || !strings.Contains(f.Staff, strconv.Itoa(p.port["POP3"])) {
			t.Errorf("%+v", f)
		}
	})
	t.Run("plaintext logins before TLS", func(t *testing.T) {
		p.keep(t, p.dovecotConf())
		p.dovecotSet(t, "disable_plaintext_auth", "yes", "no")
		p.reload(t)
		rep := p.expect(t, host, roots, []string{"imap.auth-before-tls", "pop3.auth-before-tls"})
		for _, f := range rep.Findings {
			if f.Fault != finding.FaultServer || f.Severity != finding.Warning {
				t.Errorf("%s: %s, fault %s", f.ID, f.Severity, f.Fault)
			}
		}
	})
	t.Run("no STARTTLS", func(t *testing.T) {
		p.postconf(t, "-P", submission+"smtpd_tls_security_level=none")
		p.expect(t, host, roots, []string{"tls.failed"})
	})
	t.Run("AUTH before TLS", func(t *testing.T) {
		p.postconf(t, "-P", submission+"smtpd_tls_auth_only=no")
		p.expect(t, host, roots, []string{"smtp.auth-before-tls"})
	})
	t.Run("mail without AUTH", func(t *testing.T) {
		p.postconf(t, "-P", submission+"mynetworks=127.0.0.0/8",
			submission+"smtpd_relay_restrictions=permit_mynetworks,permit_sasl_authenticated,reject",
			submission+"smtpd_recipient_restrictions=permit_mynetworks,permit_sasl_authenticated,reject")
		p.expect(t, host, roots, []string{"smtp.open-relay"})
	})
	t.Run("submission port in SSL/TLS mode", func(t *testing.T) {
		p.postconf(t, "-P", submission+"smtpd_tls_wrappermode=yes")
		rep := p.expect(t, host, roots, []string{"server.tls-mode-mismatch"})
		f := rep.Findings[0]
		port := strconv.Itoa(p.port["SUBMISSION"])
		if f.Fault != finding.FaultServer || !strings.Contains(f.Staff, port) || !strings.Contains(f.Staff, "speaks SSL/TLS") ||
			!strings.Contains(f.Fix, "Nothing on your side is wrong") {
			t.Errorf("%+v", f)
		}
		// A customer who set what the port really speaks is told
		// nothing about their settings; the live check, not the policy,
		// says what the port speaks.
		client := &ClientSettings{Incoming: Incoming{Protocol: "imap", Host: host, Port: p.port["IMAPS"], Security: "ssl"},
			Outgoing: Outgoing{Host: host, Port: p.port["SUBMISSION"], Security: "ssl"}}
		rep = p.expectWith(t, host, roots, client, []string{"server.tls-mode-mismatch", "settings.ok"})
		if !slices.ContainsFunc(rep.Steps, func(s Step) bool {
			return s.Kind == KindSecurityMode && slices.ContainsFunc(s.Evidence, func(e string) bool { return strings.Contains(e, "it speaks SSL/TLS") })
		}) {
			t.Errorf("no live mode step: %+v", rep.Steps)
		}
		client.Outgoing.Port, client.Outgoing.Security = p.port["SUBMISSIONS"], "starttls"
		rep = p.expectWith(t, host, roots, client, []string{"port.security-mismatch", "server.tls-mode-mismatch"})
		if f := rep.Findings[0]; !strings.Contains(f.Fix, "SSL/TLS") {
			t.Errorf("%+v", f)
		}
	})
	t.Run("IMAP STARTTLS port in SSL/TLS mode", func(t *testing.T) {
		p.keep(t, p.dovecotConf())
		port := strconv.Itoa(p.port["IMAP"])
		data, err := os.ReadFile(p.dovecotConf())
		if err != nil {
			t.Fatal(err)
		}
		conf := strings.Replace(string(data), "port = "+port+"\n", "port = "+port+"\n    ssl = yes\n", 1)
		if err := os.WriteFile(p.dovecotConf(), []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		p.reload(t)
		rep := p.expect(t, host, roots, []string{"server.tls-mode-mismatch"})
		if f := rep.Findings[0]; !strings.Contains(f.Staff, port) || !strings.Contains(f.Staff, "the policy says STARTTLS") {
			t.Errorf("%+v", f)
		}
	})
	t.Run("passdb knows only the bare local part", func(t *testing.T) {
		users := filepath.Join(p.dir, "dovecot", "users")
		p.keep(t, users)
		data, err := os.ReadFile(users)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(users, []byte(strings.ReplaceAll(string(data), "@example.test:", ":")), 0o644); err != nil {
			t.Fatal(err)
		}
		p.reload(t)
		// The right password with the full address is refused: not
		// login.failed, but the server's fault, found by one extra login
		// as the bare local part that the report mentions.
		rep := p.expect(t, host, roots, []string{"server.username-form"})
		f := rep.Findings[0]
		if f.Fault != finding.FaultServer || !strings.Contains(f.Fix, `"user1"`) ||
			!slices.ContainsFunc(f.Evidence, func(e string) bool { return strings.Contains(e, "extra login") }) {
			t.Errorf("%+v", f)
		}
		// A customer whose working username is the bare local part is
		// not told to switch to the full address.
		client := &ClientSettings{Incoming: Incoming{Protocol: "imap", Host: host, Port: p.port["IMAPS"], Security: "ssl", Username: "user1"},
			Outgoing: Outgoing{Host: host, Port: p.port["SUBMISSIONS"], Security: "ssl", Username: "user1"}}
		p.expectWith(t, host, roots, client, []string{"server.username-form", "settings.ok"})
	})
	t.Run("POP3 UIDLs over time", func(t *testing.T) {
		// Dovecot keeps its UIDLs: the second session lists the same
		// ones, and nothing is reported.
		maildir := filepath.Join(p.dir, "mail", "example.test", "user1", "Maildir")
		for _, d := range []string{"new", "cur", "tmp"} {
			if err := os.MkdirAll(filepath.Join(maildir, d), 0o700); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 3 {
			msg := fmt.Sprintf("From: user2@example.test\r\nTo: user1@example.test\r\nDate: %s\r\nSubject: %d\r\n\r\nbody %d\r\n",
				time.Now().Format(time.RFC1123Z), i, i)
			name := fmt.Sprintf("%d.probe%d.localhost", time.Now().Unix(), i)
			if err := os.WriteFile(filepath.Join(maildir, "new", name), []byte(msg), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if err := filepath.Walk(maildir, func(path string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			return os.Chown(path, 65534, 65534)
		}); err != nil {
			t.Fatal(err)
		}
		rep := p.expect(t, host, roots, nil)
		if !slices.ContainsFunc(rep.Steps, func(s Step) bool {
			return s.Kind == KindLogin && s.Endpoint.Protocol == autoconfig.POP3 &&
				slices.ContainsFunc(s.Evidence, func(e string) bool {
					return strings.Contains(e, "UIDLs unchanged in a second session") && strings.Contains(e, "(3 and 3 messages)")
				})
		}) {
			t.Errorf("no UIDL comparison: %+v", rep.Steps)
		}
	})
	// The restored configuration is clean again.
	t.Run("restored", func(t *testing.T) {
		p.expect(t, host, roots, nil)
	})
}
