package console

import (
	"sync"
	"time"

	"mailsetup/server/observe"
)

// The ISP overview walks every account of the observations store (at
// 50,000 accounts about 150 ms, taking the store's lock a chunk at a
// time), and the page, its CSV and the API each ask for it. Staff click
// through pages, reload, download the CSV of what they see, and a
// support tool may poll the API: each of those within a short time gets
// the overview computed once for its query (the domain filter, the
// days, the page), never older than DefaultOverviewMaxAge. Concurrent
// requests for the same query wait for one computation. At most
// overviewCacheEntries queries are kept (each at most one page of
// domains: MaxOverviewDomains rows of 30 days), the oldest first out.

// DefaultOverviewMaxAge is how long a computed overview is shown again.
const DefaultOverviewMaxAge = 30 * time.Second

// overviewCacheEntries bounds the queries kept.
const overviewCacheEntries = 32

// overviewKey is an overview's query (the console fills every field).
type overviewKey struct {
	domain              string
	days, offset, limit int
}

// overviewEntry is one query's overview, computing until done closes.
type overviewEntry struct {
	done chan struct{}
	rep  observe.OverviewReport
	// at is when its computation started.
	at time.Time
}

// overviewCache keeps recent overviews per query.
type overviewCache struct {
	compute func(observe.OverviewOptions) observe.OverviewReport
	now     func() time.Time
	maxAge  time.Duration

	mu      sync.Mutex
	entries map[overviewKey]*overviewEntry
}

// cachedOverview returns compute with its results kept for maxAge (0:
// DefaultOverviewMaxAge; below 0: compute every time). The reports it
// returns are shared: callers must not change them.
func cachedOverview(compute func(observe.OverviewOptions) observe.OverviewReport, now func() time.Time, maxAge time.Duration) func(observe.OverviewOptions) observe.OverviewReport {
	if compute == nil || maxAge < 0 {
		return compute
	}
	if maxAge == 0 {
		maxAge = DefaultOverviewMaxAge
	}
	c := &overviewCache{compute: compute, now: now, maxAge: maxAge, entries: map[overviewKey]*overviewEntry{}}
	return c.get
}

func (c *overviewCache) get(o observe.OverviewOptions) observe.OverviewReport {
	key := overviewKey{domain: o.Domain, days: o.Days, offset: o.Offset, limit: o.Limit}
	now := c.now()
	c.mu.Lock()
	e := c.entries[key]
	if e != nil {
		select {
		case <-e.done:
			if now.Sub(e.at) >= c.maxAge || now.Before(e.at) {
				e = nil // stale: computed again below
			}
		default: // another request computes it: wait for that
		}
	}
	if e != nil {
		c.mu.Unlock()
		<-e.done
		return e.rep
	}
	e = &overviewEntry{done: make(chan struct{}), at: now}
	c.evict(now)
	c.entries[key] = e
	c.mu.Unlock()
	defer close(e.done)
	e.rep = c.compute(o)
	return e.rep
}

// evict drops the stale entries and, while the cache is full, the
// oldest finished one (caller holds mu).
func (c *overviewCache) evict(now time.Time) {
	var oldest overviewKey
	var oldestAt time.Time
	done := 0
	for k, e := range c.entries {
		select {
		case <-e.done:
		default:
			continue // computing: its waiters need it
		}
		if now.Sub(e.at) >= c.maxAge || now.Before(e.at) {
			delete(c.entries, k)
			continue
		}
		if done++; oldestAt.IsZero() || e.at.Before(oldestAt) {
			oldest, oldestAt = k, e.at
		}
	}
	if len(c.entries) >= overviewCacheEntries && done > 0 {
		delete(c.entries, oldest)
	}
}
