package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailsetup/server"
)

// TestFirstStartWithBusyPort: the first start creates the data directory
// and its passwords, then cannot bind a port. The passwords are shown
// anyway and kept in a 0600 file; after the user frees the port (here:
// moves the service to free ports) the next start reminds them of the
// file, and both passwords sign in.
func TestFirstStartWithBusyPort(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	// The embedded default's HTTP port, held by "another program". When
	// something else holds it already, it is busy all the same.
	busy, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", server.DefaultPorts().HTTP))
	if err == nil {
		defer busy.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	first, err := exec.CommandContext(ctx, binary, "serve", "--data", dir).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitError {
		t.Fatalf("first start with a busy port: %v, want exit %d\n%s", err, exitError, first)
	}
	if !strings.Contains(string(first), "address already in use") {
		t.Errorf("the failure does not say the port is busy:\n%s", first)
	}
	demo, staff := printedPasswords(t, string(first))
	credPath := filepath.Join(dir, server.CredentialsFile)
	if demo == "" || staff == "" || !strings.Contains(string(first), credPath) {
		t.Fatalf("the failed first start did not show the passwords and %s:\n%s", credPath, first)
	}
	st, err := os.Stat(credPath)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file: %v, mode %v; want 0600", err, st)
	}
	creds, err := server.ReadCredentials(credPath)
	if err != nil || creds.DemoAddress != server.DemoAddress || creds.DemoPassword != demo || creds.StaffName != server.DefaultStaff || creds.StaffPassword != staff {
		t.Fatalf("the credentials file %+v (%v) differs from the output:\n%s", creds, err, first)
	}

	ports := movePorts(t, filepath.Join(dir, server.ConfigFile))
	svc := startServe(t, "--data", dir)
	defer svc.stop(t)
	out := svc.stdout.String()
	if strings.Contains(out, demo) || strings.Contains(out, staff) || !strings.Contains(out, credPath+" still holds the passwords") {
		t.Errorf("the second start should name the credentials file, not print the passwords:\n%s", out)
	}
	staffClient(t, svc.urls["https"], staff) // fails the test unless the sign-in works
	if reply := imapLogin(t, ports.IMAPS, server.DemoAddress, demo); !strings.HasPrefix(reply, "a1 OK") {
		t.Errorf("IMAP login with the printed demo password: %q", reply)
	}
}

// movePorts rewrites a generated config from the embedded default's
// ports to free ones, as a user whose port is taken would, and returns
// them.
func movePorts(t *testing.T, config string) server.Ports {
	t.Helper()
	data, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	d := server.DefaultPorts()
	p := freePorts(t)
	for _, pair := range [][2]int{{d.HTTP, p.HTTP}, {d.HTTPS, p.HTTPS}, {d.DNS, p.DNS}, {d.Admin, p.Admin},
		{d.SMTP, p.SMTP}, {d.Submission, p.Submission}, {d.Submissions, p.Submissions},
		{d.IMAP, p.IMAP}, {d.IMAPS, p.IMAPS}, {d.POP3, p.POP3}, {d.POP3S, p.POP3S}} {
		text = strings.ReplaceAll(text, fmt.Sprintf(":%d\"", pair[0]), fmt.Sprintf(":%d\"", pair[1]))
		text = strings.ReplaceAll(text, fmt.Sprintf("port = %d\n", pair[0]), fmt.Sprintf("port = %d\n", pair[1]))
	}
	if err := os.WriteFile(config, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// imapLogin logs in over IMAPS and returns the tagged reply.
func imapLogin(t *testing.T, port int, user, password string) string {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", fmt.Sprintf("127.0.0.1:%d", port),
		&tls.Config{InsecureSkipVerify: true}) // the embedded default's self-signed cert
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(conn)
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "a1 LOGIN %q %q\r\n", user, password)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(line, "a1 ") {
			return strings.TrimSpace(line)
		}
	}
}
