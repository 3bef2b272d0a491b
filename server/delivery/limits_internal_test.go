package delivery

import (
	"context"
	"slices"
	"testing"
	"time"
)

// TestSetLimits: a session waiting for a connection slot gets one as
// soon as a reload raises the limit; zero values take the defaults.
func TestSetLimits(t *testing.T) {
	a := &Agent{perDomain: map[string]*slots{}}
	a.limits.Store(&Limits{MaxConnections: 1, MaxPerDomain: 1})
	release, err := a.domainSlot(context.Background(), "a.example")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	if _, err := a.domainSlot(ctx, "b.example"); err == nil {
		t.Fatal("a second connection over MaxConnections 1")
	}
	cancel()
	got := make(chan error, 1)
	go func() {
		rel, err := a.domainSlot(context.Background(), "b.example")
		if err == nil {
			rel()
		}
		got <- err
	}()
	time.Sleep(50 * time.Millisecond)
	a.SetLimits(Limits{MaxConnections: 2})
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting session did not get the slot the raised limit added")
	}
	release()
	if l := a.lim(); l.MaxPerDomain != 4 || l.MaxAge != 5*24*time.Hour || l.WarnAfter != 4*time.Hour || !slices.Equal(l.Retry, DefaultRetry) {
		t.Errorf("limits after SetLimits with zeros: %+v, want the defaults", l)
	}
}
