package observe_test

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"mailsetup/server/events"
	"mailsetup/server/observe"
)

// popLogin is a POP3 login of account at at.
func popLogin(account string, at time.Time) events.Event {
	return login(at, events.ProtoPOP3, "192.0.2.1", account)
}

// TestChangedAndMerge: Changed hands over the accounts an event changed
// since the mark, while events keep coming; Merge takes another store's
// accounts unless it holds them with a later event, and its snapshot
// reads back account by account with the SnapshotReader.
func TestChangedAndMerge(t *testing.T) {
	c := newClock(t0)
	a := open(t, observe.Options{Now: c.Now})
	for i := range 100 {
		a.Record(popLogin(fmt.Sprintf("u%d@example.test", i), t0))
	}
	mark := a.Mark()
	a.Record(popLogin("u7@example.test", t0.Add(time.Minute)))
	a.Record(popLogin("new@example.test", t0.Add(time.Minute)))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // events while Changed runs
		defer wg.Done()
		for i := range 200 {
			a.Record(popLogin(fmt.Sprintf("busy%d@example.test", i), t0.Add(2*time.Minute)))
		}
	}()
	var got []string
	next, err := a.Changed(mark, func(key string, last int64, raw []byte) error {
		got = append(got, key)
		if !bytes.Contains(raw, []byte(`"key":"`+key+`"`)) {
			t.Errorf("%s: %s", key, raw)
		}
		return nil
	})
	wg.Wait()
	if err != nil || next <= mark {
		t.Fatalf("Changed: %v, mark %d -> %d", err, mark, next)
	}
	for _, want := range []string{"u7@example.test", "new@example.test"} {
		if !strings.Contains(strings.Join(got, " "), want) {
			t.Errorf("Changed since the mark lacks %s: %q", want, got)
		}
	}
	for _, k := range got {
		if strings.HasPrefix(k, "u") && k != "u7@example.test" {
			t.Errorf("Changed hands over %s, unchanged since the mark", k)
		}
	}
	if _, err := a.Changed(next, func(string, int64, []byte) error { return io.ErrClosedPipe }); err != nil && a.Mark() == next {
		t.Errorf("nothing changed after the mark, yet each was called: %v", err)
	}

	// b holds u7 with a later event than a's copy, u8 with an earlier one.
	b := open(t, observe.Options{Now: c.Now})
	b.Record(popLogin("u7@example.test", t0.Add(time.Hour)))
	b.Record(popLogin("u8@example.test", t0.Add(-time.Hour)))
	var all [][]byte
	if _, err := a.Changed(0, func(_ string, _ int64, raw []byte) error {
		all = append(all, raw)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	n, err := b.Merge(func(add func([]byte) error) error {
		for _, raw := range all {
			if err := add(raw); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil || n != len(all)-1 {
		t.Fatalf("Merge took %d of %d: %v", n, len(all), err)
	}
	if acct := mustAccount(t, b, "u7@example.test"); acct.LastSeen.Before(t0.Add(time.Hour)) {
		t.Errorf("Merge replaced b's later u7 with a's earlier one: %v", acct.LastSeen)
	}
	mustAccount(t, b, "busy199@example.test")
	if _, err := b.Merge(func(add func([]byte) error) error { return add([]byte(`{"key":"x@example.test","logins":7}`)) }); err == nil {
		t.Error("Merge took an account that does not decode")
	}
}
