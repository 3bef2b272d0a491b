package console_test

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"mailsetup/internal/testkit"
	"mailsetup/server/events"
	"mailsetup/server/observe"
)

// fillAccount gives an account 30 days of observations with every group
// kind at its cap (32 login, 64 failure, 32 refusal, 16 POP3 groups).
func fillAccount(s *observe.Store, address string, now time.Time) {
	long := strings.Repeat("x", 100)
	for d := range 30 {
		at := now.Add(-time.Duration(d) * 24 * time.Hour)
		for i := range 32 {
			remote := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i)})
			s.Record(events.Event{Time: at, Kind: events.Auth, Proto: "imap", Remote: remote, Account: address, Username: address, Form: "full-address", Result: "ok"})
			s.Record(events.Event{Time: at, Kind: events.SubmissionRefused, Proto: "submission", Remote: remote, Account: address,
				Result: "auth-required", Client: fmt.Sprintf("client%d-%s", i, long), Detail: "MAIL FROM:<" + address + "> without AUTH"})
		}
		for i := range 64 {
			s.Record(events.Event{Time: at, Kind: events.Auth, Proto: "pop3", Remote: netip.MustParseAddr("192.0.2.1"), Account: address,
				Username: fmt.Sprintf("%d%s", i, long), Form: "full-address", Result: "bad-password"})
		}
		for i := range 16 {
			s.Record(events.Event{Time: at, Kind: events.POP3Session, Proto: "pop3", Remote: netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}),
				Account: address, Result: "ok", Retrieved: 10, Redownloaded: 1, Messages: 500, Bytes: 50 << 20, LeftAll: true, Oldest: at.Add(-90 * 24 * time.Hour)})
		}
	}
}

// BenchmarkStaffAccountPage is a staff lookup of an account with 30 days
// of observations at every cap: the whole request (session check,
// observations, findings, template) as the console serves it.
func BenchmarkStaffAccountPage(b *testing.B) {
	env := newStaffApp(b)
	const john = "john@example.com"
	fillAccount(env.obs, john, env.clock.now())
	a, ok := env.obs.Account(john)
	if !ok || len(a.Logins) != 32 || len(a.Failures) != 64 || len(a.Refusals) != 32 || len(a.POP3) != 16 {
		b.Fatalf("account not at the caps: %v", ok)
	}
	br := newBrowserClient(b, env.app)
	br.signIn(staffPassword)
	target := "/staff/accounts/" + url.PathEscape(john)
	if w := br.do("GET", target, nil); w.Code != 200 || !strings.Contains(w.Body.String(), "pop3.leave-forever") {
		b.Fatalf("%d", w.Code)
	}
	b.ReportAllocs()
	for b.Loop() {
		if w := br.do("GET", target, nil); w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}

// BenchmarkStaffHome is the console's start page with the list of
// accounts with trouble full: 20 accounts shown, each at every cap with
// 30 days of observations (the worst case of that list).
func BenchmarkStaffHome(b *testing.B) {
	env := newStaffApp(b)
	for i := range 30 {
		fillAccount(env.obs, fmt.Sprintf("user%d@example.com", i), env.clock.now())
	}
	br := newBrowserClient(b, env.app)
	br.signIn(staffPassword)
	if w := br.do("GET", "/staff/", nil); w.Code != 200 || strings.Count(w.Body.String(), `class="finding`) != 20 {
		b.Fatalf("%d, %d accounts listed", w.Code, strings.Count(w.Body.String(), `class="finding`))
	}
	b.ReportAllocs()
	for b.Loop() {
		if w := br.do("GET", "/staff/", nil); w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}

// BenchmarkOverviewPage is the ISP overview page (/staff/overview) over
// the observations of 50,000 accounts in 5,000 domains with 30 days
// each (observe's BenchmarkOverviewTypical's store: every POP3 client
// leaves mail for ever, every third account logs in with the bare local
// part, every fifth sends without authentication), computed for every
// request ("every-request", OverviewMaxAge below 0) and as the console
// serves it, kept for 30 s per query ("cached"). It reports how long an
// event's Record waited for the store's lock at most meanwhile.
func BenchmarkOverviewPage(b *testing.B) {
	for _, bc := range []struct {
		name   string
		maxAge time.Duration
	}{{"every-request", -1}, {"cached", 0}} {
		b.Run(bc.name, func(b *testing.B) {
			env := newStaffAppWith(b, staffConfig{maxAccounts: 70_000, overviewMaxAge: bc.maxAge})
			now := env.clock.now()
			remote := netip.MustParseAddr("192.0.2.1")
			for i := range 50_000 {
				addr := fmt.Sprintf("user%d@d%d.example", i, i%5000)
				for d := range 30 {
					at := now.Add(-time.Duration(d) * 24 * time.Hour)
					env.obs.Record(events.Event{Time: at, Kind: events.Auth, Proto: "pop3", Remote: remote, TLS: true, Account: addr, Username: addr, Form: "full-address", Result: "ok"})
					env.obs.Record(events.Event{Time: at, Kind: events.POP3Session, Proto: "pop3", Remote: remote, TLS: true, Account: addr, Result: "ok",
						Retrieved: 10, Messages: 3400, Bytes: 1 << 30, LeftAll: true})
					if i%3 == 0 {
						env.obs.Record(events.Event{Time: at, Kind: events.Auth, Proto: "pop3", Remote: remote, TLS: true, Username: fmt.Sprintf("user%d", i), Form: "local-part", Result: "username-form"})
					}
					if i%5 == 0 {
						env.obs.Record(events.Event{Time: at, Kind: events.SubmissionRefused, Proto: "submission", Remote: remote, TLS: true, Account: addr, Result: "auth-required"})
					}
				}
			}
			br := newBrowserClient(b, env.app)
			br.signIn(staffPassword)
			if w := br.do("GET", "/staff/overview", nil); w.Code != 200 || !strings.Contains(w.Body.String(), "5000 domains, the most accounts") {
				b.Fatalf("%d\n%.2000s", w.Code, w.Body)
			}
			stop := testkit.WorstWait(func() {
				env.obs.Record(events.Event{Time: now, Kind: events.Auth, Proto: "imap", Remote: remote, Account: "user1@d1.example", Username: "user1@d1.example", Form: "full-address", Result: "ok"})
			}, 100*time.Microsecond)
			for b.Loop() {
				if w := br.do("GET", "/staff/overview", nil); w.Code != 200 {
					b.Fatal(w.Code)
				}
			}
			b.ReportMetric(float64(stop().Microseconds()), "max-record-µs")
		})
	}
}
