package selfhelp

import (
	"net/netip"
	"strings"
	"sync"
	"time"
)

// checkLimiter limits the settings checks per client IP and per
// address: each is a token bucket holding at most N checks that refills
// at N per hour. Its memory is bounded: when a table is full, buckets
// that have refilled completely (the same as no bucket) are dropped; if
// none has, new keys are refused until one has (fail closed: a check
// costs connections to the mail servers).
type checkLimiter struct {
	now func() time.Time

	mu       sync.Mutex
	ip, addr bucketTable
}

// maxCheckBuckets bounds each table (about 100 bytes an entry).
const maxCheckBuckets = 50_000

type bucketTable struct {
	perHour   float64
	m         map[string]tokenBucket
	lastSweep time.Time
}

type tokenBucket struct {
	tokens float64
	at     time.Time
}

func newCheckLimiter(perIP, perAddress int, now func() time.Time) *checkLimiter {
	return &checkLimiter{now: now,
		ip:   bucketTable{perHour: float64(perIP), m: map[string]tokenBucket{}},
		addr: bucketTable{perHour: float64(perAddress), m: map[string]tokenBucket{}}}
}

// set changes the checks per hour (a config reload). The checks each
// bucket has taken still count: its level moves by the change of size
// (an address that used 3 of 10 has none left under a limit of 3), and
// refills at the new rate.
func (l *checkLimiter) set(perIP, perAddress int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ip.resize(float64(perIP))
	l.addr.resize(float64(perAddress))
}

// resize gives the table a new size, keeping what each bucket used.
func (t *bucketTable) resize(perHour float64) {
	delta := perHour - t.perHour
	t.perHour = perHour
	for k, b := range t.m {
		b.tokens = min(perHour, max(0, b.tokens+delta))
		t.m[k] = b
	}
}

// tokens is the bucket's level at now.
func (t *bucketTable) tokens(key string, now time.Time) float64 {
	b, ok := t.m[key]
	if !ok {
		return t.perHour
	}
	return min(t.perHour, b.tokens+now.Sub(b.at).Hours()*t.perHour)
}

// wait is how long until a bucket at level has one token.
func (t *bucketTable) wait(level float64) time.Duration {
	if level >= 1 {
		return 0
	}
	return time.Duration((1 - level) / t.perHour * float64(time.Hour))
}

// room reports whether key has or may get a bucket.
func (t *bucketTable) room(key string, now time.Time) bool {
	if _, ok := t.m[key]; ok || len(t.m) < maxCheckBuckets {
		return true
	}
	if now.Sub(t.lastSweep) < time.Minute {
		return false
	}
	t.lastSweep = now
	for k := range t.m {
		if t.tokens(k, now) >= t.perHour {
			delete(t.m, k)
		}
	}
	return len(t.m) < maxCheckBuckets
}

// busyWait is the wait answered when the tables are full.
const busyWait = time.Minute

// LimitShare carries the checks taken to other replicas (the database),
// so that the limits hold across them.
type LimitShare interface {
	// Taken tells the others of a check taken here; it must not block.
	Taken(ip netip.Addr, address string, at time.Time)
	// Follow registers apply for the checks the others took.
	Follow(apply func(ip netip.Addr, address string, at time.Time))
}

// take counts a check another replica took at the time it took it.
func (l *checkLimiter) take(ip netip.Addr, address string, at time.Time) {
	ipKey, addrKey := limitIPKey(ip), strings.ToLower(address)
	now := l.now()
	if at.After(now) {
		at = now
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ip.room(ipKey, now) && l.addr.room(addrKey, now) {
		// The bucket's level now, less one check (a check taken
		// earlier has refilled since: the same as taking it now).
		l.ip.m[ipKey] = tokenBucket{tokens: max(0, l.ip.tokens(ipKey, now)-1), at: now}
		l.addr.m[addrKey] = tokenBucket{tokens: max(0, l.addr.tokens(addrKey, now)-1), at: now}
	}
}

// allow takes one check from the IP's and the address's buckets, or
// neither; when it refuses, wait is how long until a check is allowed.
func (l *checkLimiter) allow(ip netip.Addr, address string) (wait time.Duration, ok bool) {
	ipKey, addrKey := limitIPKey(ip), strings.ToLower(address)
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	ti, ta := l.ip.tokens(ipKey, now), l.addr.tokens(addrKey, now)
	if ti < 1 || ta < 1 {
		return max(l.ip.wait(ti), l.addr.wait(ta)), false
	}
	if !l.ip.room(ipKey, now) || !l.addr.room(addrKey, now) {
		return busyWait, false
	}
	l.ip.m[ipKey] = tokenBucket{tokens: ti - 1, at: now}
	l.addr.m[addrKey] = tokenBucket{tokens: ta - 1, at: now}
	return 0, true
}

// limitIPKey is the client's address, IPv6 by its /64 (one customer's
// network).
func limitIPKey(ip netip.Addr) string {
	ip = ip.Unmap()
	if !ip.IsValid() {
		return "unknown"
	}
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// allow is the limiter's allow, telling other replicas of a check taken.
func (a *Pages) allow(ip netip.Addr, address string) (time.Duration, bool) {
	wait, ok := a.limits.allow(ip, address)
	if ok && a.share != nil {
		a.share.Taken(ip, address, a.limits.now())
	}
	return wait, ok
}
