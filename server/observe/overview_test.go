package observe_test

import (
	"fmt"
	"testing"
	"time"

	"mailsetup/server/observe"
)

// TestTimeline: an account's last 30 days, one entry per day (empty
// days included), today last, each count on its own day.
func TestTimeline(t *testing.T) {
	clk := newClock(t0)
	s := open(t, observe.Options{Now: clk.Now})
	const john = "john@example.test"
	third := t0.Add(-3 * 24 * time.Hour)
	s.Record(login(t0.Add(-20*24*time.Hour), "imap", "203.0.113.7", john))
	for range 4 {
		s.Record(bareLocalPart(third, "pop3", "203.0.113.7", "john"))
	}
	s.Record(badPassword(third, "imap", "203.0.113.8", john))
	s.Record(noAuth(t0, "203.0.113.7", john, john))
	s.Record(pop3Session(t0, "203.0.113.7", john, 5, 5, 0))
	a := mustAccount(t, s, john)
	if len(a.Timeline) != observe.TimelineDays {
		t.Fatalf("%d days, want %d", len(a.Timeline), observe.TimelineDays)
	}
	last := a.Timeline[len(a.Timeline)-1]
	if !last.Date.Equal(t0.Truncate(24*time.Hour)) || last.Refused != 1 || last.Redownloaded != 5 || last.Logins != 0 {
		t.Errorf("today: %+v", last)
	}
	if d := a.Timeline[len(a.Timeline)-4]; d.UsernameForm != 4 || d.BadPassword != 1 || d.Failures() != 5 {
		t.Errorf("three days ago: %+v", d)
	}
	if d := a.Timeline[len(a.Timeline)-21]; d.Logins != 1 || d.Total() != 1 {
		t.Errorf("20 days ago: %+v", d)
	}
	total := 0
	for _, d := range a.Timeline {
		total += d.Total()
	}
	if total != 1+5+1+5 {
		t.Errorf("the timeline counts %d in all", total)
	}
	// A retention shorter than 30 days: as many days as are kept.
	short := open(t, observe.Options{Now: clk.Now, Retention: 7 * 24 * time.Hour})
	short.Record(login(t0, "imap", "203.0.113.7", john))
	if a := mustAccount(t, short, john); len(a.Timeline) != 7 {
		t.Errorf("7 days kept: %d in the timeline", len(a.Timeline))
	}
}

// TestOverview: per domain and day, the accounts that made each of the
// incident's mistakes, each account once per mistake and day; a bare
// local part counted in the domains that have it; filtered and paged.
func TestOverview(t *testing.T) {
	clk := newClock(t0)
	s := open(t, observe.Options{Now: clk.Now})
	day := func(n int) time.Time { return t0.Add(-time.Duration(n) * 24 * time.Hour) }
	// john@a.test: bare local part on day -3 (twice) and -2.
	s.Record(login(day(5), "imap", "203.0.113.7", "john@a.test"))
	s.Record(bareLocalPart(day(3), "pop3", "203.0.113.7", "john"))
	s.Record(bareLocalPart(day(3), "pop3", "203.0.113.7", "john"))
	s.Record(bareLocalPart(day(2), "pop3", "203.0.113.7", "john"))
	// mary@a.test: sends without authentication today; her POP3 client
	// leaves everything on day -1, then deletes today.
	s.Record(noAuth(t0, "203.0.113.9", "mary@a.test", "mary@a.test"))
	s.Record(pop3Session(day(1), "203.0.113.9", "mary@a.test", 3, 0, 0))
	s.Record(pop3Session(t0, "203.0.113.9", "mary@a.test", 3, 0, 3))
	s.Record(pop3Session(t0.Add(time.Hour), "203.0.113.9", "mary@a.test", 3, 0, 0))
	// bob@b.test re-downloads today; ann@c.test only logs in.
	s.Record(pop3Session(t0, "198.51.100.1", "bob@b.test", 40, 40, 40))
	s.Record(login(t0, "imap", "198.51.100.2", "ann@c.test"))

	rep := s.Overview(observe.OverviewOptions{})
	if rep.Days != observe.TimelineDays || len(rep.All) != observe.TimelineDays || rep.Domains != 2 || len(rep.Page) != 2 {
		t.Fatalf("overview:\n%s", mustJSON(t, rep))
	}
	a, b := rep.Page[0], rep.Page[1]
	if a.Domain != "a.test" || b.Domain != "b.test" {
		t.Fatalf("order: %s, %s", a.Domain, b.Domain)
	}
	n := len(a.Days) - 1
	if got := a.Days[n-3]; got.LocalPart != 1 || got.Sum() != 1 || !got.Date.Equal(day(3).Truncate(24*time.Hour)) {
		t.Errorf("a.test three days ago: %+v", got)
	}
	if got := a.Days[n-1]; got.LeaveForever != 1 || got.Sum() != 1 {
		t.Errorf("a.test yesterday: %+v", got)
	}
	if got := a.Days[n]; got.NoAuth != 1 || got.LeaveForever != 0 || got.Sum() != 1 {
		t.Errorf("a.test today (mary deleted: no longer leaving for ever): %+v", got)
	}
	if want := (observe.Mistakes{LocalPart: 1, NoAuth: 1, LeaveForever: 1}); a.Total != want {
		t.Errorf("a.test total: %+v", a.Total)
	}
	if got := b.Days[n]; got.Redownload != 1 || got.LeaveForever != 0 {
		t.Errorf("b.test today: %+v", got)
	}
	if rep.All[n].Sum() != 2 || rep.All[n-3].LocalPart != 1 {
		t.Errorf("all domains: %+v, %+v", rep.All[n], rep.All[n-3])
	}

	// A bare local part is counted where the given lookup finds it.
	rep = s.Overview(observe.OverviewOptions{LocalPartDomains: func(local string) []string {
		if local == "john" {
			return []string{"a.test", "B.test"}
		}
		return nil
	}})
	if len(rep.Page) != 2 || rep.Page[1].Domain != "b.test" || rep.Page[1].Total.LocalPart != 1 || rep.Page[0].Total.LocalPart != 1 {
		t.Errorf("john counted in b.test too:\n%s", mustJSON(t, rep.Page))
	}

	// The filter and the pages.
	if rep := s.Overview(observe.OverviewOptions{Domain: "B."}); rep.Domains != 1 || rep.Page[0].Domain != "b.test" || rep.All[n].Sum() != 1 {
		t.Errorf("filter b.:\n%s", mustJSON(t, rep))
	}
	if rep := s.Overview(observe.OverviewOptions{Limit: 1, Offset: 1}); rep.Domains != 2 || len(rep.Page) != 1 || rep.Page[0].Domain != "b.test" || rep.All[n].Sum() != 2 {
		t.Errorf("second page:\n%s", mustJSON(t, rep))
	}
	if rep := s.Overview(observe.OverviewOptions{Days: 7}); len(rep.All) != 7 || len(rep.Page[0].Days) != 7 {
		t.Errorf("7 days: %d", len(rep.All))
	}
}

// TestOverviewManyDomains: thousands of domains give one bounded page.
func TestOverviewManyDomains(t *testing.T) {
	clk := newClock(t0)
	s := open(t, observe.Options{Now: clk.Now})
	for i := range 3000 {
		s.Record(noAuth(t0, "203.0.113.9", fmt.Sprintf("u@d%04d.test", i), "u@x.test"))
	}
	start := time.Now()
	rep := s.Overview(observe.OverviewOptions{Limit: 100000})
	took := time.Since(start)
	if rep.Domains != 3000 || len(rep.Page) != observe.MaxOverviewDomains || rep.All[len(rep.All)-1].NoAuth != 3000 {
		t.Errorf("%d domains, a page of %d, today %+v", rep.Domains, len(rep.Page), rep.All[len(rep.All)-1])
	}
	t.Logf("3000 domains: %v", took)
}
