package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailsetup/server"
)

// lineClient speaks a line protocol (over TLS from dialLines).
type lineClient struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialLines(t *testing.T, addr string) (*lineClient, []byte) {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) // the certificate is compared by the test
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	return &lineClient{t, c, bufio.NewReader(c)}, c.ConnectionState().PeerCertificates[0].Raw
}

// cmd sends line (if not empty) and reads until a line starting with
// done; it returns the last line.
func (l *lineClient) cmd(line, done string) string {
	l.t.Helper()
	if line != "" {
		if _, err := fmt.Fprintf(l.c, "%s\r\n", line); err != nil {
			l.t.Fatalf("%s: %v", line, err)
		}
	}
	for {
		got, err := l.r.ReadString('\n')
		if err != nil {
			l.t.Fatalf("after %q: %v", line, err)
		}
		if strings.HasPrefix(got, done) || strings.HasPrefix(got, "-ERR") || strings.Contains(got, " NO ") || strings.Contains(got, " BAD ") {
			return strings.TrimSpace(got)
		}
	}
}

// TestReloadKeepsSessions: SIGHUP with a renewed certificate on disk and
// another log level applies both, and IMAP and POP3 sessions opened
// before it go on working after it (the same connections, logged in).
func TestReloadKeepsSessions(t *testing.T) {
	dir := t.TempDir()
	ports := freePorts(t)
	created, err := server.EnsureDefault(dir, ports)
	if err != nil {
		t.Fatal(err)
	}
	s := startServe(t, "--config", created.ConfigPath)
	pw := created.DemoPassword
	imap, oldCert := dialLines(t, fmt.Sprintf("127.0.0.1:%d", ports.IMAPS))
	imap.cmd("", "* OK")
	if got := imap.cmd("a1 LOGIN demo@example.test "+pw, "a1 "); !strings.HasPrefix(got, "a1 OK") {
		t.Fatalf("IMAP LOGIN: %s", got)
	}
	imap.cmd("a2 SELECT INBOX", "a2 OK")
	pop, _ := dialLines(t, fmt.Sprintf("127.0.0.1:%d", ports.POP3S))
	pop.cmd("", "+OK")
	pop.cmd("USER demo@example.test", "+OK")
	if got := pop.cmd("PASS "+pw, "+OK"); !strings.HasPrefix(got, "+OK") {
		t.Fatalf("POP3 PASS: %s", got)
	}
	pop.cmd("STAT", "+OK")

	// A renewed certificate (as certbot would write it) and log.level debug.
	if err := server.WriteSelfSigned(filepath.Join(dir, server.CertFile), filepath.Join(dir, server.KeyFile), []string{"localhost"}, 48*time.Hour); err != nil {
		t.Fatal(err)
	}
	conf, err := os.ReadFile(created.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	conf = bytes.Replace(conf, []byte(`level = "info"`), []byte(`level = "debug"`), 1)
	// A first observe source (the service started with none): with the
	// mail server, a reload starts it.
	at := bytes.Index(conf, []byte("[[domain]]"))
	source := fmt.Sprintf("[[observe.source]]\nkind = \"dovecot\"\nfile = %q\n\n", filepath.Join(dir, "dovecot.log"))
	conf = append(append(append([]byte(nil), conf[:at]...), source...), conf[at:]...)
	if err := os.WriteFile(created.ConfigPath, conf, 0o600); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(s.stderr.String(), "level=DEBUG") {
		t.Fatal("debug lines before the reload")
	}
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, s, "config reloaded: staff members and API tokens applied", 10*time.Second)
	waitLog(t, s, `msg="observe source started" source=dovecot:`, 5*time.Second)
	if strings.Contains(s.stderr.String(), "config changes that need a restart") {
		t.Errorf("certificate and log level should not need a restart:\n%s", s.stderr)
	}

	// The sessions opened before go on.
	imap.cmd("a3 NOOP", "a3 OK")
	imap.cmd("a4 STATUS INBOX (MESSAGES)", "a4 OK")
	imap.cmd("a5 LOGOUT", "a5 OK")
	pop.cmd("LIST", ".")
	pop.cmd("QUIT", "+OK")

	// New connections get the new certificate; the new level logs.
	_, newCert := dialLines(t, fmt.Sprintf("127.0.0.1:%d", ports.IMAPS))
	if bytes.Equal(oldCert, newCert) {
		t.Error("IMAPS still serves the old certificate after SIGHUP")
	}
	if r := curl(t, fmt.Sprintf("https://localhost:%d/mail/config-v1.1.xml?emailaddress=demo@example.test", ports.HTTPS)); r.status != 200 {
		t.Errorf("autoconfig after reload: %d", r.status)
	}
	waitLog(t, s, "level=DEBUG", 10*time.Second)
	s.stop(t)
}
