package observe_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"mailsetup/server/observe"
)

// TestRecentTroubles: the accounts whose clients had trouble lately,
// most recent first, only with current findings; bounded; rebuilt from
// the snapshot after a restart.
func TestRecentTroubles(t *testing.T) {
	clk := newClock(t0)
	path := filepath.Join(t.TempDir(), "observations.json")
	s := open(t, observe.Options{Path: path, Now: clk.Now})
	s.Record(noAuth(t0.Add(-3*time.Hour), "192.0.2.1", "ann@johndoe.com", "ann@johndoe.com"))
	s.Record(badPassword(t0.Add(-2*time.Hour), "imap", "192.0.2.2", "bob@johndoe.com"))
	s.Record(pop3Session(t0.Add(-1*time.Hour), "192.0.2.3", "cid@johndoe.com", 5, 0, 0)) // leaves everything
	s.Record(login(t0, "imap", "192.0.2.4", "dan@johndoe.com"))                          // no trouble
	s.Record(noAuth(t0.Add(-30*time.Hour), "192.0.2.5", "eve@johndoe.com", "eve@johndoe.com"))
	s.Record(bareLocalPart(t0, "pop3", "192.0.2.6", "fay")) // names no account

	check := func(s *observe.Store) {
		t.Helper()
		got := s.Recent(10, 24*time.Hour)
		var addrs []string
		for _, tr := range got {
			addrs = append(addrs, tr.Address)
			if len(tr.Findings) == 0 || tr.Findings[0].Severity != tr.Worst {
				t.Errorf("%s: findings %v, worst %v", tr.Address, len(tr.Findings), tr.Worst)
			}
		}
		if fmt.Sprint(addrs) != "[cid@johndoe.com bob@johndoe.com ann@johndoe.com]" {
			t.Errorf("recent = %v", addrs)
		}
		if got := s.Recent(2, 24*time.Hour); len(got) != 2 {
			t.Errorf("Recent(2) gave %d", len(got))
		}
		if got := s.Recent(10, 48*time.Hour); len(got) != 4 {
			t.Errorf("over 48 hours: %d accounts, want 4 (eve too)", len(got))
		}
	}
	check(s)
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	check(open(t, observe.Options{Path: path, Now: clk.Now}))

	// Bounded: 2,000 accounts in trouble, the list keeps the latest.
	b := open(t, observe.Options{Now: clk.Now})
	for i := range 2000 {
		b.Record(noAuth(t0.Add(time.Duration(i-2000)*time.Second), "192.0.2.1", fmt.Sprintf("u%d@johndoe.com", i), "x@johndoe.com"))
	}
	got := b.Recent(1000, 24*time.Hour)
	if len(got) > 512 || len(got) < 100 || got[0].Address != "u1999@johndoe.com" {
		t.Errorf("bounded list: %d entries, first %v", len(got), got[0].Address)
	}
}
