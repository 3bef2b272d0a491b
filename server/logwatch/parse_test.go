package logwatch

import (
	"bufio"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"mailsetup/server/events"
)

var testNow = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

func testParser(kind Kind) *Parser {
	return NewParser(kind, ParserOptions{
		IsLocal:  func(d string) bool { return d == "example.test" },
		Now:      func() time.Time { return testNow },
		Location: time.UTC,
	})
}

// parseFile parses a recorded log of the real daemons (testdata/*.log,
// written by Debian's Dovecot 2.3 and Postfix 3.7 driven by curl, swaks,
// mpop and openssl) and returns the events.
func parseFile(t *testing.T, kind Kind, name string) ([]events.Event, map[Result]int) {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := testParser(kind)
	var out []events.Event
	counts := map[Result]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		ev, r := p.Line(sc.Text())
		counts[r]++
		if r == ResultEvent {
			out = append(out, ev)
		}
	}
	return out, counts
}

func TestRecordedDovecot(t *testing.T) {
	evs, counts := parseFile(t, Dovecot, "testdata/dovecot.log")
	if counts[ResultUnknown] != 0 || counts[ResultBadTime] != 0 {
		t.Errorf("counts %v: every line of the real Dovecot should be known", counts)
	}
	lo := netip.MustParseAddr("127.0.0.1")
	want := []events.Event{
		{Kind: events.Auth, Proto: events.ProtoPOP3, Remote: lo, Account: "user1@example.test", Username: "user1@example.test", Form: events.FormFull, Result: events.ResultOK},
		{Kind: events.POP3Session, Proto: events.ProtoPOP3, Remote: lo, Account: "user1@example.test", Username: "user1@example.test", Result: events.ResultOK,
			Retrieved: 1, Messages: 3, Bytes: 69, LeftAll: true},
		{Kind: events.Auth, Proto: events.ProtoPOP3, Remote: lo, Username: "user1", Form: events.FormLocalPart, Result: events.ResultUsernameForm},
		{Kind: events.Auth, Proto: events.ProtoPOP3, Remote: lo, Username: "user1/example.test", Account: "user1@example.test", Form: events.FormSeparator, Result: events.ResultUsernameForm},
		{Kind: events.Auth, Proto: events.ProtoPOP3, Remote: lo, Username: "user1@example.test", Account: "user1@example.test", Form: events.FormFull, Result: events.ResultBadPassword, Detail: "password mismatch"},
		{Kind: events.Auth, Proto: events.ProtoIMAP, Remote: lo, Username: "nobody@example.test", Account: "nobody@example.test", Form: events.FormFull, Result: events.ResultBadPassword, Detail: "unknown user"},
		{Kind: events.Auth, Proto: events.ProtoIMAP, Remote: lo, TLS: true, Username: "user2@example.test", Account: "user2@example.test", Form: events.FormFull, Result: events.ResultOK},
		{Kind: events.Auth, Proto: events.ProtoPOP3, Remote: lo, Account: "user1@example.test", Username: "user1@example.test", Form: events.FormFull, Result: events.ResultOK},
		{Kind: events.POP3Session, Proto: events.ProtoPOP3, Remote: lo, Account: "user1@example.test", Username: "user1@example.test", Result: events.ResultOK,
			Retrieved: 5, Messages: 5, Bytes: 115, LeftAll: true},
		{Kind: events.Auth, Proto: events.ProtoIMAP, Remote: lo, TLS: true, Username: "user2@example.test", Account: "user2@example.test", Form: events.FormFull, Result: events.ResultOK, Client: "Thunderbird 115.0"},
		{Kind: events.ClientID, Proto: events.ProtoIMAP, Remote: lo, TLS: true, Account: "user2@example.test", Client: "Thunderbird 115.0"},
		{Kind: events.Auth, Proto: events.ProtoIMAP, Remote: lo, TLS: true, Username: "user2", Form: events.FormLocalPart, Result: events.ResultUsernameForm},
		{Kind: events.Auth, Proto: events.ProtoPOP3, Remote: lo, TLS: true, Account: "user1@example.test", Username: "user1@example.test", Form: events.FormFull, Result: events.ResultOK},
		{Kind: events.POP3Session, Proto: events.ProtoPOP3, Remote: lo, TLS: true, Account: "user1@example.test", Username: "user1@example.test", Result: events.ResultOK,
			Messages: 5, Bytes: 115},
		// pop3_logout_format's %u stays empty on Dovecot 2.3; %{uidl_change}:
		{Kind: events.Auth, Proto: events.ProtoPOP3, Remote: lo, TLS: true, Account: "user1@example.test", Username: "user1@example.test", Form: events.FormFull, Result: events.ResultOK},
		{Kind: events.POP3Session, Proto: events.ProtoPOP3, Remote: lo, TLS: true, Account: "user1@example.test", Username: "user1@example.test", Result: events.ResultOK,
			Messages: 5, Bytes: 115, UIDLsBefore: "5/bc2b96e5", UIDLsAfter: "5/bc2b96e5"},
	}
	compareEvents(t, evs, want)
}

func TestRecordedPostfix(t *testing.T) {
	evs, counts := parseFile(t, Postfix, "testdata/postfix.log")
	if counts[ResultUnknown] != 0 || counts[ResultBadTime] != 0 {
		t.Errorf("counts %v: every line of the real Postfix should be known", counts)
	}
	lo := netip.MustParseAddr("127.0.0.1")
	want := []events.Event{
		{Kind: events.SubmissionRefused, Proto: events.ProtoSubmission, Remote: lo, Account: "user1@example.test", Result: events.ResultAuthRequired,
			Detail: "MAIL FROM:<user1@example.test> without AUTH", Client: "vm"},
		{Kind: events.SubmissionRefused, Proto: events.ProtoSubmission, Remote: lo, Account: "user1@example.test", Result: events.ResultAuthRequired,
			Detail: "MAIL FROM:<user1@example.test> without AUTH", Client: "vm"},
		{Kind: events.Auth, Proto: events.ProtoSubmission, Remote: lo, Username: "user1@example.test", Account: "user1@example.test", Form: events.FormFull, Result: events.ResultBadPassword},
		{Kind: events.Auth, Proto: events.ProtoSubmission, Remote: lo, TLS: true, Username: "user1@example.test", Account: "user1@example.test", Form: events.FormFull, Result: events.ResultOK},
		{Kind: events.Auth, Proto: events.ProtoSubmission, Remote: lo, Username: "user1", Form: events.FormLocalPart, Result: events.ResultUsernameForm},
	}
	compareEvents(t, evs, want)
}

func compareEvents(t *testing.T, got, want []events.Event) {
	t.Helper()
	for i := range max(len(got), len(want)) {
		var g, w events.Event
		if i < len(got) {
			g = got[i]
			g.Time = time.Time{}
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			t.Errorf("event %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
}

func TestLineForms(t *testing.T) {
	for _, c := range []struct {
		kind Kind
		line string
		want Result
		ev   events.Event
	}{
		// Syslog's form of Dovecot's lines: host and tag, no level.
		{Dovecot, "Dec  7 00:47:36 mail dovecot: pop3-login: Login: user=<u@example.test>, method=PLAIN, rip=192.0.2.7, lip=192.0.2.1, mpid=1, TLS, session=<a>",
			ResultEvent, events.Event{Kind: events.Auth, Proto: events.ProtoPOP3, Remote: netip.MustParseAddr("192.0.2.7"), TLS: true,
				Username: "u@example.test", Account: "u@example.test", Form: events.FormFull, Result: events.ResultOK}},
		{Dovecot, "2026-12-07T00:47:36.123456+00:00 mail dovecot[99]: imap-login: Aborted login (auth failed, 1 attempts in 2 secs): user=<john>, method=PLAIN, rip=2001:db8::7, lip=2001:db8::1, TLS, session=<b>",
			ResultEvent, events.Event{Kind: events.Auth, Proto: events.ProtoIMAP, Remote: netip.MustParseAddr("2001:db8::7"), TLS: true,
				Username: "john", Form: events.FormLocalPart, Result: events.ResultUsernameForm}},
		{Dovecot, "2026-12-07 00:47:36 pop3-login: Info: Disconnected (auth failed, 3 attempts in 8 secs): user=<john@elsewhere.example>, method=PLAIN, rip=192.0.2.7, lip=192.0.2.1, session=<c>",
			ResultEvent, events.Event{Kind: events.Auth, Proto: events.ProtoPOP3, Remote: netip.MustParseAddr("192.0.2.7"),
				Username: "john@elsewhere.example", Form: events.FormUnknownDomain, Result: events.ResultUsernameForm}},
		{Postfix, "Dec  7 00:48:29 mail postfix/smtpd[8194]: NOQUEUE: reject: RCPT from unknown[192.0.2.9]: 454 4.7.1 <a@elsewhere.example>: Relay access denied; from=<u@example.test> to=<a@elsewhere.example> proto=ESMTP helo=<pc>",
			ResultEvent, events.Event{Kind: events.SubmissionRefused, Proto: events.ProtoSMTP, Remote: netip.MustParseAddr("192.0.2.9"),
				Account: "u@example.test", Result: events.ResultAuthRequired, Detail: "MAIL FROM:<u@example.test> without AUTH", Client: "pc"}},
		{Postfix, "Dec  7 00:48:29 mail postfix/smtpd[8194]: NOQUEUE: reject: RCPT from unknown[192.0.2.9]: 454 4.7.1 <a@elsewhere.example>: Relay access denied; from=<spam@elsewhere.example> to=<a@elsewhere.example> proto=ESMTP helo=<pc>",
			ResultEvent, events.Event{Kind: events.SubmissionRefused, Proto: events.ProtoSMTP, Remote: netip.MustParseAddr("192.0.2.9"),
				Result: events.ResultRelay, Detail: "RCPT TO:<a@elsewhere.example> from MAIL FROM:<spam@elsewhere.example>", Client: "pc"}},
		{Postfix, "Dec  7 00:48:29 mail postfix/submission/smtpd[8194]: NOQUEUE: reject: RCPT from unknown[192.0.2.9]: 553 5.7.1 <boss@example.test>: Sender address rejected: not owned by user u@example.test; from=<boss@example.test> to=<a@elsewhere.example> proto=ESMTP helo=<pc>",
			ResultEvent, events.Event{Kind: events.SubmissionRefused, Proto: events.ProtoSubmission, Remote: netip.MustParseAddr("192.0.2.9"),
				Account: "u@example.test", Result: events.ResultForgedSender, Detail: "MAIL FROM:<boss@example.test>", Client: "pc"}},
		{Postfix, "Dec  7 00:48:29 mail postfix/submission/smtpd[8194]: NOQUEUE: reject: RCPT from unknown[192.0.2.9]: 553 5.7.1 <u@example.test>: Sender address rejected: not logged in; from=<u@example.test> to=<a@elsewhere.example> proto=ESMTP helo=<pc>",
			ResultEvent, events.Event{Kind: events.SubmissionRefused, Proto: events.ProtoSubmission, Remote: netip.MustParseAddr("192.0.2.9"),
				Account: "u@example.test", Result: events.ResultAuthRequired, Detail: "MAIL FROM:<u@example.test> without AUTH", Client: "pc"}},
		{Postfix, "Dec  7 00:48:29 mail postfix/qmgr[1]: 640FA98607A: removed", ResultIgnored, events.Event{}},
		{Dovecot, "Dec  7 00:48:29 mail kernel: something else", ResultOther, events.Event{}},
		{Dovecot, "Dec  7 00:48:29 no colon here", ResultUnknown, events.Event{}},
		{Postfix, "Dec  7 00:48:29 no colon here", ResultUnknown, events.Event{}},
		{Dovecot, "Dec  7 00:48:29 pop3-login: Info: Frobnicated: x", ResultIgnored, events.Event{}},
		{Dovecot, "Dec  7 00:48:29 mail postfix/qmgr[1]: 640FA98607A: removed", ResultOther, events.Event{}},
		{Postfix, "Dec  7 00:48:29 mail dovecot: imap-login: Login: user=<u@example.test>", ResultOther, events.Event{}},
		{Postfix, "Dec  7 00:48:29 mail cron[12]: hello", ResultOther, events.Event{}},
		{Dovecot, "garbage", ResultBadTime, events.Event{}},
		{Dovecot, "2026-12-09T00:48:29Z pop3-login: Login: user=<u@example.test>, rip=192.0.2.7", ResultBadTime, events.Event{}},
		{Dovecot, "Dec  7 00:48:29 pop3-login: Login: \x00", ResultBinary, events.Event{}},
		{Dovecot, "Dec  7 00:48:29 pop3-login: Login: \xff\xfe", ResultBinary, events.Event{}},
		{Dovecot, "Dec  7 00:48:29 pop3-login: Login: " + strings.Repeat("x", MaxLine), ResultTooLong, events.Event{}},
		{Dovecot, "Dec  7 00:48:29 pop3-login: Login: user=<u@example.test>, method=PL", ResultUnknown, events.Event{}},
		{Dovecot, "Dec  7 00:48:29 pop3(u@example.test)<1><s>: Info: Disconnected: Logged out top=0/0, retr=2/20, del=2/4, size=9, uidl_hash=0/00000000 -> 2/0a0b0c0d",
			ResultEvent, events.Event{Kind: events.POP3Session, Proto: events.ProtoPOP3, Account: "u@example.test", Username: "u@example.test",
				Result: events.ResultOK, Retrieved: 2, Deleted: 2, Messages: 4, Bytes: 9, UIDLsBefore: "0/00000000", UIDLsAfter: "2/0a0b0c0d"}},
	} {
		ev, r := testParser(c.kind).Line(c.line)
		ev.Time = time.Time{}
		if r != c.want || ev != c.ev {
			t.Errorf("%.120q:\n got %s %+v\nwant %s %+v", c.line, r, ev, c.want, c.ev)
		}
	}
}

func TestTOPDownloads(t *testing.T) {
	for line, want := range map[string]int{
		// fetchmail: TOP n 99999999 of 5 messages of 90 bytes each.
		"Dec  7 00:48:29 pop3(u@example.test)<1><s>: Info: Disconnected: Logged out top=5/460, retr=0/0, del=0/5, size=450, uidl_hash=5/0a0b0c0d": 5,
		// Header previews only.
		"Dec  7 00:48:29 pop3(u@example.test)<1><s>: Info: Disconnected: Logged out top=5/100, retr=1/90, del=0/5, size=450, uidl_hash=5/0a0b0c0d": 1,
	} {
		ev, r := testParser(Dovecot).Line(line)
		if r != ResultEvent || ev.Retrieved != want || !ev.LeftAll {
			t.Errorf("%s: %s retrieved %d, want %d", line, r, ev.Retrieved, want)
		}
	}
}

func TestYearOfDecemberInJanuary(t *testing.T) {
	p := NewParser(Dovecot, ParserOptions{Now: func() time.Time { return time.Date(2027, 1, 1, 0, 10, 0, 0, time.UTC) }, Location: time.UTC})
	ev, r := p.Line("Dec 31 23:59:00 pop3-login: Login: user=<u@example.test>, method=PLAIN, rip=192.0.2.7, lip=192.0.2.1, session=<a>")
	if r != ResultEvent || ev.Time.Year() != 2026 {
		t.Fatalf("%s %v", r, ev.Time)
	}
}

func TestSessionsBounded(t *testing.T) {
	s := newSessions(4)
	for i := range 100 {
		s.put(strings.Repeat("k", i+1), session{client: "c"})
	}
	if len(s.m) != 4 {
		t.Fatalf("%d sessions kept, want 4", len(s.m))
	}
}

func TestForwardedLine(t *testing.T) {
	// logger --rfc3164 --socket: no host, its tag, then the file's line.
	ev, r := testParser(Postfix).Line("Dec  7 01:00:00 vm postfix: Dec 07 00:59:58 mail postfix/submission/smtpd[8194]: warning: localhost[127.0.0.1]: SASL PLAIN authentication failed: (reason unavailable), sasl_username=user1")
	if r != ResultEvent || ev.Username != "user1" || ev.Proto != events.ProtoSubmission || ev.Time.Second() != 58 {
		t.Fatalf("%s %+v", r, ev)
	}
}

func TestAttempts(t *testing.T) {
	p := testParser(Dovecot)
	for line, want := range map[string]int{
		"Dec  7 00:47:36 imap-login: Disconnected (auth failed, 3 attempts in 8 secs): user=<u@example.test>, method=PLAIN, rip=192.0.2.7, lip=192.0.2.1, session=<a>":   3,
		"Dec  7 00:47:36 imap-login: Disconnected (auth failed, 999 attempts in 8 secs): user=<u@example.test>, method=PLAIN, rip=192.0.2.7, lip=192.0.2.1, session=<b>": maxTimes,
		"Dec  7 00:47:36 imap-login: Login: user=<u@example.test>, method=PLAIN, rip=192.0.2.7, lip=192.0.2.1, session=<c>":                                              1,
	} {
		if _, r := p.Line(line); r != ResultEvent || p.Times() != want {
			t.Errorf("%s: %s, %d times, want %d", line, r, p.Times(), want)
		}
	}
}
