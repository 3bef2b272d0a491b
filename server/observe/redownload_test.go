package observe_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"mailsetup/server/observe"
)

// TestRedownloads: the alarm after a cutover counts, per domain, the
// accounts whose POP3 clients re-downloaded within the window, with the
// messages and the latest time; sessions without re-downloads, other
// troubles and bare local parts do not count; the window moves with the
// clock; a restart rebuilds it from the snapshot.
func TestRedownloads(t *testing.T) {
	clk := newClock(t0)
	path := filepath.Join(t.TempDir(), "observations.json")
	s := open(t, observe.Options{Path: path, Now: clk.Now})
	if got := s.Redownloads(time.Hour); len(got) != 0 {
		t.Fatalf("empty store: %v", got)
	}
	s.Record(pop3Session(t0.Add(-10*time.Minute), "192.0.2.1", "ann@johndoe.com", 40, 40, 0))
	s.Record(pop3Session(t0.Add(-5*time.Minute), "192.0.2.1", "ann@johndoe.com", 2, 2, 0))
	s.Record(pop3Session(t0.Add(-3*time.Minute), "192.0.2.2", "Bob@JohnDoe.com", 7, 7, 0))
	s.Record(pop3Session(t0.Add(-20*time.Minute), "192.0.2.3", "cid@example.net", 3, 3, 0))
	s.Record(pop3Session(t0.Add(-3*time.Hour), "192.0.2.4", "dan@johndoe.com", 9, 9, 0)) // outside the hour
	s.Record(pop3Session(t0, "192.0.2.5", "eve@johndoe.com", 5, 0, 0))                   // leaves all, no re-download
	s.Record(noAuth(t0, "192.0.2.6", "fay@johndoe.com", "fay@johndoe.com"))

	check := func(s *observe.Store) {
		t.Helper()
		got := s.Redownloads(time.Hour)
		if len(got) != 2 {
			t.Fatalf("last hour: %+v", got)
		}
		jd, en := got[0], got[1]
		if jd.Domain != "johndoe.com" || jd.Accounts != 2 || jd.Messages != 49 || jd.Sessions != 3 ||
			!jd.Last.Equal(t0.Add(-3*time.Minute)) || fmt.Sprint(jd.Addresses) != "[bob@johndoe.com ann@johndoe.com]" {
			t.Errorf("johndoe.com: %+v", jd)
		}
		if en.Domain != "example.net" || en.Accounts != 1 || en.Messages != 3 || !en.Last.Equal(t0.Add(-20*time.Minute)) {
			t.Errorf("example.net: %+v", en)
		}
		day := s.Redownloads(24 * time.Hour)
		if len(day) != 2 || day[0].Accounts != 3 || day[0].Messages != 58 {
			t.Errorf("last 24 hours: %+v", day)
		}
		if long := s.Redownloads(30 * 24 * time.Hour); fmt.Sprint(long) != fmt.Sprint(day) {
			t.Errorf("a window over a day is a day: %+v", long)
		}
	}
	check(s)
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	// The restart: the same view from the snapshot.
	check(open(t, observe.Options{Path: path, Now: clk.Now}))

	// Two hours later the last hour is quiet; a day later everything is.
	clk.Add(2 * time.Hour)
	if got := s.Redownloads(time.Hour); len(got) != 0 {
		t.Errorf("two hours later, last hour: %+v", got)
	}
	if got := s.Redownloads(24 * time.Hour); len(got) != 2 || got[0].Accounts != 3 {
		t.Errorf("two hours later, last day: %+v", got)
	}
	clk.Add(25 * time.Hour)
	if got := s.Redownloads(24 * time.Hour); len(got) != 0 {
		t.Errorf("a day later: %+v", got)
	}
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	if got := open(t, observe.Options{Path: path, Now: clk.Now}).Redownloads(24 * time.Hour); len(got) != 0 {
		t.Errorf("a day later, after a restart: %+v", got)
	}
}

// TestRedownloadsBounded: the alarm lives in the bounded store: an
// evicted account leaves it, and a flood of sessions keeps at most a
// day of hourly counters per account.
func TestRedownloadsBounded(t *testing.T) {
	clk := newClock(t0)
	s := open(t, observe.Options{Now: clk.Now, MaxAccounts: 100})
	for i := range 1000 {
		s.Record(pop3Session(t0.Add(-time.Duration(1000-i)*time.Second), "192.0.2.1", fmt.Sprintf("u%d@johndoe.com", i), 1, 1, 0))
	}
	got := s.Redownloads(time.Hour)
	if len(got) != 1 || got[0].Accounts != 100 || got[0].Addresses[0] != "u999@johndoe.com" {
		t.Errorf("bounded: %+v", got)
	}
	for range 24 * 60 {
		clk.Add(time.Minute)
		s.Record(pop3Session(clk.Now(), "192.0.2.1", "u999@johndoe.com", 1, 1, 0))
	}
	got = s.Redownloads(24 * time.Hour)
	if len(got) != 1 || got[0].Sessions > 25*60+100 || got[0].Sessions < 23*60 {
		t.Errorf("a day of sessions: %+v", got)
	}
}
