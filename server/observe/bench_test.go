package observe_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"mailsetup/internal/testkit"
	"mailsetup/server/events"
	"mailsetup/server/observe"
)

// BenchmarkAccount30Days looks up an account with 30 days of
// observations in every group kind, each at its cap: what the support
// console asks for.
func BenchmarkAccount30Days(b *testing.B) {
	s := open(b, observe.Options{Now: newClock(t0).Now, DeleteAfterDays: func(string) int { return 2 }})
	const john = "john@johndoe.com"
	fullAccount(s, john, t0)
	a := mustAccount(b, s, john)
	if len(a.Logins) != 32 || len(a.Failures) != 64 || len(a.Refusals) != 32 || len(a.POP3) != 16 || len(a.Findings) == 0 {
		b.Fatalf("not at the caps: %d %d %d %d, %d findings", len(a.Logins), len(a.Failures), len(a.Refusals), len(a.POP3), len(a.Findings))
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := s.Account(john); !ok {
			b.Fatal("gone")
		}
	}
}

// BenchmarkRecord records a mix of events over 20,000 accounts into a
// store holding 10,000: lookups, new groups, evictions.
func BenchmarkRecord(b *testing.B) {
	s := open(b, observe.Options{Now: newClock(t0).Now, MaxAccounts: 10_000})
	rng := rand.New(rand.NewPCG(7, 8))
	evs := make([]events.Event, 1<<14)
	for i := range evs {
		evs[i] = randomEvent(rng, fmt.Sprintf("user%d@example.test", rng.IntN(20_000)), t0)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s.Record(evs[i&(len(evs)-1)])
		i++
	}
}

// typicalStore is 50,000 accounts with 30 days of one POP3 client each
// (a login and a session a day): an ISP's mailboxes, not the worst case.
func typicalStore(b *testing.B, path string) *observe.Store {
	s := open(b, observe.Options{Path: path, Now: newClock(t0).Now})
	for i := range 50_000 {
		addr := fmt.Sprintf("user%d@example.test", i)
		for d := range 30 {
			at := t0.Add(-time.Duration(d) * 24 * time.Hour)
			s.Record(login(at, "pop3", "192.0.2.1", addr))
			s.Record(pop3Session(at, "192.0.2.1", addr, 10, 0, 0))
		}
	}
	return s
}

// BenchmarkSaveTypical writes the snapshot of typicalStore (what the
// periodic save costs when something changed); it reports the size.
func BenchmarkSaveTypical(b *testing.B) {
	path := filepath.Join(b.TempDir(), "observations.json")
	s := typicalStore(b, path)
	for b.Loop() {
		s.Record(login(t0, "imap", "192.0.2.2", "user1@example.test")) // something changed
		if err := s.Save(); err != nil {
			b.Fatal(err)
		}
	}
	if st, err := os.Stat(path); err == nil {
		b.ReportMetric(float64(st.Size())/1e6, "MB")
	}
}

// BenchmarkOpenTypical loads typicalStore's snapshot (the start-up cost).
func BenchmarkOpenTypical(b *testing.B) {
	path := filepath.Join(b.TempDir(), "observations.json")
	if err := typicalStore(b, path).Save(); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		open(b, observe.Options{Path: path, Now: newClock(t0).Now})
	}
}

// overviewStore is 50,000 accounts in 5,000 domains with 30 days each:
// every account's POP3 client leaves mail for ever, every third logs in
// with the bare local part once a day, every fifth sends without
// authentication: the overview at an ISP's scale.
func overviewStore(b *testing.B) *observe.Store {
	// 50,000 accounts and 16,667 bare local parts.
	s := open(b, observe.Options{Now: newClock(t0).Now, MaxAccounts: 70_000})
	for i := range 50_000 {
		addr := fmt.Sprintf("user%d@d%d.example", i, i%5000)
		for d := range 30 {
			at := t0.Add(-time.Duration(d) * 24 * time.Hour)
			s.Record(login(at, "pop3", "192.0.2.1", addr))
			s.Record(pop3Session(at, "192.0.2.1", addr, 10, 0, 0))
			if i%3 == 0 {
				s.Record(bareLocalPart(at, "pop3", "192.0.2.1", fmt.Sprintf("user%d", i)))
			}
			if i%5 == 0 {
				s.Record(noAuth(at, "192.0.2.1", addr, addr))
			}
		}
	}
	return s
}

// BenchmarkOverviewTypical is the ISP overview over overviewStore (the
// page, its CSV and the API each make one), and reports how long Record
// waited for the store's lock at most meanwhile.
func BenchmarkOverviewTypical(b *testing.B) {
	s := overviewStore(b)
	if rep := s.Overview(observe.OverviewOptions{}); rep.Domains != 5000 || rep.All[len(rep.All)-1] != (observe.Mistakes{Date: t0.Truncate(24 * time.Hour), LocalPart: 16_667, NoAuth: 10_000, LeaveForever: 50_000}) {
		b.Fatalf("%d domains, today %+v", rep.Domains, rep.All[len(rep.All)-1])
	}
	stop := testkit.WorstWait(func() { s.Record(login(t0, "imap", "192.0.2.2", "user1@d1.example")) }, 100*time.Microsecond)
	for b.Loop() {
		s.Overview(observe.OverviewOptions{})
	}
	b.ReportMetric(float64(stop().Microseconds()), "max-record-µs")
}
