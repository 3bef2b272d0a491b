package mailbackend

import (
	"testing"
	"time"
)

// TestSendLimitWindow: the limit counts recipients over the last hour,
// per account (any letter case), says when the next may go, and frees
// a minute's recipients an hour later.
func TestSendLimitWindow(t *testing.T) {
	now := time.Date(2026, 12, 7, 10, 0, 30, 0, time.UTC)
	l := NewSendLimit(3)
	l.now = func() time.Time { return now }
	for i := range 2 {
		if ok, _, _ := l.AllowRecipient("alice@example.test"); !ok {
			t.Fatalf("recipient %d refused", i+1)
		}
	}
	now = now.Add(20 * time.Minute)
	if ok, _, _ := l.AllowRecipient("ALICE@example.test"); !ok {
		t.Fatal("the third recipient was refused")
	}
	ok, limit, wait := l.AllowRecipient("alice@example.test")
	if ok || limit != 3 || wait != 40*time.Minute-30*time.Second {
		t.Fatalf("the fourth: ok %v, limit %d, wait %v; want refused, 3, 39m30s", ok, limit, wait)
	}
	if ok, _, _ := l.AllowRecipient("bob@example.test"); !ok {
		t.Fatal("another account was refused")
	}
	if sent, _ := l.Sent("alice@example.test"); sent != 3 {
		t.Errorf("sent %d, want 3 (a refused recipient does not count)", sent)
	}
	now = now.Add(40 * time.Minute) // the first two leave the window
	for i := range 2 {
		if ok, _, _ := l.AllowRecipient("alice@example.test"); !ok {
			t.Fatalf("an hour later, recipient %d refused", i+1)
		}
	}
	if ok, _, _ := l.AllowRecipient("alice@example.test"); ok {
		t.Fatal("over the limit again, accepted")
	}
	now = now.Add(2 * time.Hour)
	l.AllowRecipient("carol@example.test")
	if len(l.accounts) != 1 {
		t.Errorf("%d accounts remembered after two idle hours, want 1", len(l.accounts))
	}
}
