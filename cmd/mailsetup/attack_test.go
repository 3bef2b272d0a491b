package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"mailsetup/autoconfig/autoconfigtest"
	"mailsetup/server"
)

// The attacks of the "under attack" issue, against the real binary. Every
// connection goes to 127.0.0.1; the attackers' addresses are other
// addresses of the loopback network (127.0.0.0/8 is all loopback).

// inMail adds lines to the generated config's [mail] section.
func inMail(lines ...string) func(*testing.T, *mailService, string) string {
	return func(t *testing.T, _ *mailService, config string) string {
		t.Helper()
		if !strings.Contains(config, "[mail]\n") {
			t.Fatalf("generated config has no [mail]:\n%s", config)
		}
		return strings.Replace(config, "[mail]\n", "[mail]\n"+strings.Join(lines, "\n")+"\n", 1)
	}
}

// dialFrom connects to addr from the loopback address from.
func dialFrom(from, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	return d.Dial("tcp", addr)
}

// pop3Login logs in over POP3S from the given address and returns the
// server's reply to PASS.
func pop3Login(t *testing.T, from string, port int, user, password string) string {
	t.Helper()
	raw, err := dialFrom(from, fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	_ = raw.SetDeadline(time.Now().Add(20 * time.Second))
	c := tls.Client(raw, &tls.Config{InsecureSkipVerify: true}) // the demo's self-signed certificate
	r := bufio.NewReader(c)
	line := func(cmd string) string {
		if cmd != "" {
			fmt.Fprintf(c, "%s\r\n", cmd)
		}
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("POP3 %q: %v", cmd, err)
		}
		return strings.TrimSpace(l)
	}
	line("")
	if l := line("USER " + user); !strings.HasPrefix(l, "+OK") {
		return l
	}
	reply := line("PASS " + password)
	fmt.Fprintf(c, "QUIT\r\n")
	return reply
}

// TestStrangerCannotLockTheOwnerOut: 31 wrong passwords from a mix of
// addresses, then one a second from 8 rotating addresses (each under its
// own limit). The owner's client, which logged in before, is never
// refused (POP3 with curl, then IMAP and SMTP); a new device of the
// owner's gets in; the attacker's checked passwords stay within the
// bound. The window is 60 s here, so the account's bucket drains one
// failure every 2 s, as fast as the attack.
func TestStrangerCannotLockTheOwnerOut(t *testing.T) {
	m := startMailWith(t, inMail("login_window_seconds = 60"))
	defer m.stop(t)
	owner := func() error {
		path := autoconfigtest.Tool(t, "curl", "curl")
		out, err := exec.Command(path, "-sS", "-k", "--max-time", "20", "-u", server.DemoAddress+":"+m.password,
			fmt.Sprintf("pop3s://127.0.0.1:%d/", m.ports.POP3S)).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	}
	if err := owner(); err != nil {
		t.Fatal(err)
	}
	checked, refusedAttacker := 0, 0
	attack := func(i int) {
		switch r := pop3Login(t, fmt.Sprintf("127.0.0.%d", 2+i%8), m.ports.POP3S, server.DemoAddress, "guess"); {
		case strings.HasPrefix(r, "-ERR [AUTH]"):
			checked++
		case strings.HasPrefix(r, "-ERR [SYS/TEMP]"):
			refusedAttacker++
		default:
			t.Fatalf("attacker got %q", r)
		}
	}
	start := time.Now()
	for i := 0; i < 31; i++ {
		attack(i)
	}
	refused := 0
	for i := 0; i < 20; i++ {
		attack(i)
		if err := owner(); err != nil {
			refused++
			t.Log(err)
		}
		time.Sleep(time.Second)
	}
	if refused > 0 {
		t.Errorf("the owner's known client was refused %d of 20 times", refused)
	}
	elapsed := time.Since(start)
	// Per 60 s window at most 30 (failed before) + 10 (new addresses),
	// plus both bursts.
	bound := 40 + int(40*elapsed.Seconds()/60)
	if checked > bound || refusedAttacker == 0 {
		t.Errorf("attacker: %d passwords checked (bound %d), %d refused", checked, bound, refusedAttacker)
	}
	t.Logf("attacker: %d checked, %d refused in %v", checked, refusedAttacker, elapsed.Round(time.Second))
	// The same owner on the other protocols, from the same address.
	user := server.DemoAddress + ":" + m.password
	if r := curl(t, "-u", user, fmt.Sprintf("imaps://127.0.0.1:%d/", m.ports.IMAPS)); !strings.Contains(string(r.body), "INBOX") {
		t.Errorf("owner over IMAP: %s", r.body)
	}
	out := swaks(t, fmt.Sprintf("127.0.0.1:%d", m.ports.Submission), "--tls", "--auth", "PLAIN", "--auth-user", server.DemoAddress,
		"--auth-password", m.password, "--from", server.DemoAddress, "--to", server.DemoAddress)
	if !strings.Contains(out, "<~  250 2.0.0") {
		t.Errorf("owner over SMTP:\n%s", out)
	}
	// A new device of the owner's, from an address never seen.
	if r := pop3Login(t, "127.0.0.99", m.ports.POP3S, server.DemoAddress, m.password); !strings.HasPrefix(r, "+OK") {
		t.Errorf("the owner's new device: %s", r)
	}
	if !strings.Contains(m.stderr.String(), "login throttle: refusing") {
		t.Errorf("no log line says the throttle refused:\n%s", m.stderr)
	}
}

// TestStrangerCannotLockStaffOut: 11 wrong passwords for admin from 11
// addresses; admin, who signed in before from 127.0.0.1, still gets in.
func TestStrangerCannotLockStaffOut(t *testing.T) {
	m := startMail(t)
	defer m.stop(t)
	base := fmt.Sprintf("https://localhost:%d", m.ports.HTTPS)
	staffClient(t, base, m.staffPassword) // admin signs in from 127.0.0.1
	for i := 0; i < 11; i++ {
		from := fmt.Sprintf("127.0.1.%d", i+1)
		code, _ := staffSignIn(t, staffHTTPClient(from), base, server.DefaultStaff, "wrong password")
		if code != http.StatusUnauthorized && code != http.StatusTooManyRequests {
			t.Fatalf("attempt %d from %s: status %d", i, from, code)
		}
	}
	staffClient(t, base, m.staffPassword) // fails the test if refused
}
