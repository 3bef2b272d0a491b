package smtpd_test

import (
	"strings"
	"testing"
	"time"

	"mailsetup/server/smtpd"
)

// ehlo sends EHLO and returns the whole reply.
func (s *rawSMTP) ehlo() string {
	s.t.Helper()
	if _, err := s.c.Write([]byte("EHLO client.example\r\n")); err != nil {
		s.t.Fatal(err)
	}
	var all []string
	for {
		l := s.line()
		all = append(all, l)
		if len(l) < 4 || l[3] != '-' {
			return strings.Join(all, "\n")
		}
	}
}

// TestSetLimits: a session open when the limits change keeps its
// message size, command timeout and harvest limit; the next connection
// gets the new ones (swaks: SIZE and 552; a silent client is closed
// after the new timeout; 421 at the new harvest limit).
func TestSetLimits(t *testing.T) {
	r := start(t) // 64 KiB, 5 minutes
	old := dialSMTP(t, r.inbound)
	if e := old.ehlo(); !strings.Contains(e, "250-SIZE 65536") {
		t.Fatalf("EHLO before: %s", e)
	}
	for _, s := range r.servers {
		s.SetLimits(smtpd.Limits{MaxMessageBytes: 2048, ReadTimeout: time.Second, UnknownRecipientsSlow: 1, UnknownRecipientsMax: 1})
	}
	body := strings.Repeat(strings.Repeat("x", 70)+"\n", 60) // about 4 KiB

	// The open session: the old size, no idle timeout after 1.5 s, the
	// old harvest limit (two unknown recipients answered 550, not 421).
	time.Sleep(1500 * time.Millisecond)
	if e := old.ehlo(); !strings.Contains(e, "250-SIZE 65536") {
		t.Fatalf("EHLO of the open session after SetLimits: %s", e)
	}
	old.reply("MAIL FROM:<someone@elsewhere.example>")
	for _, rcpt := range []string{"nobody1@johndoe.com", "nobody2@johndoe.com"} {
		if got := old.reply("RCPT TO:<" + rcpt + ">"); !strings.HasPrefix(got, "550") {
			t.Fatalf("open session, unknown %s: %s", rcpt, got)
		}
	}
	if got := old.reply("RCPT TO:<info@johndoe.com>"); !strings.HasPrefix(got, "250") {
		t.Fatalf("open session RCPT: %s", got)
	}
	old.reply("DATA")
	if got := old.reply("Subject: before\r\n\r\n" + strings.ReplaceAll(body, "\n", "\r\n") + "."); !strings.HasPrefix(got, "250") {
		t.Fatalf("open session, a 4 KiB message under its 64 KiB: %s", got)
	}

	// New connections: the new size with swaks, the new timeout.
	out := swaks(t, r.inbound, "--from", "someone@elsewhere.example", "--to", "info@johndoe.com", "--body", body)
	expect(t, out, "250-SIZE 2048", "552 5.3.4")
	silent := dialSMTP(t, r.inbound)
	start := time.Now()
	_, _ = silent.rest()
	if took := time.Since(start); took < 900*time.Millisecond || took > 4*time.Second {
		t.Errorf("a silent new connection was closed after %s, want the new 1 s", took)
	}
	harvest := dialSMTP(t, r.inbound)
	harvest.ehlo()
	harvest.reply("MAIL FROM:<someone@elsewhere.example>")
	harvest.reply("RCPT TO:<nobody1@johndoe.com>")
	if got := harvest.reply("RCPT TO:<nobody2@johndoe.com>"); !strings.HasPrefix(got, "421") {
		t.Errorf("new connection, second unknown recipient over the new max 1: %s", got)
	}
}
