package selfhelp

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

func TestCheckLimiterRefills(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	l := newCheckLimiter(30, 10, func() time.Time { return now })
	ip := netip.MustParseAddr("192.0.2.1")
	for i := range 10 {
		if _, ok := l.allow(ip, "John@Example.com"); !ok {
			t.Fatalf("check %d refused", i)
		}
	}
	wait, ok := l.allow(ip, "john@example.com")
	if ok || wait <= 5*time.Minute || wait > 6*time.Minute {
		t.Fatalf("11th check: ok %v, wait %v (want about 6 minutes: 10 per hour)", ok, wait)
	}
	now = now.Add(wait)
	if _, ok := l.allow(ip, "john@example.com"); !ok {
		t.Error("refused after the announced wait")
	}
	if _, ok := l.allow(ip, "john@example.com"); ok {
		t.Error("a second check right after one token refilled")
	}
}

func TestCheckLimiterPerIP(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	l := newCheckLimiter(30, 10, func() time.Time { return now })
	ip := netip.MustParseAddr("2001:db8:1:2::1")
	for i := range 30 {
		if _, ok := l.allow(ip, fmt.Sprintf("u%d@example.com", i)); !ok {
			t.Fatalf("check %d refused", i)
		}
	}
	// The same /64 shares the bucket; another network does not.
	if _, ok := l.allow(netip.MustParseAddr("2001:db8:1:2:ffff::9"), "other@example.com"); ok {
		t.Error("the 31st check from one /64 in the hour was allowed")
	}
	if _, ok := l.allow(netip.MustParseAddr("2001:db8:1:3::1"), "other@example.com"); !ok {
		t.Error("another /64 was refused")
	}
	// A refused check takes nothing from the address's bucket.
	for i := range 10 {
		if _, ok := l.allow(netip.MustParseAddr("192.0.2.9"), "u0@example.com"); !ok && i < 9 {
			t.Fatalf("u0 from another IP refused at %d", i)
		}
	}
}

func TestCheckLimiterMemoryBounded(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	l := newCheckLimiter(1000, 1000, func() time.Time { return now })
	for i := range maxCheckBuckets + 100 {
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		l.allow(ip, fmt.Sprintf("u%d@example.com", i))
	}
	if len(l.ip.m) > maxCheckBuckets {
		t.Fatalf("%d buckets, bound %d", len(l.ip.m), maxCheckBuckets)
	}
	// Full and nothing refilled: a new client waits (fail closed).
	if wait, ok := l.allow(netip.MustParseAddr("192.0.2.200"), "b@example.com"); ok || wait != busyWait {
		t.Errorf("new client with full tables: ok %v wait %v", ok, wait)
	}
	// An hour later every bucket has refilled and is swept.
	now = now.Add(time.Hour)
	if _, ok := l.allow(netip.MustParseAddr("192.0.2.200"), "b@example.com"); !ok {
		t.Error("refused after the buckets refilled")
	}
	if len(l.ip.m) != 1 {
		t.Errorf("%d buckets left after the sweep", len(l.ip.m))
	}
}

// TestCheckLimiterSet: a reload's lower limit refuses an address that
// already had as many checks; a raised one lets it in again.
func TestCheckLimiterSet(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	l := newCheckLimiter(30, 10, func() time.Time { return now })
	ip := netip.MustParseAddr("192.0.2.1")
	for i := range 3 {
		if _, ok := l.allow(ip, "john@example.com"); !ok {
			t.Fatalf("check %d refused", i)
		}
	}
	l.set(30, 3)
	if _, ok := l.allow(ip, "john@example.com"); ok {
		t.Error("a 4th check allowed after the limit was lowered to 3 an hour")
	}
	l.set(30, 10)
	if _, ok := l.allow(ip, "john@example.com"); !ok {
		t.Error("refused after the limit was raised back to 10")
	}
}
