package auth_test

import (
	"context"
	"errors"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailsetup/server/accounts"
	"mailsetup/server/auth"
	"mailsetup/server/events"
)

func isLocal(d string) bool { return d == "johndoe.com" }

func TestClassify(t *testing.T) {
	tests := []struct {
		in      string
		form    auth.Form
		suggest string
	}{
		{"john@johndoe.com", auth.FormFull, "john@johndoe.com"},
		{"John@JohnDoe.com", auth.FormFull, "John@johndoe.com"},
		{"john", auth.FormLocalPart, ""},
		{"john/johndoe.com", auth.FormSeparator, "john@johndoe.com"},
		{"john%johndoe.com", auth.FormSeparator, "john@johndoe.com"},
		{`johndoe.com\john`, auth.FormSeparator, "john@johndoe.com"},
		{"john+johndoe.com", auth.FormSeparator, "john@johndoe.com"},
		{"john:johndoe.com", auth.FormSeparator, "john@johndoe.com"},
		{"john/other.example", auth.FormSeparator, ""},
		{`OTHER\john`, auth.FormSeparator, ""},
		{"john@other.example", auth.FormUnknownDomain, ""},
		{"", auth.FormMalformed, ""},
		{"john@", auth.FormMalformed, ""},
	}
	for _, tt := range tests {
		form, s := auth.Classify(tt.in, isLocal)
		if form != tt.form || s != tt.suggest {
			t.Errorf("Classify(%q) = %s %q, want %s %q", tt.in, form, s, tt.form, tt.suggest)
		}
	}
}

type recorder struct{ got []events.Event }

func (r *recorder) Emit(e events.Event) { r.got = append(r.got, e) }

func newAuth(t *testing.T, now func() time.Time) (*auth.Authenticator, *accounts.Store, *recorder) {
	t.Helper()
	store, err := accounts.Open(filepath.Join(t.TempDir(), "accounts.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Add("john@johndoe.com", "correct horse"); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	return auth.New(auth.Options{Accounts: store, IsLocal: isLocal, Events: rec, Now: now, Throttle: auth.ThrottleOptions{IPLimit: 3, AccountLimit: 5, NewAddressLimit: 3, Window: time.Minute}}), store, rec
}

var ip = netip.MustParseAddr("203.0.113.7")

func TestUsernameFormsGetTheFixWhetherOrNotTheAccountExists(t *testing.T) {
	a, _, rec := newAuth(t, nil)
	for _, u := range []string{"john", "nobody", "john/johndoe.com", "nobody/johndoe.com"} {
		_, err := a.Authenticate(context.Background(), auth.Attempt{Proto: "pop3", Remote: ip, Username: u, Password: "correct horse"})
		var fe *auth.FormError
		if !errors.As(err, &fe) || !strings.Contains(err.Error(), "use your full email address") {
			t.Errorf("%q: %v", u, err)
		}
	}
	// Same text shape for an existing and a missing account.
	_, e1 := a.Authenticate(context.Background(), auth.Attempt{Remote: ip, Username: "john"})
	_, e2 := a.Authenticate(context.Background(), auth.Attempt{Remote: ip, Username: "nobody"})
	if strings.ReplaceAll(e1.Error(), "john", "X") != strings.ReplaceAll(e2.Error(), "nobody", "X") {
		t.Errorf("texts differ: %q vs %q", e1, e2)
	}
	// Wrong forms are never throttled: a misconfigured client keeps
	// getting the fix.
	for i := 0; i < 20; i++ {
		if _, err := a.Authenticate(context.Background(), auth.Attempt{Remote: ip, Username: "john"}); !errors.As(err, new(*auth.FormError)) {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	if rec.got[0].Form != auth.FormLocalPart || rec.got[0].Result != "username-form" || rec.got[0].Proto != "pop3" {
		t.Errorf("event %+v", rec.got[0])
	}
}

func TestThrottleAndRecovery(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	a, _, rec := newAuth(t, clock)
	try := func(pw string) error {
		_, err := a.Authenticate(context.Background(), auth.Attempt{Proto: "imap", Remote: ip, Username: "john@johndoe.com", Password: pw})
		return err
	}
	for i := 0; i < 3; i++ {
		if err := try("wrong"); !errors.Is(err, auth.ErrBadCredentials) {
			t.Fatalf("failure %d: %v", i, err)
		}
	}
	err := try("correct horse")
	var te *auth.ThrottledError
	if !errors.As(err, &te) || te.RetryAfter <= 0 || !strings.Contains(err.Error(), "try again in") {
		t.Fatalf("fourth attempt: %v", err)
	}
	if rec.got[len(rec.got)-1].Result != "throttled" {
		t.Errorf("event %+v", rec.got[len(rec.got)-1])
	}
	// Another address is not blocked by this one's failures.
	if _, err := a.Authenticate(context.Background(), auth.Attempt{Remote: netip.MustParseAddr("198.51.100.1"), Username: "john@johndoe.com", Password: "correct horse"}); err != nil {
		t.Errorf("other address: %v", err)
	}
	now = now.Add(te.RetryAfter)
	if err := try("correct horse"); err != nil {
		t.Errorf("after waiting: %v", err)
	}
}

func TestCacheInvalidatedByPasswordChange(t *testing.T) {
	a, store, _ := newAuth(t, nil)
	login := func(pw string) error {
		_, err := a.Authenticate(context.Background(), auth.Attempt{Remote: ip, Username: "john@johndoe.com", Password: pw})
		return err
	}
	if err := login("correct horse"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for i := 0; i < 50; i++ {
		if err := login("correct horse"); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("50 cached logins: %v", time.Since(start))
	if err := store.SetPassword("john@johndoe.com", "battery staple"); err != nil {
		t.Fatal(err)
	}
	if err := login("correct horse"); !errors.Is(err, auth.ErrBadCredentials) {
		t.Errorf("old password after change: %v", err)
	}
	if err := login("battery staple"); err != nil {
		t.Errorf("new password: %v", err)
	}
}

func TestUnknownAccountIsBadCredentials(t *testing.T) {
	a, _, _ := newAuth(t, nil)
	if _, err := a.Authenticate(context.Background(), auth.Attempt{Remote: ip, Username: "nobody@johndoe.com", Password: "x"}); !errors.Is(err, auth.ErrBadCredentials) {
		t.Errorf("%v", err)
	}
}

func BenchmarkLoginCached(b *testing.B) {
	store, _ := accounts.Open(filepath.Join(b.TempDir(), "a.json"))
	store.Add("john@johndoe.com", "correct horse")
	a := auth.New(auth.Options{Accounts: store, IsLocal: isLocal})
	at := auth.Attempt{Remote: ip, Username: "john@johndoe.com", Password: "correct horse"}
	for b.Loop() {
		if _, err := a.Authenticate(context.Background(), at); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLoginUncached(b *testing.B) {
	store, _ := accounts.Open(filepath.Join(b.TempDir(), "a.json"))
	store.Add("john@johndoe.com", "correct horse")
	a := auth.New(auth.Options{Accounts: store, IsLocal: isLocal, CacheTTL: -1})
	at := auth.Attempt{Remote: ip, Username: "john@johndoe.com", Password: "correct horse"}
	for b.Loop() {
		if _, err := a.Authenticate(context.Background(), at); err != nil {
			b.Fatal(err)
		}
	}
}

// TestThrottleClear: support lifts a block; the account and the named
// address may log in at once, other addresses' counts stay.
func TestThrottleClear(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	th := auth.NewThrottle(auth.ThrottleOptions{IPLimit: 2, AccountLimit: 3, Window: time.Hour}, func() time.Time { return now })
	a, b := netip.MustParseAddr("203.0.113.7"), netip.MustParseAddr("2001:db8::1")
	for i := 0; i < 3; i++ {
		th.Fail(a, "john@johndoe.com")
		th.Fail(b, "")
	}
	if failed, fresh := th.AccountWait("john@johndoe.com"); th.Blocked(a, "") == 0 || th.Blocked(b, "") == 0 || failed+fresh == 0 {
		t.Fatal("not blocked")
	}
	th.Clear("John@JohnDoe.com", a, netip.Addr{})
	if w := th.Blocked(a, "john@johndoe.com"); w != 0 {
		t.Errorf("after Clear: still blocked for %v", w)
	}
	if th.Blocked(b, "") == 0 {
		t.Error("Clear forgot another address")
	}
}

// The attack: 31 wrong passwords against the account from a mix
// of addresses, then one every 10 s from 8 rotating addresses, each under
// its own limit. The owner's client, which logged in before, is never
// refused; a new device of the owner's gets in at once; the attacker's
// checked passwords stay within the documented bound.
func TestStrangerCannotLockTheOwnerOut(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	store, err := accounts.Open(filepath.Join(t.TempDir(), "accounts.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Add("john@johndoe.com", "correct horse"); err != nil {
		t.Fatal(err)
	}
	a := auth.New(auth.Options{Accounts: store, IsLocal: isLocal, Now: func() time.Time { return now }})
	login := func(from netip.Addr, pw string) error {
		_, err := a.Authenticate(context.Background(), auth.Attempt{Proto: "pop3", Remote: from, Username: "john@johndoe.com", Password: pw})
		return err
	}
	owner := netip.MustParseAddr("198.51.100.10")
	if err := login(owner, "correct horse"); err != nil {
		t.Fatal(err)
	}
	checked := 0 // wrong passwords actually checked
	attack := func(from netip.Addr) {
		if err := login(from, "guess"); errors.Is(err, auth.ErrBadCredentials) {
			checked++
		}
	}
	attackers := make([]netip.Addr, 8)
	for i := range attackers {
		attackers[i] = netip.AddrFrom4([4]byte{203, 0, 113, byte(i + 1)})
	}
	for i := 0; i < 31; i++ {
		attack(attackers[i%len(attackers)])
		now = now.Add(100 * time.Millisecond)
	}
	refused := 0
	for step := 0; step < 15*6; step++ { // 15 minutes, one guess per 10 s
		attack(attackers[step%len(attackers)])
		if err := login(owner, "correct horse"); err != nil {
			refused++
		}
		now = now.Add(10 * time.Second)
	}
	if refused != 0 {
		t.Errorf("the owner's known client was refused %d times", refused)
	}
	// 18 minutes in all: the bound is (AccountLimit+NewAddressLimit) per
	// window plus the bursts: 40 + 40*18/10 = 112; in fact far fewer,
	// since the rotating addresses are held off once the account's
	// bucket is full.
	if bound := 40 + 40*18/10; checked > bound {
		t.Errorf("the attacker had %d passwords checked, more than %d", checked, bound)
	}
	t.Logf("attacker: %d passwords checked in 16 minutes", checked)
	if err := login(netip.MustParseAddr("192.0.2.77"), "correct horse"); err != nil {
		t.Errorf("the owner's new device: %v", err)
	}
}

// An attacker with a fresh address for every guess fills the bucket for
// new addresses; the owner's new device then waits at most
// Window/NewAddressLimit for a check.
func TestBotnetDelaysNewDevicesByABoundedTime(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	th := auth.NewThrottle(auth.ThrottleOptions{}, func() time.Time { return now })
	const acct = "john@johndoe.com"
	for i := 0; i < 100; i++ {
		from := netip.AddrFrom4([4]byte{203, 0, byte(i / 250), byte(i%250 + 1)})
		if th.Blocked(from, acct) == 0 {
			th.Fail(from, acct)
		}
	}
	device := netip.MustParseAddr("192.0.2.77")
	w := th.Blocked(device, acct)
	if w <= 0 || w > time.Minute {
		t.Fatalf("a new device waits %v, want (0, 1m]", w)
	}
	now = now.Add(w)
	if w := th.Blocked(device, acct); w != 0 {
		t.Errorf("after the announced wait, still %v", w)
	}
}

// Exactly the documented number of passwords is checked, and "try again
// in N" is when the next one is.
func TestThrottleChecksExactlyTheLimit(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	th := auth.NewThrottle(auth.ThrottleOptions{}, func() time.Time { return now })
	from := netip.MustParseAddr("203.0.113.9")
	n := 0
	for th.Blocked(from, "") == 0 && n < 100 {
		th.Fail(from, "")
		n++
		now = now.Add(time.Second)
	}
	if n != 10 {
		t.Errorf("%d failures checked from one address, want 10", n)
	}
	w := th.Blocked(from, "")
	if w < 45*time.Second || w > time.Minute {
		t.Errorf("wait %v, want about a minute (one per 10 minutes / 10)", w)
	}
	now = now.Add(w - time.Second)
	if th.Blocked(from, "") == 0 {
		t.Error("allowed a second before the announced time")
	}
	now = now.Add(time.Second)
	if got := th.Blocked(from, ""); got != 0 {
		t.Errorf("at the announced time still blocked for %v", got)
	}

	// The account: 30 from addresses that failed before, 10 new ones.
	acct := "john@johndoe.com"
	checked := 0
	for i := 0; i < 300; i++ {
		from := netip.AddrFrom4([4]byte{198, 51, 100, byte(i%20 + 1)})
		if th.Blocked(from, acct) == 0 {
			th.Fail(from, acct)
			checked++
		}
	}
	if checked != 40 {
		t.Errorf("%d failures checked against one account from 20 addresses, want 30+10", checked)
	}
}

// TestThrottleSetLimits: a reload's lower limit blocks an address that
// already has as many failures; the counts so far stay.
func TestThrottleSetLimits(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	th := auth.NewThrottle(auth.ThrottleOptions{}, func() time.Time { return now })
	from := netip.MustParseAddr("203.0.113.9")
	for range 3 {
		th.Fail(from, "")
	}
	if th.Blocked(from, "") != 0 {
		t.Fatal("blocked after 3 of 10 failures")
	}
	th.SetLimits(3, 0, 0, 0)
	if th.Blocked(from, "") == 0 {
		t.Error("not blocked after a reload set login_failures_per_ip to 3 with 3 failures counted")
	}
	if o := th.Options(); o.IPLimit != 3 || o.AccountLimit != 30 || o.NewAddressLimit != 10 || o.Window != 10*time.Minute {
		t.Errorf("limits after SetLimits(3, 0, 0, 0): %+v, want the defaults for the zeros", o)
	}
}
