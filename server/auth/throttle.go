package auth

import (
	"net/netip"
	"strings"
	"sync"
	"time"
)

// ThrottleOptions bound failed logins. Each limit is a leaky bucket: it
// fills by one per failure and drains at Limit per Window, so a client
// may fail Limit times in a burst and then about Limit times per Window.
type ThrottleOptions struct {
	// IPLimit failures per Window from one address (IPv6: its /64).
	// Default 10.
	IPLimit int
	// AccountLimit failures per Window against one account from any
	// address. Default 30 (higher, so that one attacker cannot lock a
	// user out as easily as he locks himself out).
	AccountLimit int
	// Window, default 10 minutes.
	Window time.Duration
}

// Throttle counts failed logins per remote address and per account. It is
// shared by every protocol and by the web self-check.
type Throttle struct {
	opts ThrottleOptions
	now  func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	level float64
	last  time.Time
}

// maxBuckets bounds the throttle's memory.
const maxBuckets = 200_000

// NewThrottle returns a throttle; now may be nil.
func NewThrottle(opts ThrottleOptions, now func() time.Time) *Throttle {
	if opts.IPLimit <= 0 {
		opts.IPLimit = 10
	}
	if opts.AccountLimit <= 0 {
		opts.AccountLimit = 30
	}
	if opts.Window <= 0 {
		opts.Window = 10 * time.Minute
	}
	if now == nil {
		now = time.Now
	}
	return &Throttle{opts: opts, now: now, buckets: map[string]*bucket{}}
}

func ipKey(ip netip.Addr) string {
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return "ip:" + p.String()
	}
	return "ip:" + ip.String()
}

func acctKey(a string) string { return "acct:" + strings.ToLower(a) }

// level returns the bucket's drained level now (caller holds mu).
func (t *Throttle) level(key string, limit int, now time.Time) (*bucket, float64) {
	b := t.buckets[key]
	if b == nil {
		return nil, 0
	}
	rate := float64(limit) / t.opts.Window.Seconds()
	l := b.level - now.Sub(b.last).Seconds()*rate
	if l < 0 {
		l = 0
	}
	return b, l
}

// wait is how long until the bucket is below its limit.
func (t *Throttle) wait(key string, limit int, now time.Time) time.Duration {
	_, l := t.level(key, limit, now)
	if l < float64(limit) {
		return 0
	}
	rate := float64(limit) / t.opts.Window.Seconds()
	return time.Duration((l - float64(limit) + 1) / rate * float64(time.Second))
}

// Blocked returns how long the remote address or the account must wait
// before another attempt is even checked; 0 means go ahead.
func (t *Throttle) Blocked(ip netip.Addr, account string) time.Duration {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	w := t.wait(ipKey(ip), t.opts.IPLimit, now)
	if account != "" {
		w = max(w, t.wait(acctKey(account), t.opts.AccountLimit, now))
	}
	return w
}

// Fail records a failed attempt.
func (t *Throttle) Fail(ip netip.Addr, account string) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.add(ipKey(ip), t.opts.IPLimit, now)
	if account != "" {
		t.add(acctKey(account), t.opts.AccountLimit, now)
	}
}

func (t *Throttle) add(key string, limit int, now time.Time) {
	b, l := t.level(key, limit, now)
	if b == nil {
		t.sweep(now)
		b = &bucket{}
		t.buckets[key] = b
	}
	b.level, b.last = l+1, now
}

// sweep drops drained buckets when the map is large (caller holds mu).
func (t *Throttle) sweep(now time.Time) {
	if len(t.buckets) < maxBuckets {
		return
	}
	for k, b := range t.buckets {
		if now.Sub(b.last) > t.opts.Window {
			delete(t.buckets, k)
		}
	}
	// Still full of active attackers: forget the oldest half at random
	// rather than grow without bound.
	for k := range t.buckets {
		if len(t.buckets) < maxBuckets/2 {
			break
		}
		delete(t.buckets, k)
	}
}

// Clear forgets the failures counted against an account and against each
// of the addresses: support lifts a block once the customer has fixed
// the password on every device. An invalid address or an empty account
// is skipped.
func (t *Throttle) Clear(account string, ips ...netip.Addr) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if account != "" {
		delete(t.buckets, acctKey(account))
	}
	for _, ip := range ips {
		if ip.IsValid() {
			delete(t.buckets, ipKey(ip))
		}
	}
}
