package auth

import (
	"context"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// ThrottleOptions bound failed logins. Each limit is a leaky bucket: it
// fills by one per failure and drains at Limit per Window, so a client
// may fail Limit times in a burst and then about Limit times per Window.
//
// Why three buckets, and why the account's limits spare known addresses:
// an account-wide limit that refuses every address lets a stranger lock
// the owner out of their own mail with one wrong password every 20
// seconds, from anywhere. So the account-wide limits apply only to
// addresses that have not logged in to the account lately. The owner's
// clients, which log in every few minutes from the same address, never
// meet them; a stranger, who cannot log in, always does.
//
//   - Per address (IPv4, or the /64 of IPv6): IPLimit failures, then
//     refused before any check. Applies to every address, known or not.
//   - Per account, addresses that already failed against it within
//     Window: AccountLimit failures together, then they are refused.
//     This is where a rotating attacker ends up after his first try
//     from each address.
//   - Per account, addresses with no failure against it within Window
//     (a new device of the owner's, or a stranger's first try):
//     NewAddressLimit failures together, then they are refused until
//     the bucket drains one. An attacker who rotates through fewer than
//     NewAddressLimit addresses per Window never fills it, so the owner's
//     new device gets in at once; one who has more addresses than that
//     competes with it for one check per Window/NewAddressLimit.
//
// So per Window an account sees at most AccountLimit+NewAddressLimit
// checked wrong passwords from addresses that have not logged in to it
// (twice that in the first Window, the bursts), and each address at most
// IPLimit (2×IPLimit in the first Window).
type ThrottleOptions struct {
	// IPLimit failures per Window from one address (IPv6: its /64).
	// Default 10.
	IPLimit int
	// AccountLimit failures per Window against one account from the
	// addresses that already failed against it. Default 30.
	AccountLimit int
	// NewAddressLimit failures per Window against one account from
	// addresses that had not failed against it. Default AccountLimit/3
	// (at least 1).
	NewAddressLimit int
	// Window, default 10 minutes.
	Window time.Duration
	// KnownFor is how long an address that logged in to an account stays
	// exempt from the account's limits. Default 30 days.
	KnownFor time.Duration
	// Logger is told when a bucket starts refusing; nil logs nothing.
	Logger *slog.Logger
	// What names the throttled thing in log lines ("login",
	// "staff sign-in"). Default "login".
	What string
	// Share, when set, is told every failure, success and clear, to
	// carry them to the other replicas, whose throttles Apply them.
	Share ThrottleShare
}

// ThrottleShare carries a throttle's changes to other replicas (through
// the database). Publish must not block for long: it is called on the
// login path, after a failed check.
type ThrottleShare interface {
	Publish(ThrottleEvent)
	// Sync applies what other replicas published until now; called
	// before a login that is not in the credential cache (which costs a
	// password hash anyway), never for a cached one.
	Sync(ctx context.Context)
}

// ThrottleEvent is one change of a throttle, as carried between
// replicas.
type ThrottleEvent struct {
	// What is the throttle's ThrottleOptions.What ("login", ...).
	What    string       `json:"what"`
	Op      string       `json:"op"` // "fail", "succeed", "clear"
	At      time.Time    `json:"at"`
	IP      netip.Addr   `json:"ip,omitzero"`
	Account string       `json:"account,omitempty"`
	IPs     []netip.Addr `json:"ips,omitempty"` // "clear"
}

// Apply makes a change another replica published, as of its time.
func (t *Throttle) Apply(ev ThrottleEvent) {
	at := ev.At
	if at.IsZero() || at.After(t.now()) {
		at = t.now()
	}
	switch ev.Op {
	case "fail":
		t.fail(ev.IP, ev.Account, at)
	case "succeed":
		t.succeed(ev.IP, ev.Account, at)
	case "clear":
		t.clear(ev.Account, ev.IPs)
	}
}

func (t *Throttle) publish(ev ThrottleEvent) {
	if t.opts.Share != nil {
		ev.What = t.opts.What
		t.opts.Share.Publish(ev)
	}
}

// Throttle counts failed logins per remote address and per account. It is
// shared by every protocol and by the web self-check.
type Throttle struct {
	opts ThrottleOptions
	now  func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
	// known: "account\x00addr" -> last successful login from there.
	known map[string]time.Time
	// failed: "account\x00addr" -> last failure from there.
	failed map[string]time.Time
}

type bucket struct {
	level float64
	last  time.Time
}

// maxBuckets bounds the throttle's memory (each of its maps).
const maxBuckets = 200_000

// NewThrottle returns a throttle; now may be nil.
func NewThrottle(opts ThrottleOptions, now func() time.Time) *Throttle {
	if opts.IPLimit <= 0 {
		opts.IPLimit = 10
	}
	if opts.AccountLimit <= 0 {
		opts.AccountLimit = 30
	}
	if opts.NewAddressLimit <= 0 {
		opts.NewAddressLimit = max(1, opts.AccountLimit/3)
	}
	if opts.Window <= 0 {
		opts.Window = 10 * time.Minute
	}
	if opts.KnownFor <= 0 {
		opts.KnownFor = 30 * 24 * time.Hour
	}
	if opts.What == "" {
		opts.What = "login"
	}
	if now == nil {
		now = time.Now
	}
	return &Throttle{opts: opts, now: now, buckets: map[string]*bucket{},
		known: map[string]time.Time{}, failed: map[string]time.Time{}}
}

// Sync applies the other replicas' changes now (see ThrottleShare).
func (t *Throttle) Sync(ctx context.Context) {
	if t.opts.Share != nil {
		t.opts.Share.Sync(ctx)
	}
}

// Options returns the limits in effect (defaults filled in).
func (t *Throttle) Options() ThrottleOptions {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.opts
}

// SetLimits changes IPLimit, AccountLimit, NewAddressLimit and Window
// (a config reload); zero values take the defaults as in NewThrottle.
// The counts so far stay: a bucket drains at the new rate from now on.
func (t *Throttle) SetLimits(ipLimit, accountLimit, newAddressLimit int, window time.Duration) {
	n := NewThrottle(ThrottleOptions{IPLimit: ipLimit, AccountLimit: accountLimit, NewAddressLimit: newAddressLimit, Window: window}, nil).opts
	t.mu.Lock()
	defer t.mu.Unlock()
	t.opts.IPLimit, t.opts.AccountLimit, t.opts.NewAddressLimit, t.opts.Window = n.IPLimit, n.AccountLimit, n.NewAddressLimit, n.Window
}

func addrKey(ip netip.Addr) string {
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

func ipKey(ip netip.Addr) string { return "ip:" + addrKey(ip) }

func acctKey(a string) string    { return "acct:" + strings.ToLower(a) }
func newAddrKey(a string) string { return "new:" + strings.ToLower(a) }
func pairKey(a string, ip netip.Addr) string {
	return strings.ToLower(a) + "\x00" + addrKey(ip)
}

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

// wait is how long until the bucket has room for one more failure: a
// bucket of limit L allows exactly L checked failures in a burst.
func (t *Throttle) wait(key string, limit int, now time.Time) time.Duration {
	_, l := t.level(key, limit, now)
	over := l + 1 - float64(limit)
	if over <= 1e-9 {
		return 0
	}
	rate := float64(limit) / t.opts.Window.Seconds()
	return time.Duration(over / rate * float64(time.Second))
}

// accountBucket is the account bucket an address is subject to: "" for
// an address that logged in to the account lately (caller holds mu).
func (t *Throttle) accountBucket(ip netip.Addr, account string, now time.Time) (string, int) {
	if account == "" {
		return "", 0
	}
	if ip.IsValid() {
		k := pairKey(account, ip)
		if ok, hit := t.known[k]; hit && now.Sub(ok) < t.opts.KnownFor {
			return "", 0
		}
		if f, hit := t.failed[k]; !hit || now.Sub(f) >= t.opts.Window {
			return newAddrKey(account), t.opts.NewAddressLimit
		}
	}
	return acctKey(account), t.opts.AccountLimit
}

// Blocked returns how long the remote address must wait before another
// attempt at the account is even checked; 0 means go ahead. An address
// that logged in to the account lately is subject only to its own limit.
func (t *Throttle) Blocked(ip netip.Addr, account string) time.Duration {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	var w time.Duration
	if ip.IsValid() {
		w = t.wait(ipKey(ip), t.opts.IPLimit, now)
	}
	if key, limit := t.accountBucket(ip, account, now); key != "" {
		w = max(w, t.wait(key, limit, now))
	}
	return w
}

// AccountWait is how long the account's limits hold off addresses that
// have not logged in to it: those that already failed against it, and
// new ones. Zero for both means nobody is held off.
func (t *Throttle) AccountWait(account string) (failed, fresh time.Duration) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.wait(acctKey(account), t.opts.AccountLimit, now), t.wait(newAddrKey(account), t.opts.NewAddressLimit, now)
}

// Fail records a failed attempt.
func (t *Throttle) Fail(ip netip.Addr, account string) {
	now := t.now()
	t.fail(ip, account, now)
	t.publish(ThrottleEvent{Op: "fail", At: now, IP: ip, Account: account})
}

func (t *Throttle) fail(ip netip.Addr, account string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if ip.IsValid() {
		if t.add(ipKey(ip), t.opts.IPLimit, now) {
			t.logBlock("address", ip.String(), ipKey(ip), t.opts.IPLimit, now)
		}
	}
	key, limit := t.accountBucket(ip, account, now)
	if key == "" {
		return
	}
	if t.add(key, limit, now) {
		what := "addresses that failed against the account"
		if key == newAddrKey(account) {
			what = "new addresses of the account"
		}
		t.logBlock(what, account, key, limit, now)
	}
	if ip.IsValid() {
		t.mark(t.failed, pairKey(account, ip), now, t.opts.Window)
	}
}

// Succeed records a successful login: from now on, for KnownFor, the
// address is not subject to the account's limits.
func (t *Throttle) Succeed(ip netip.Addr, account string) {
	if !ip.IsValid() || account == "" {
		return
	}
	now := t.now()
	t.mu.Lock()
	last, known := t.known[pairKey(account, ip)]
	t.mu.Unlock()
	t.succeed(ip, account, now)
	// Other replicas need to hear of a known address only now and then:
	// a client's every poll would otherwise cost a database write.
	if !known || now.Sub(last) >= shareKnownEvery {
		t.publish(ThrottleEvent{Op: "succeed", At: now, IP: ip, Account: account})
	}
}

// shareKnownEvery is how often a known address's logins are shared.
const shareKnownEvery = time.Hour

func (t *Throttle) succeed(ip netip.Addr, account string, now time.Time) {
	if !ip.IsValid() || account == "" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	k := pairKey(account, ip)
	delete(t.failed, k)
	t.mark(t.known, k, now, t.opts.KnownFor)
}

// mark sets m[k] = now, keeping m bounded (caller holds mu).
func (t *Throttle) mark(m map[string]time.Time, k string, now time.Time, ttl time.Duration) {
	if _, ok := m[k]; !ok && len(m) >= maxBuckets {
		for old, at := range m {
			if now.Sub(at) >= ttl {
				delete(m, old)
			}
		}
		for old := range m { // still full: forget some at random
			if len(m) < maxBuckets*9/10 {
				break
			}
			delete(m, old)
		}
	}
	m[k] = now
}

// add fills a bucket by one and reports whether it just became full
// (caller holds mu).
func (t *Throttle) add(key string, limit int, now time.Time) bool {
	b, l := t.level(key, limit, now)
	if b == nil {
		t.sweep(now)
		b = &bucket{}
		t.buckets[key] = b
	}
	b.level, b.last = l+1, now
	full := float64(limit-1) + 1e-9
	return l <= full && l+1 > full
}

func (t *Throttle) logBlock(what, who, key string, limit int, now time.Time) {
	if t.opts.Logger == nil {
		return
	}
	t.opts.Logger.Warn(t.opts.What+" throttle: refusing "+what, "who", who, "failures", limit,
		"window", t.opts.Window, "for", t.wait(key, limit, now).Round(time.Second))
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
	t.clear(account, ips)
	t.publish(ThrottleEvent{Op: "clear", At: t.now(), Account: account, IPs: ips})
}

func (t *Throttle) clear(account string, ips []netip.Addr) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if account != "" {
		delete(t.buckets, acctKey(account))
		delete(t.buckets, newAddrKey(account))
	}
	for _, ip := range ips {
		if ip.IsValid() {
			delete(t.buckets, ipKey(ip))
			if account != "" {
				delete(t.failed, pairKey(account, ip))
			}
		}
	}
}
