package check

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"mailsetup/autoconfig"
	"mailsetup/internal/testkit"
)

type onePolicy struct{ p autoconfig.Policy }

func (o onePolicy) Policy(d string) (autoconfig.Policy, bool) { return o.p, d == o.p.Domain }
func (o onePolicy) Policies() []autoconfig.Policy             { return []autoconfig.Policy{o.p} }

// TestChecksBounded: when every check slot is taken, another check waits
// a little and then answers busy; it never runs.
func TestChecksBounded(t *testing.T) {
	a := New(Options{Policies: onePolicy{testkit.IMAPFirst()}})
	for range cap(a.slots) {
		a.slots <- struct{}{}
	}
	start := time.Now()
	res, err := a.Run(context.Background(), Request{Address: "john@example.com", Remote: netip.MustParseAddr("127.0.0.1"), Source: "api"})
	if !errors.Is(err, ErrBusy) || res.Report != nil {
		t.Fatalf("check with every slot taken: %v, %+v", err, res)
	}
	if d := time.Since(start); d < checkQueueWait {
		t.Errorf("answered busy after %v, before waiting %v", d, checkQueueWait)
	}
	// A check whose request is cancelled while waiting stops waiting.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := a.Run(ctx, Request{Address: "john@example.com", Source: "api"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("cancelled while waiting: %v", err)
	}
}
