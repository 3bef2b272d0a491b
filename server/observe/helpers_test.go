package observe_test

import (
	"encoding/json"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"mailsetup/finding"
	"mailsetup/server/events"
	"mailsetup/server/observe"
)

// t0 is the tests' "now" at the start: a Saturday morning, UTC.
var t0 = time.Date(2026, 11, 28, 10, 42, 0, 0, time.UTC)

// clock is a settable fake clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

func open(t testing.TB, opts observe.Options) *observe.Store {
	t.Helper()
	s, err := observe.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustAccount(t testing.TB, s *observe.Store, address string) observe.Account {
	t.Helper()
	a, ok := s.Account(address)
	if !ok {
		t.Fatalf("Account(%q): nothing seen", address)
	}
	return a
}

// findings returns the findings of id.
func findings(a observe.Account, id string) []finding.Finding {
	var out []finding.Finding
	for _, f := range a.Findings {
		if f.ID == id {
			out = append(out, f)
		}
	}
	return out
}

func ids(a observe.Account) []string {
	var out []string
	for _, f := range a.Findings {
		out = append(out, f.ID)
	}
	return out
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func hasLine(lines []string, parts ...string) bool {
	for _, l := range lines {
		ok := true
		for _, p := range parts {
			if !strings.Contains(l, p) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// Events as the servers emit them.

func login(at time.Time, proto events.Proto, remote, account string) events.Event {
	return events.Event{Time: at, Kind: events.Auth, Proto: proto, Remote: ip(remote), TLS: true,
		Account: account, Username: account, Form: "full-address", Result: "ok"}
}

func badPassword(at time.Time, proto events.Proto, remote, account string) events.Event {
	return events.Event{Time: at, Kind: events.Auth, Proto: proto, Remote: ip(remote), TLS: true,
		Account: account, Username: account, Form: "full-address", Result: "bad-password"}
}

// bareLocalPart is what auth emits for "john": no account, since the
// local part names no domain.
func bareLocalPart(at time.Time, proto events.Proto, remote, username string) events.Event {
	return events.Event{Time: at, Kind: events.Auth, Proto: proto, Remote: ip(remote), TLS: true,
		Username: username, Form: "local-part", Result: "username-form"}
}

func pop3Session(at time.Time, remote, account string, retrieved, redownloaded, deleted int) events.Event {
	return events.Event{Time: at, Kind: events.POP3Session, Proto: "pop3", Remote: ip(remote), TLS: true,
		Account: account, Result: "ok", Retrieved: retrieved, Redownloaded: redownloaded, Deleted: deleted,
		Messages: 3400, Bytes: 1_234_000_000, LeftAll: retrieved > 0 && deleted == 0,
		Oldest: t0.Add(-190 * 24 * time.Hour)}
}

func noAuth(at time.Time, remote, account, from string) events.Event {
	return events.Event{Time: at, Kind: events.SubmissionRefused, Proto: "submission", Remote: ip(remote), TLS: true,
		Account: account, Result: "auth-required", Detail: "MAIL FROM:<" + from + "> without AUTH", Client: "laptop.home"}
}
