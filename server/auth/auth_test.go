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
	return auth.New(auth.Options{Accounts: store, IsLocal: isLocal, Events: rec, Now: now, Throttle: auth.ThrottleOptions{IPLimit: 3, AccountLimit: 5, Window: time.Minute}}), store, rec
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
	if rec.got[0].Form != string(auth.FormLocalPart) || rec.got[0].Result != "username-form" || rec.got[0].Proto != "pop3" {
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
	if th.Blocked(a, "") == 0 || th.Blocked(b, "") == 0 || th.Blocked(netip.Addr{}, "john@johndoe.com") == 0 {
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
