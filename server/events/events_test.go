package events_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"mailsetup/server/events"
)

func TestBusDeliversInOrderAndNeverBlocks(t *testing.T) {
	b := events.NewBus(8)
	release := make(chan struct{})
	var mu sync.Mutex
	var got []string
	b.Subscribe(func(e events.Event) {
		<-release
		mu.Lock()
		got = append(got, e.Account)
		mu.Unlock()
	})
	done := make(chan struct{})
	go func() {
		for i := 0; i < 1000; i++ {
			b.Emit(events.Event{Kind: events.Auth, Account: "a"})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Emit blocked on a stuck subscriber")
	}
	close(release)
	b.Close()
	if b.Dropped() == 0 || uint64(len(got))+b.Dropped() != 1000 {
		t.Errorf("delivered %d, dropped %d", len(got), b.Dropped())
	}
	b.Emit(events.Event{}) // after Close: dropped, no panic
}

// The values are written to logs, metric labels and the observations
// snapshot: they never change, and each list names each value once.
func TestValuesAreStable(t *testing.T) {
	check := func(got []string, want string) {
		t.Helper()
		if s := strings.Join(got, " "); s != want {
			t.Errorf("values = %q, want %q", s, want)
		}
	}
	check(strs(events.Protos()), "imap pop3 smtp submission web")
	check(strs(events.Results()), "ok bad-password username-form throttled auth-required forged-sender relay unknown-recipient too-large over-quota deferred bounced send-limit")
	check(strs(events.Forms()), "full-address local-part wrong-separator unknown-domain malformed")
}

func strs[T ~string](v []T) []string {
	out := make([]string, len(v))
	for i, s := range v {
		out[i] = string(s)
	}
	return out
}
