package console

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mailsetup/server/observe"
)

// TestOverviewCache: one query is computed once within the maximum age
// and again after it; other queries are their own; concurrent requests
// wait for one computation; the entries are bounded; a negative age
// computes every time.
func TestOverviewCache(t *testing.T) {
	var calls atomic.Int64
	release := make(chan struct{})
	compute := func(o observe.OverviewOptions) observe.OverviewReport {
		calls.Add(1)
		<-release
		return observe.OverviewReport{Filter: o.Domain, Offset: o.Offset, Domains: int(calls.Load())}
	}
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	get := cachedOverview(compute, clock, 30*time.Second)
	q := observe.OverviewOptions{Days: 30, Limit: 50, Domain: "example"}

	// 20 at once: one computation, every one gets its report.
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if rep := get(q); rep.Filter != "example" || rep.Domains != 1 {
				t.Errorf("concurrent: %+v", rep)
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Fatalf("20 concurrent requests computed %d times", n)
	}
	advance(29 * time.Second)
	if rep := get(q); rep.Domains != 1 || calls.Load() != 1 {
		t.Errorf("within 30 s: computed again (%d)", calls.Load())
	}
	other := q
	other.Offset = 50
	if rep := get(other); rep.Offset != 50 || calls.Load() != 2 {
		t.Errorf("another page: %+v, %d computations", rep, calls.Load())
	}
	advance(time.Second)
	if rep := get(q); rep.Domains != 3 || calls.Load() != 3 {
		t.Errorf("after 30 s: %+v, %d computations", rep, calls.Load())
	}

	// Bounded: 100 filters keep at most overviewCacheEntries entries.
	c := &overviewCache{compute: compute, now: clock, maxAge: time.Minute, entries: map[overviewKey]*overviewEntry{}}
	for i := range 100 {
		c.get(observe.OverviewOptions{Days: 30, Limit: 50, Domain: string(rune('a'+i%26)) + string(rune('a'+i/26))})
		advance(time.Millisecond)
	}
	if len(c.entries) > overviewCacheEntries {
		t.Errorf("%d entries kept, at most %d", len(c.entries), overviewCacheEntries)
	}

	before := calls.Load()
	uncached := cachedOverview(compute, clock, -1)
	uncached(q)
	uncached(q)
	if calls.Load() != before+2 {
		t.Errorf("a negative age cached")
	}
}
