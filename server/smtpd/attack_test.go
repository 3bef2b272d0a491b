package smtpd_test

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"mailsetup/server/smtpd"
)

// rawSMTP is a client that reads replies line by line.
type rawSMTP struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialSMTP(t *testing.T, addr string) *rawSMTP {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return greeted(t, c)
}

// dialSMTPS is dialSMTP over implicit TLS (465).
func dialSMTPS(t *testing.T, addr string) *rawSMTP {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) // the test certificate
	if err != nil {
		t.Fatal(err)
	}
	return greeted(t, c)
}

func greeted(t *testing.T, c net.Conn) *rawSMTP {
	t.Helper()
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	s := &rawSMTP{t: t, c: c, r: bufio.NewReader(c)}
	if g := s.line(); !strings.HasPrefix(g, "220 ") {
		t.Fatalf("greeting %q", g)
	}
	return s
}

func (s *rawSMTP) line() string {
	s.t.Helper()
	l, err := s.r.ReadString('\n')
	if err != nil {
		s.t.Fatalf("reading: %v (got %q)", err, l)
	}
	return strings.TrimRight(l, "\r\n")
}

// reply sends a command and returns the last line of its reply.
func (s *rawSMTP) reply(cmd string) string {
	s.t.Helper()
	if _, err := io.WriteString(s.c, cmd+"\r\n"); err != nil {
		s.t.Fatal(err)
	}
	for {
		l := s.line()
		if len(l) < 4 || l[3] != '-' {
			return l
		}
	}
}

// rest reads what the server still sends until it closes the connection.
func (s *rawSMTP) rest() (string, error) {
	b, err := io.ReadAll(s.r)
	return string(b), err
}

// A partial line whose read deadline passes is not executed as a command
// (go-smtp would answer "250-Hello aaa" and start a new deadline): the
// connection is closed.
func TestPartialLineAfterTimeoutIsNotExecuted(t *testing.T) {
	r := startWith(t, func(o *smtpd.Options) { o.ReadTimeout = 300 * time.Millisecond })
	for _, addr := range []string{r.submission, r.inbound, r.submissions} {
		dial := dialSMTP
		if addr == r.submissions {
			dial = dialSMTPS // the guard holds under implicit TLS too
		}
		s := dial(t, addr)
		io.WriteString(s.c, "EHLO aaa")
		for i := 0; i < 8; i++ {
			time.Sleep(100 * time.Millisecond)
			if _, err := io.WriteString(s.c, "a"); err != nil {
				break // closed: fine
			}
		}
		got, err := s.rest()
		if err != nil {
			t.Errorf("%s: %v", addr, err)
		}
		if strings.Contains(got, "250") {
			t.Errorf("%s: the partial line was executed:\n%s", addr, got)
		}
	}
}

// After a failed STARTTLS handshake the connection ends; the client's
// bytes are not parsed as commands.
func TestFailedStartTLSClosesTheConnection(t *testing.T) {
	r := start(t)
	s := dialSMTP(t, r.submission)
	s.reply("EHLO client.example")
	if got := s.reply("STARTTLS"); !strings.HasPrefix(got, "220 ") {
		t.Fatalf("STARTTLS: %q", got)
	}
	io.WriteString(s.c, "this is not a TLS handshake\r\nMAIL FROM:<john@johndoe.com>\r\nNOOP\r\n")
	got, _ := s.rest()
	if strings.Count(got, "\r\n") > 1 || strings.Contains(got, "250") || strings.Contains(got, "530") {
		t.Errorf("after a failed handshake the session went on:\n%s", got)
	}
}

// Guessing recipients on port 25: 550 at first, then slower, then 421
// and the end of the connection; each counted.
func TestDirectoryHarvest(t *testing.T) {
	var slowed, closed atomic.Int32
	r := startWith(t, func(o *smtpd.Options) {
		o.UnknownRecipientsSlow, o.UnknownRecipientsMax = 1, 3
		o.OnHarvest = func(a string) {
			if a == "slowed" {
				slowed.Add(1)
			} else {
				closed.Add(1)
			}
		}
	})
	s := dialSMTP(t, r.inbound)
	s.reply("EHLO harvester.example")
	s.reply("MAIL FROM:<x@elsewhere.example>")
	if got := s.reply("RCPT TO:<john@johndoe.com>"); !strings.HasPrefix(got, "250") {
		t.Fatalf("known recipient: %q", got)
	}
	start := time.Now()
	for i := 0; i < 3; i++ {
		if got := s.reply("RCPT TO:<nobody" + string(rune('a'+i)) + "@johndoe.com>"); !strings.HasPrefix(got, "550 5.1.1") {
			t.Fatalf("unknown %d: %q", i, got)
		}
	}
	if took := time.Since(start); took < 3*time.Second {
		t.Errorf("three unknown recipients took %v: not slowed (1 s + 2 s)", took)
	}
	if got := s.reply("RCPT TO:<nobodyz@johndoe.com>"); !strings.HasPrefix(got, "421 4.7.0") {
		t.Errorf("fourth unknown: %q", got)
	}
	if rest, _ := s.rest(); rest != "" {
		t.Errorf("after 421: %q", rest)
	}
	if slowed.Load() != 2 || closed.Load() != 1 {
		t.Errorf("counted slowed %d, disconnected %d; want 2, 1", slowed.Load(), closed.Load())
	}
}
