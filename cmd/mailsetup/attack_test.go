package main

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mailsetup/internal/testkit"
	"mailsetup/server"
)

// The attacks of the "under attack" issue, against the real binary. Every
// connection goes to 127.0.0.1; the attackers' addresses are other
// addresses of the loopback network (127.0.0.0/8 is all loopback).

// inMail sets keys ("key = value") in the generated config's [mail]
// section, replacing the generated line where there is one.
func inMail(lines ...string) func(*testing.T, *mailService, string) string {
	return func(t *testing.T, _ *mailService, config string) string {
		t.Helper()
		if !strings.Contains(config, "[mail]\n") {
			t.Fatalf("generated config has no [mail]:\n%s", config)
		}
		for _, l := range lines {
			key, _, _ := strings.Cut(l, " = ")
			if re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(key) + ` = .*$`); re.MatchString(config) {
				config = re.ReplaceAllLiteralString(config, l)
				continue
			}
			config = strings.Replace(config, "[mail]\n", "[mail]\n"+l+"\n", 1)
		}
		return config
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
		path := testkit.Tool(t, "curl", "curl")
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

// TestSlowClientsDoNotHoldTheSlots: on every mail listener, 2 addresses
// try to hold 20 connections each (more than max_unauthenticated) that never
// log in: on the plain ports they trickle a command a byte every 0.5 s,
// on the TLS ports they never finish the handshake; each reconnects as
// soon as it is closed. Meanwhile real clients (curl, swaks) check every
// listener every few seconds: every check succeeds. The trickled partial
// lines are never answered as commands.
func TestSlowClientsDoNotHoldTheSlots(t *testing.T) {
	m := startMailWith(t, inMail("max_connections = 40", "max_connections_per_ip = 20", "max_unauthenticated = 30", "login_timeout_seconds = 3"))
	defer m.stop(t)
	ports := map[string]int{"smtp": m.ports.SMTP, "submission": m.ports.Submission, "submissions": m.ports.Submissions,
		"imap": m.ports.IMAP, "imaps": m.ports.IMAPS, "pop3": m.ports.POP3, "pop3s": m.ports.POP3S}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var answered atomic.Int32 // replies to a trickled partial line
	for name, port := range ports {
		implicitTLS := name == "submissions" || name == "imaps" || name == "pop3s"
		for a := 0; a < 2; a++ {
			for i := 0; i < 20; i++ {
				wg.Add(1)
				go func(from string) {
					defer wg.Done()
					for {
						select {
						case <-stop:
							return
						default:
						}
						c, err := dialFrom(from, fmt.Sprintf("127.0.0.1:%d", port))
						if err != nil {
							time.Sleep(200 * time.Millisecond)
							continue
						}
						trickle(c, implicitTLS, stop, &answered)
						c.Close()
					}
				}(fmt.Sprintf("127.0.2.%d", a+1))
			}
		}
	}
	time.Sleep(2 * time.Second) // the flood is in place
	user := server.DemoAddress + ":" + m.password
	checks := map[string]func() error{
		"pop3s": func() error { return curlOK(t, "-u", user, fmt.Sprintf("pop3s://127.0.0.1:%d/", m.ports.POP3S)) },
		"pop3": func() error {
			return curlOK(t, "--ssl-reqd", "-u", user, fmt.Sprintf("pop3://127.0.0.1:%d/", m.ports.POP3))
		},
		"imaps": func() error { return curlOK(t, "-u", user, fmt.Sprintf("imaps://127.0.0.1:%d/", m.ports.IMAPS)) },
		"imap": func() error {
			return curlOK(t, "--ssl-reqd", "-u", user, fmt.Sprintf("imap://127.0.0.1:%d/", m.ports.IMAP))
		},
		"submission": func() error {
			return swaksOK(swaks(t, fmt.Sprintf("127.0.0.1:%d", m.ports.Submission), "--tls", "--auth", "PLAIN", "--auth-user", server.DemoAddress,
				"--auth-password", m.password, "--from", server.DemoAddress, "--to", server.DemoAddress))
		},
		"submissions": func() error {
			return swaksOK(swaks(t, fmt.Sprintf("127.0.0.1:%d", m.ports.Submissions), "--tlsc", "--auth", "PLAIN", "--auth-user", server.DemoAddress,
				"--auth-password", m.password, "--from", server.DemoAddress, "--to", server.DemoAddress))
		},
		"smtp": func() error {
			return swaksOK(swaks(t, fmt.Sprintf("127.0.0.1:%d", m.ports.SMTP), "--from", "someone@elsewhere.example", "--to", server.DemoAddress))
		},
	}
	failed, total := 0, 0
	for round := 0; round < 3; round++ {
		for name, check := range checks {
			total++
			if err := check(); err != nil {
				failed++
				t.Errorf("round %d, %s: %v", round, name, err)
			}
		}
		time.Sleep(time.Second)
	}
	close(stop)
	wg.Wait()
	t.Logf("%d of %d legitimate checks failed during the flood", failed, total)
	if n := answered.Load(); n > 0 {
		t.Errorf("%d trickled partial lines were answered as commands", n)
	}
	// Thousands of refusals, a few log lines: at most one a minute per
	// listener and reason (the test runs for less than a minute).
	if n := strings.Count(m.stderr.String(), "connections refused or closed"); n == 0 || n > 7*5 {
		t.Errorf("%d log lines about refused connections", n)
	}
	r := curl(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", m.ports.Admin))
	for _, want := range []string{`mailsetup_mail_connections_refused_total{listener="pop3",reason="no login in time"}`,
		`mailsetup_mail_connections_refused_total{listener="imaps",reason="no login in time"}`} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("metrics lack %s", want)
			for _, l := range strings.Split(string(r.body), "\n") {
				if strings.HasPrefix(l, "mailsetup_mail_connections_refused_total") {
					t.Log(l)
				}
			}
		}
	}
}

// trickle holds a connection without logging in: a byte of a command
// every 0.5 s on a plain port (after reading the greeting), nothing at
// all on an implicit-TLS port (a handshake that never ends). A reply to
// the partial line is counted in answered.
func trickle(c net.Conn, implicitTLS bool, stop chan struct{}, answered *atomic.Int32) {
	if !implicitTLS {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
			return
		}
	}
	replies := make(chan struct{}, 1)
	go func() {
		b := make([]byte, 512)
		_ = c.SetReadDeadline(time.Time{})
		for {
			n, err := c.Read(b)
			if n > 0 && !implicitTLS {
				answered.Add(1)
			}
			if err != nil {
				close(replies)
				return
			}
		}
	}()
	cmd := "NOOP and then some more bytes that never end"
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		case <-replies:
			return // closed by the server
		case <-time.After(500 * time.Millisecond):
		}
		if !implicitTLS {
			if _, err := c.Write([]byte{cmd[i%len(cmd)]}); err != nil {
				return
			}
		}
	}
}

func curlOK(t *testing.T, args ...string) error {
	t.Helper()
	path := testkit.Tool(t, "curl", "curl")
	out, err := exec.Command(path, append([]string{"-sS", "-k", "--max-time", "10"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("curl: %v: %s", err, out)
	}
	return nil
}

func swaksOK(transcript string) error {
	if !strings.Contains(transcript, "<~  250 2.0.0") && !strings.Contains(transcript, "<-  250 2.0.0") {
		return fmt.Errorf("swaks:\n%s", transcript)
	}
	return nil
}

// TestWebFloodLeavesMailListenersRoom: with 2048 descriptors, 3000 idle
// keep-alive connections to the HTTP listener (a GET /healthz each, from
// 15 addresses) cannot take the descriptors the mail listeners need:
// every mail listener greets at once during the flood, the admin
// listener answers, and a new web client gets its page (an idle
// connection makes room).
func TestWebFloodLeavesMailListenersRoom(t *testing.T) {
	prlimit := testkit.Tool(t, "prlimit", "util-linux")
	m := prepareMail(t, func(t *testing.T, m *mailService, config string) string {
		// Idle connections kept for 10 minutes, as a flood keeps them.
		return inMail("max_connections = 100")(t, m, config) + "\n[http_limits]\nidle_seconds = 600\n"
	})
	m.service = startServeUnder(t, []string{prlimit, "--nofile=2048:2048", "--"}, "--config", m.config)
	defer m.stop(t)
	httpAddr := fmt.Sprintf("127.0.0.1:%d", m.ports.HTTP)
	var flood []net.Conn
	defer func() {
		for _, c := range flood {
			c.Close()
		}
	}()
	served, refused, stalled := 0, 0, 0
	for i := 0; i < 3000 && stalled < 5; i++ {
		c, err := dialFrom(fmt.Sprintf("127.0.3.%d", 1+i%15), httpAddr)
		if err != nil {
			t.Fatalf("flood connection %d: %v", i, err)
		}
		flood = append(flood, c)
		// Short: a connection the server cannot accept must not stall
		// the flood until the idle ones time out.
		_ = c.SetDeadline(time.Now().Add(time.Second))
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			stalled++ // not accepted: the server is out of descriptors
			refused++
		case err != nil:
			refused++ // pushed out, or closed
		case resp.StatusCode == http.StatusOK:
			served++
		default:
			refused++
		}
		if resp != nil {
			resp.Body.Close()
		}
	}
	t.Logf("flood: %d served and left idle, %d refused or closed (%d not answered)", served, refused, stalled)

	greets := map[int]bool{m.ports.SMTP: false, m.ports.Submission: false, m.ports.Submissions: true,
		m.ports.IMAP: false, m.ports.IMAPS: true, m.ports.POP3: false, m.ports.POP3S: true}
	for port, implicitTLS := range greets {
		start := time.Now()
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 2*time.Second)
		if err != nil {
			t.Errorf("port %d during the flood: %v", port, err)
			continue
		}
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		if implicitTLS {
			c = tls.Client(c, &tls.Config{InsecureSkipVerify: true}) // the demo's self-signed certificate
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if err != nil || !(strings.HasPrefix(line, "220 ") || strings.HasPrefix(line, "* OK") || strings.HasPrefix(line, "+OK")) {
			t.Errorf("port %d during the flood: %q %v", port, line, err)
		} else if took := time.Since(start); took > time.Second {
			t.Errorf("port %d greeted after %v", port, took)
		}
	}
	if r := curl(t, fmt.Sprintf("http://127.0.0.1:%d/healthz", m.ports.Admin)); r.status != http.StatusOK {
		t.Errorf("admin during the flood: %d", r.status)
	}
	if r := curl(t, "-k", fmt.Sprintf("http://127.0.0.1:%d/mail/config-v1.1.xml?emailaddress=%s", m.ports.HTTP, server.DemoAddress)); r.status != http.StatusOK {
		t.Errorf("a new web client during the flood: %d", r.status)
	}
	if !strings.Contains(m.stderr.String(), "descriptor budget") {
		t.Errorf("the descriptor budget is not logged:\n%s", m.stderr)
	}
}

// TestDirectoryHarvestOnPort25: swaks names 6 unknown recipients in one
// session; after 3 they come slower, the 5th gets 421 and the
// connection ends; the metric counts it.
func TestDirectoryHarvestOnPort25(t *testing.T) {
	m := startMailWith(t, inMail("unknown_recipients_slow = 2", "unknown_recipients_max = 4"))
	defer m.stop(t)
	var to []string
	for i := 1; i <= 6; i++ {
		to = append(to, fmt.Sprintf("nobody%d@example.test", i))
	}
	start := time.Now()
	out := swaks(t, fmt.Sprintf("127.0.0.1:%d", m.ports.SMTP), "--from", "guesser@elsewhere.example", "--to", strings.Join(to, ","))
	if strings.Count(out, "550 5.1.1") != 4 || !strings.Contains(out, "421 4.7.0 Too many unknown recipients") {
		t.Errorf("swaks:\n%s", out)
	}
	if took := time.Since(start); took < 3*time.Second {
		t.Errorf("4 unknown recipients took %v: not slowed (1 s + 2 s)", took)
	}
	r := curl(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", m.ports.Admin))
	if !strings.Contains(string(r.body), `mailsetup_smtp_unknown_recipient_limit_total{action="disconnected"} 1`) {
		t.Errorf("metric:\n%s", r.body)
	}
}

// TestTrickledCommandAfterLoginIsNotExecuted: a customer's connection
// (logged in, so the login timeout no longer applies) that trickles a
// command slower than mail.smtp_command_seconds is closed, and the
// partial command is not executed.
func TestTrickledCommandAfterLoginIsNotExecuted(t *testing.T) {
	m := startMailWith(t, inMail("smtp_command_seconds = 2"))
	defer m.stop(t)
	c, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", m.ports.Submissions), &tls.Config{InsecureSkipVerify: true}) // the demo's self-signed certificate
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	r := bufio.NewReader(c)
	reply := func(cmd string) string {
		if cmd != "" {
			fmt.Fprintf(c, "%s\r\n", cmd)
		}
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("%q: %v", cmd, err)
			}
			if len(l) < 4 || l[3] != '-' {
				return strings.TrimSpace(l)
			}
		}
	}
	reply("")
	reply("EHLO client.example")
	cred := base64.StdEncoding.EncodeToString([]byte("\x00" + server.DemoAddress + "\x00" + m.password))
	if l := reply("AUTH PLAIN " + cred); !strings.HasPrefix(l, "235") {
		t.Fatalf("AUTH: %q", l)
	}
	fmt.Fprint(c, "MAIL FROM:<"+server.DemoAddress+">")
	for i := 0; i < 8; i++ {
		time.Sleep(500 * time.Millisecond)
		if _, err := c.Write([]byte(" ")); err != nil {
			break
		}
	}
	rest, _ := io.ReadAll(r)
	if strings.Contains(string(rest), "250") {
		t.Errorf("the partial command was executed: %q", rest)
	}
}
