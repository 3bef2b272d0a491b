package observe_test

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"mailsetup/server/events"
	"mailsetup/server/observe"
)

const letters = "abcdefghijklmnopqrstuvwxyz0123456789./%\\"

func randomText(rng *rand.Rand, max int) string {
	b := make([]byte, 1+rng.IntN(max))
	for i := range b {
		b[i] = letters[rng.IntN(len(letters))]
	}
	return string(b)
}

func randomRemote(rng *rand.Rand) netip.Addr {
	if rng.IntN(2) == 0 {
		return netip.AddrFrom4([4]byte{byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32())})
	}
	var b [16]byte
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return netip.AddrFrom16(b)
}

// randomEvent is an attacker's or a broken client's event for account,
// within the 30 days before now, with texts longer than kept.
func randomEvent(rng *rand.Rand, account string, now time.Time) events.Event {
	e := events.Event{
		Time:    now.Add(-time.Duration(rng.Int64N(int64(29 * 24 * time.Hour)))),
		Proto:   []events.Proto{"imap", "pop3", "submission", "smtp"}[rng.IntN(4)],
		Remote:  randomRemote(rng),
		TLS:     rng.IntN(2) == 0,
		Account: account,
	}
	switch rng.IntN(6) {
	case 0:
		e.Kind, e.Result, e.Username, e.Form = events.Auth, "ok", account, "full-address"
	case 1, 2:
		e.Kind, e.Username = events.Auth, randomText(rng, 300)
		e.Result = []events.Result{"bad-password", "username-form", "throttled"}[rng.IntN(3)]
		e.Form = []events.Form{"full-address", "local-part", "wrong-separator", "malformed"}[rng.IntN(4)]
	case 3:
		e.Kind, e.Client, e.Detail = events.SubmissionRefused, randomText(rng, 300), "MAIL FROM:<"+randomText(rng, 300)+">"
		e.Result = []events.Result{"auth-required", "forged-sender", "relay"}[rng.IntN(3)]
	case 4:
		e.Kind, e.Proto = events.POP3Session, "pop3"
		e.Retrieved, e.Redownloaded, e.Deleted = rng.IntN(100), rng.IntN(10), rng.IntN(2)*rng.IntN(100)
		e.LeftAll, e.Messages, e.Bytes = e.Deleted == 0 && e.Retrieved > 0, rng.IntN(50_000), rng.Int64N(1<<34)
		e.Oldest = now.Add(-time.Duration(rng.IntN(400)) * 24 * time.Hour)
	case 5:
		e.Kind, e.Client = events.ClientID, randomText(rng, 300)
	}
	return e
}

// heapInUse returns the live heap after a full collection.
func heapInUse() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// fullAccount gives address every group kind at its cap, each group with
// an event on each of the 30 days, and the longest texts kept.
func fullAccount(s *observe.Store, address string, now time.Time) {
	long := strings.Repeat("x", 200)
	for d := range 30 {
		at := now.Add(-time.Duration(d) * 24 * time.Hour)
		for i := range 32 {
			remote := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i)})
			e := login(at, "imap", "192.0.2.1", address)
			e.Remote, e.Client = remote, long
			s.Record(e)
			e = noAuth(at, "192.0.2.1", address, long)
			e.Remote, e.Client = remote, fmt.Sprintf("%d%s", i, long)
			s.Record(e)
		}
		for i := range 64 {
			e := badPassword(at, "pop3", "192.0.2.1", address)
			e.Username = fmt.Sprintf("%d%s", i, long)
			s.Record(e)
		}
		for i := range 16 {
			e := pop3Session(at, "192.0.2.1", address, 10, 1, 0)
			e.Remote = netip.AddrFrom4([4]byte{198, 51, 100, byte(i)})
			s.Record(e)
		}
		s.Record(events.Event{Time: at, Kind: events.Delivery, Proto: "smtp", Remote: netip.MustParseAddr("198.51.100.200"), Result: "ok", Detail: "local " + address})
	}
}

// Worst case per account: every cap reached, 30 days per group.
const maxBytesPerFullAccount = 256 << 10

func TestFullAccountMemory(t *testing.T) {
	const n = 40
	s := open(t, observe.Options{Now: newClock(t0).Now})
	before := heapInUse()
	for i := range n {
		fullAccount(s, fmt.Sprintf("user%d@example.test", i), t0)
	}
	after := heapInUse()
	per := (int64(after) - int64(before)) / n
	st := s.Stats()
	t.Logf("an account at every cap with 30 days per group: %d bytes (%d groups, %d bytes per group)", per, st.Groups/n, per/int64(st.Groups/n))
	if st.Groups != n*(32+64+32+16) {
		t.Errorf("groups = %d, want %d", st.Groups, n*(32+64+32+16))
	}
	if per > maxBytesPerFullAccount {
		t.Errorf("an account at the caps takes %d bytes, more than %d", per, maxBytesPerFullAccount)
	}
	runtime.KeepAlive(s)
}

func TestFloodManyAccounts(t *testing.T) {
	const maxAccounts = 1000
	maxGroups := maxAccounts * observe.DefaultGroupsPerAccount
	// The bound: MaxAccounts accounts of about 1 kB (map entry, struct,
	// key) and MaxGroups groups of at most about 800 bytes each (30 days
	// of counts, 128-byte texts: TestFullAccountMemory), plus slack.
	bound := int64(maxAccounts*1024+maxGroups*800) + 1<<20
	s := open(t, observe.Options{Now: newClock(t0).Now, MaxAccounts: maxAccounts})
	rng := rand.New(rand.NewPCG(1, 2))
	before := heapInUse()
	check := func(phase string) {
		t.Helper()
		growth := int64(heapInUse()) - int64(before)
		st := s.Stats()
		t.Logf("%s: %+v; heap growth %d bytes (bound %d)", phase, st, growth, bound)
		if st.Accounts > maxAccounts || st.Groups > maxGroups {
			t.Errorf("%s: stats %+v over the bounds", phase, st)
		}
		if st.EvictedAccounts == 0 || (st.Accounts < maxAccounts && st.Groups < maxGroups*9/10) {
			t.Errorf("%s: stats %+v: the flood did not reach the bounds", phase, st)
		}
		if growth > bound {
			t.Errorf("%s: heap grew by %d bytes, more than %d", phase, growth, bound)
		}
	}
	// Fewer accounts than MaxAccounts that gather groups: MaxGroups
	// binds.
	for range 100_000 {
		s.Record(randomEvent(rng, fmt.Sprintf("u%d@example.test", rng.IntN(900)), t0))
	}
	check("100,000 events for 900 accounts")
	if st := s.Stats(); st.Groups < maxGroups*9/10 {
		t.Errorf("groups %d: MaxGroups %d not reached", st.Groups, maxGroups)
	}
	// A new account nearly every time: MaxAccounts binds.
	for range 100_000 {
		s.Record(randomEvent(rng, randomText(rng, 40)+"@example.test", t0))
	}
	check("then 100,000 events for random accounts")
	runtime.KeepAlive(s)
}

func TestFloodOneAccount(t *testing.T) {
	const bound = 512 << 10
	s := open(t, observe.Options{Now: newClock(t0).Now})
	rng := rand.New(rand.NewPCG(5, 6))
	const john = "john@johndoe.com"
	before := heapInUse()
	for range 200_000 {
		s.Record(randomEvent(rng, john, t0))
	}
	after := heapInUse()
	a := mustAccount(t, s, john)
	growth := int64(after) - int64(before)
	t.Logf("one account after 200,000 events: %d logins, %d failures, %d refusals, %d POP3 clients, %d findings; heap growth %d bytes",
		len(a.Logins), len(a.Failures), len(a.Refusals), len(a.POP3), len(a.Findings), growth)
	if len(a.Logins) != 32 || len(a.Failures) != 64 || len(a.Refusals) != 32 || len(a.POP3) != 16 {
		t.Errorf("groups: %d logins, %d failures, %d refusals, %d POP3 clients; want the caps 32, 64, 32, 16",
			len(a.Logins), len(a.Failures), len(a.Refusals), len(a.POP3))
	}
	if st := s.Stats(); st.Groups != 144 || st.EvictedGroups == 0 {
		t.Errorf("stats %+v", st)
	}
	for _, f := range a.Failures {
		if len(f.Username) > 128 {
			t.Fatalf("username of %d bytes kept", len(f.Username))
		}
	}
	for _, r := range a.Refusals {
		if len(r.Client) > 128 || len(r.Detail) > 128 {
			t.Fatalf("client of %d bytes, detail of %d bytes kept", len(r.Client), len(r.Detail))
		}
	}
	for _, f := range a.Findings {
		if len(f.Evidence) > 9 {
			t.Errorf("%s: %d evidence lines", f.ID, len(f.Evidence))
		}
	}
	if growth > bound {
		t.Errorf("heap grew by %d bytes, more than %d", growth, bound)
	}
	runtime.KeepAlive(s)
}
