package observe_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"mailsetup/finding"
	"mailsetup/server/events"
	"mailsetup/server/observe"
)

func TestBareLocalPart(t *testing.T) {
	clk := newClock(t0)
	s := open(t, observe.Options{Now: clk.Now})
	// 17 on earlier days, 14 today, as mpop --configure would.
	for i := range 17 {
		s.Record(bareLocalPart(t0.Add(-time.Duration(1+i%5)*24*time.Hour), "pop3", "203.0.113.7", "john"))
	}
	for i := range 14 {
		s.Record(bareLocalPart(t0.Add(-time.Duration(i)*time.Minute), "pop3", "203.0.113.7", "john"))
	}
	a := mustAccount(t, s, "John@JohnDoe.com")
	if a.Address != "john@johndoe.com" {
		t.Errorf("Address = %q", a.Address)
	}
	fs := findings(a, "username.not-full-address")
	if len(fs) != 1 {
		t.Fatalf("username.not-full-address findings: %d, want 1; all: %v", len(fs), ids(a))
	}
	f := fs[0]
	if !hasLine(f.Evidence, "seen 14 times today (31 in 30 days)", "over pop3 from 203.0.113.7", `as "john"`, "the bare local part", "last 2026-11-28 10:42 UTC") {
		t.Errorf("evidence does not give the counts, protocol, address, username and time:\n%s", strings.Join(f.Evidence, "\n"))
	}
	if !strings.Contains(f.Fix, "john@johndoe.com") || !strings.Contains(f.Fix, `instead of "john"`) || !strings.Contains(f.Fix, `incoming server's "Username"`) {
		t.Errorf("fix = %q", f.Fix)
	}
	if len(a.Failures) != 1 || !a.Failures[0].ByLocalPart || a.Failures[0].Count != 31 || a.Failures[0].Today != 14 {
		t.Errorf("failures = %+v", a.Failures)
	}
	// Every domain's john sees it; another local part does not.
	if _, ok := s.Account("john@other.example"); !ok {
		t.Error("john@other.example: the bare local part is not shown")
	}
	if _, ok := s.Account("jane@johndoe.com"); ok {
		t.Error("jane@johndoe.com: something seen")
	}
}

// TestDomainTypo: a username at a domain not served here
// ("john@johndoe.cmo") is kept under its local part, like a bare local
// part, and says so.
func TestDomainTypo(t *testing.T) {
	s := open(t, observe.Options{Now: newClock(t0).Now})
	s.Record(events.Event{Time: t0, Kind: events.Auth, Proto: "imap", Remote: ip("203.0.113.8"), TLS: true,
		Username: "john@johndoe.cmo", Form: "unknown-domain", Result: "username-form"})
	a := mustAccount(t, s, "john@johndoe.com")
	fs := findings(a, "username.not-full-address")
	if len(fs) != 1 {
		t.Fatalf("findings: %v", ids(a))
	}
	if !hasLine(fs[0].Evidence, `as "john@johndoe.cmo"`, "a domain this server does not host", "the domain is not served here, so this may be another domain's john") {
		t.Errorf("evidence:\n%s", strings.Join(fs[0].Evidence, "\n"))
	}
	if !strings.Contains(fs[0].Fix, `instead of "john@johndoe.cmo"`) {
		t.Errorf("fix = %q", fs[0].Fix)
	}
	if _, ok := s.Account("jane@johndoe.com"); ok {
		t.Error("jane@johndoe.com: something seen")
	}
}

func TestWrongSeparatorAndSubmission(t *testing.T) {
	s := open(t, observe.Options{Now: newClock(t0).Now})
	e := events.Event{Time: t0, Kind: events.Auth, Proto: "submission", Remote: ip("2001:db8::5"), TLS: true,
		Account: "john@johndoe.com", Username: "john/johndoe.com", Form: "wrong-separator", Result: "username-form"}
	s.Record(e)
	e.Username, e.Proto = "john%johndoe.com", "imap"
	s.Record(e)
	a := mustAccount(t, s, "john@johndoe.com")
	fs := findings(a, "username.not-full-address")
	if len(fs) != 2 {
		t.Fatalf("want one finding per username typed, got %d", len(fs))
	}
	var sawOut bool
	for _, f := range fs {
		if strings.Contains(f.Fix, `"john/johndoe.com"`) {
			sawOut = strings.Contains(f.Fix, "outgoing server")
		}
		if hasLine(f.Evidence, "the bare local part") {
			t.Errorf("form misnamed: %q", f.Evidence)
		}
	}
	if !sawOut {
		t.Errorf("the submission username is not named as the outgoing server's: %+v", fs)
	}
}

func TestLeaveForever(t *testing.T) {
	policy := map[string]int{"johndoe.com": 2, "download.example": 0}
	s := open(t, observe.Options{Now: newClock(t0).Now, DeleteAfterDays: func(d string) int { return policy[d] }})
	for i := range 5 {
		at := t0.Add(-time.Duration(5-i) * time.Hour)
		// fetchmail --keep: retrieves the new mail, deletes nothing.
		s.Record(pop3Session(at, "203.0.113.7", "john@johndoe.com", 3, 0, 0))
		// Another client that deletes after a while.
		s.Record(pop3Session(at, "198.51.100.9", "jane@johndoe.com", 3, 0, 0))
		// The same on a domain that does not leave mail at all.
		s.Record(pop3Session(at, "203.0.113.7", "joe@download.example", 3, 0, 0))
	}
	s.Record(pop3Session(t0, "198.51.100.9", "jane@johndoe.com", 1, 0, 2))

	a := mustAccount(t, s, "john@johndoe.com")
	fs := findings(a, "pop3.leave-forever")
	if len(fs) != 1 {
		t.Fatalf("john: findings %v, want pop3.leave-forever", ids(a))
	}
	if !strings.Contains(fs[0].Fix, "after 2 days") {
		t.Errorf("fix does not use the policy's days: %q", fs[0].Fix)
	}
	if !hasLine(fs[0].Evidence, "203.0.113.7", "5 sessions", "15 messages retrieved, none deleted", "3400 messages", "1.2 GB", "190 days old") {
		t.Errorf("evidence:\n%s", strings.Join(fs[0].Evidence, "\n"))
	}
	if a.Mailbox == nil || a.Mailbox.Messages != 3400 || a.Mailbox.Oldest.IsZero() {
		t.Errorf("mailbox = %+v", a.Mailbox)
	}
	if c := a.POP3[0]; c.Sessions != 5 || c.LeftAll != 5 || c.DeletingSessions != 0 || c.Retrieved != 15 {
		t.Errorf("pop3 client = %+v", c)
	}

	if a := mustAccount(t, s, "jane@johndoe.com"); len(findings(a, "pop3.leave-forever")) != 0 {
		t.Errorf("jane's client deletes, yet: %v", ids(a))
	}
	a = mustAccount(t, s, "joe@download.example")
	if len(findings(a, "pop3.leave-forever")) != 0 || len(findings(a, "pop3.leave-against-policy")) != 1 {
		t.Errorf("joe (policy: download and delete): %v, want pop3.leave-against-policy", ids(a))
	}

	// Without a policy function the server's default is advised.
	s2 := open(t, observe.Options{Now: newClock(t0).Now})
	s2.Record(pop3Session(t0, "203.0.113.7", "john@johndoe.com", 3, 0, 0))
	if fs := findings(mustAccount(t, s2, "john@johndoe.com"), "pop3.leave-forever"); len(fs) != 1 || !strings.Contains(fs[0].Fix, "after 7 days") {
		t.Errorf("no policy: %+v", fs)
	}
}

func TestRedownload(t *testing.T) {
	s := open(t, observe.Options{Now: newClock(t0).Now})
	s.Record(pop3Session(t0.Add(-2*time.Hour), "192.0.2.1", "john@johndoe.com", 50, 50, 0))
	s.Record(pop3Session(t0.Add(-1*time.Hour), "192.0.2.1", "john@johndoe.com", 2, 0, 0))
	s.Record(pop3Session(t0, "192.0.2.1", "john@johndoe.com", 52, 50, 0))
	a := mustAccount(t, s, "john@johndoe.com")
	fs := findings(a, "pop3.redownload")
	if len(fs) != 1 {
		t.Fatalf("findings %v, want pop3.redownload", ids(a))
	}
	if !hasLine(fs[0].Evidence, "192.0.2.1", "100 messages downloaded again in 2 of 3 sessions") {
		t.Errorf("evidence:\n%s", strings.Join(fs[0].Evidence, "\n"))
	}
	if !strings.Contains(fs[0].Staff, "100 messages in 2 sessions from 192.0.2.1") {
		t.Errorf("staff = %q", fs[0].Staff)
	}
	// A client that never re-downloads gives none.
	s.Record(pop3Session(t0, "192.0.2.2", "jane@johndoe.com", 2, 0, 2))
	if a := mustAccount(t, s, "jane@johndoe.com"); len(a.Findings) != 0 {
		t.Errorf("jane: %v", ids(a))
	}
}

func TestRefusals(t *testing.T) {
	s := open(t, observe.Options{Now: newClock(t0).Now})
	for i := range 3 {
		s.Record(noAuth(t0.Add(-time.Duration(i)*time.Minute), "203.0.113.7", "john@johndoe.com", "john@johndoe.com"))
	}
	s.Record(events.Event{Time: t0, Kind: events.SubmissionRefused, Proto: "submission", Remote: ip("203.0.113.7"), TLS: true,
		Account: "john@johndoe.com", Result: "forged-sender", Detail: "MAIL FROM:<boss@elsewhere.example>", Client: "laptop.home"})
	a := mustAccount(t, s, "john@johndoe.com")
	fs := findings(a, "smtp.auth-disabled")
	if len(fs) != 1 {
		t.Fatalf("findings %v, want smtp.auth-disabled", ids(a))
	}
	if !hasLine(fs[0].Evidence, "refused 3 times today", "over submission from 203.0.113.7", `client "laptop.home"`, "MAIL FROM:<john@johndoe.com> without AUTH") {
		t.Errorf("evidence:\n%s", strings.Join(fs[0].Evidence, "\n"))
	}
	if !strings.Contains(fs[0].Fix, "john@johndoe.com") {
		t.Errorf("fix = %q", fs[0].Fix)
	}
	fs = findings(a, "smtp.forged-sender")
	if len(fs) != 1 || !strings.Contains(fs[0].Staff, "refused sender boss@elsewhere.example") {
		t.Errorf("forged sender: %+v", fs)
	}
	if len(a.Refusals) != 2 || a.Refusals[0].Count+a.Refusals[1].Count != 4 {
		t.Errorf("refusals = %+v", a.Refusals)
	}
}

func TestLoginFailed(t *testing.T) {
	s := open(t, observe.Options{Now: newClock(t0).Now})
	const john = "john@johndoe.com"
	// Fixed: a wrong password, then a successful login from the same
	// address.
	s.Record(badPassword(t0.Add(-time.Hour), "imap", "192.0.2.1", john))
	s.Record(login(t0.Add(-time.Hour+time.Minute), "imap", "192.0.2.1", john))
	a := mustAccount(t, s, john)
	if fs := findings(a, "login.failed"); len(fs) != 0 {
		t.Errorf("wrong password fixed since, yet: %+v", fs)
	}
	// Not fixed: the phone keeps the old password.
	s.Record(login(t0.Add(-2*time.Hour), "pop3", "198.51.100.4", john))
	s.Record(badPassword(t0, "pop3", "198.51.100.4", john))
	s.Record(badPassword(t0, "pop3", "198.51.100.4", john))
	a = mustAccount(t, s, john)
	fs := findings(a, "login.failed")
	if len(fs) != 1 {
		t.Fatalf("findings %v, want login.failed", ids(a))
	}
	if !hasLine(fs[0].Evidence, "refused 2 times today", "over pop3 from 198.51.100.4", "last successful login from there 2026-11-28 08:42 UTC") ||
		hasLine(fs[0].Evidence, "192.0.2.1") {
		t.Errorf("evidence:\n%s", strings.Join(fs[0].Evidence, "\n"))
	}
	if !strings.Contains(fs[0].Staff, "wrong password 2 times in 30 days from 198.51.100.4") {
		t.Errorf("staff = %q", fs[0].Staff)
	}
	// A successful login over another protocol does not clear it.
	s.Record(login(t0, "imap", "198.51.100.4", john))
	if fs := findings(mustAccount(t, s, john), "login.failed"); len(fs) != 1 {
		t.Errorf("imap login cleared a pop3 failure: %v", fs)
	}
}

func TestThrottledAndStale(t *testing.T) {
	clk := newClock(t0)
	s := open(t, observe.Options{Now: clk.Now})
	const john = "john@johndoe.com"
	e := badPassword(t0, "imap", "192.0.2.1", john)
	e.Result = "throttled"
	s.Record(e)
	s.Record(noAuth(t0, "192.0.2.1", john, john))
	a := mustAccount(t, s, john)
	if len(findings(a, "login.throttled")) != 1 || len(findings(a, "login.failed")) != 0 {
		t.Fatalf("findings %v, want login.throttled", ids(a))
	}
	if !slices.IsSortedFunc(a.Findings, func(x, y finding.Finding) int { return int(y.Severity) - int(x.Severity) }) {
		t.Errorf("findings not worst first: %v", ids(a))
	}
	clk.Add(25 * time.Hour)
	a = mustAccount(t, s, john)
	if len(findings(a, "login.throttled")) != 0 || len(findings(a, "smtp.auth-disabled")) != 1 {
		t.Errorf("after 25 hours: %v, want only smtp.auth-disabled", ids(a))
	}
	// After 7 days a finding is no longer current; the groups stay.
	clk.Add(7 * 24 * time.Hour)
	a = mustAccount(t, s, john)
	if len(a.Findings) != 0 || len(a.Refusals) != 1 || len(a.Failures) != 1 {
		t.Errorf("after 8 days: findings %v, refusals %d, failures %d", ids(a), len(a.Refusals), len(a.Failures))
	}
}

func TestClientNamesAndDeliveries(t *testing.T) {
	s := open(t, observe.Options{Now: newClock(t0).Now})
	const john = "john@johndoe.com"
	s.Record(login(t0, "imap", "192.0.2.1", john))
	s.Record(events.Event{Time: t0, Kind: events.ClientID, Proto: "imap", Remote: ip("192.0.2.1"), Account: john, Client: "Thunderbird 140.3"})
	s.Record(login(t0, "submission", "192.0.2.1", john))
	// smtpd's delivery events: Account is the sender's login, the
	// recipient is in Detail.
	s.Record(events.Event{Time: t0, Kind: events.Delivery, Proto: "submission", Remote: ip("192.0.2.1"), Account: john,
		Result: "ok", Detail: "local jane@johndoe.com", Client: "laptop.home"})
	s.Record(events.Event{Time: t0, Kind: events.Delivery, Proto: "smtp", Remote: ip("192.0.2.99"),
		Result: "ok", Detail: "local john@johndoe.com", Client: "mx.example"})
	s.Record(events.Event{Time: t0, Kind: events.Delivery, Proto: "submission", Remote: ip("192.0.2.1"), Account: john,
		Result: "ok", Detail: "queued for 2 remote recipient(s)", Client: "laptop.home"})
	a := mustAccount(t, s, john)
	clients := map[events.Proto]string{}
	for _, l := range a.Logins {
		clients[l.Protocol] = l.Client
	}
	if clients["imap"] != "Thunderbird 140.3" || clients["submission"] != "laptop.home" {
		t.Errorf("client names = %v", clients)
	}
	if a.Deliveries != 1 || a.DeliveriesToday != 1 || !a.LastDelivery.Equal(t0) {
		t.Errorf("john's deliveries = %d, today %d, last %v", a.Deliveries, a.DeliveriesToday, a.LastDelivery)
	}
	if a := mustAccount(t, s, "jane@johndoe.com"); a.Deliveries != 1 {
		t.Errorf("jane's deliveries = %d", a.Deliveries)
	}
	// Events without an account, of an unknown kind, or about nothing
	// held are ignored.
	before := s.Stats()
	s.Record(events.Event{Time: t0, Kind: events.Auth, Proto: "imap", Username: "", Form: "malformed", Result: "username-form"})
	s.Record(events.Event{Time: t0, Kind: "something-new", Account: john})
	s.Record(events.Event{Time: t0, Kind: events.Delivery, Proto: "smtp", Remote: ip("192.0.2.99"), Result: "ok", Detail: "queued for 1 remote recipient(s)"})
	s.Record(events.Event{Time: t0, Kind: events.ClientID, Proto: "imap", Remote: ip("192.0.2.50"), Account: john, Client: "no login from there"})
	if st := s.Stats(); st.Ignored != before.Ignored+4 || st.Recorded != before.Recorded {
		t.Errorf("stats %+v after %+v", st, before)
	}
	if before.Ignored != 0 {
		t.Errorf("ignored %d before", before.Ignored)
	}
}

// TestFailureNamesTheClient: the client's name at the last failed
// attempt (IMAP ID, EHLO) tells support which device is failing.
func TestFailureNamesTheClient(t *testing.T) {
	s := open(t, observe.Options{Now: newClock(t0).Now})
	e := badPassword(t0, "imap", "192.0.2.1", "john@johndoe.com")
	e.Client = "iPhone Mail 18.1"
	s.Record(e)
	a := mustAccount(t, s, "john@johndoe.com")
	if len(a.Failures) != 1 || a.Failures[0].Client != "iPhone Mail 18.1" {
		t.Fatalf("failures %+v", a.Failures)
	}
	fs := findings(a, "login.failed")
	if len(fs) != 1 || !hasLine(fs[0].Evidence, `(client "iPhone Mail 18.1")`) {
		t.Errorf("login.failed evidence does not name the client: %+v", fs)
	}
}

// With server-side expiry, leaving mail on the server is a warning.
func TestLeaveForeverWithExpiry(t *testing.T) {
	s := open(t, observe.Options{Now: newClock(t0).Now, DeleteAfterDays: func(string) int { return 2 }, ExpireDays: func(string) int { return 30 }})
	s.Record(pop3Session(t0, "192.0.2.1", "john@johndoe.com", 5, 0, 0))
	fs := findings(mustAccount(t, s, "john@johndoe.com"), "pop3.leave-forever")
	if len(fs) != 1 || fs[0].Severity != finding.Warning || !hasLine(fs[0].Evidence, "CAPA EXPIRE 30") {
		t.Errorf("findings %+v", fs)
	}
}
