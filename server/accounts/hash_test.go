package accounts_test

import (
	"strings"
	"testing"

	"mailsetup/server/accounts"
)

// TestValidHash: only well-formed argon2id strings with sane parameters
// are accepted, so a hand-edited hash cannot make a login take
// gigabytes or fail at sign-in time instead of at start.
func TestValidHash(t *testing.T) {
	good, err := accounts.HashPassword("a long enough password")
	if err != nil {
		t.Fatal(err)
	}
	if err := accounts.ValidHash(good); err != nil {
		t.Fatalf("a fresh hash: %v", err)
	}
	parts := strings.Split(good, "$")
	with := func(i int, v string) string {
		p := append([]string(nil), parts...)
		p[i] = v
		return strings.Join(p, "$")
	}
	for name, h := range map[string]string{
		"empty":         "",
		"bcrypt":        "$2y$10$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234",
		"argon2i":       with(1, "argon2i"),
		"version":       with(2, "v=16"),
		"4 GiB memory":  with(3, "m=4194304,t=2,p=1"),
		"1000 passes":   with(3, "m=19456,t=1000,p=1"),
		"short salt":    with(4, "c2FsdA"),
		"not base64":    with(5, "!!!"),
		"missing parts": "$argon2id$v=19$m=19456,t=2,p=1",
	} {
		if err := accounts.ValidHash(h); err == nil {
			t.Errorf("%s: accepted %q", name, h)
		}
		if ok, err := accounts.CheckPassword(h, "a long enough password"); ok || err == nil {
			t.Errorf("%s: CheckPassword = %v, %v", name, ok, err)
		}
	}
}
