package observe_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"mailsetup/server/events"
	"mailsetup/server/observe"
)

func TestRetention(t *testing.T) {
	clk := newClock(t0)
	path := filepath.Join(t.TempDir(), "observations.json")
	s := open(t, observe.Options{Path: path, Now: clk.Now})
	const john = "john@johndoe.com"
	s.Record(login(t0, "imap", "192.0.2.1", john))
	s.Record(badPassword(t0.Add(-29*24*time.Hour), "imap", "192.0.2.2", john))
	s.Record(badPassword(t0.Add(-30*24*time.Hour), "imap", "192.0.2.3", john)) // already too old
	if st := s.Stats(); st.Recorded != 2 || st.Ignored != 1 {
		t.Errorf("stats = %+v, want 2 recorded, 1 ignored", st)
	}
	a := mustAccount(t, s, john)
	if len(a.Failures) != 1 || !a.FirstSeen.Equal(t0.Add(-29*24*time.Hour)) {
		t.Fatalf("failures %+v, first seen %v", a.Failures, a.FirstSeen)
	}
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}

	// A day later the failure of 29 days ago has left the 30 days.
	clk.Add(24 * time.Hour)
	a = mustAccount(t, s, john)
	if len(a.Failures) != 0 || len(a.Logins) != 1 || !a.FirstSeen.Equal(t0) {
		t.Errorf("after a day: failures %+v, logins %d, first seen %v", a.Failures, len(a.Logins), a.FirstSeen)
	}
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); strings.Contains(string(b), "192.0.2.2") {
		t.Errorf("expired failure still in the snapshot:\n%s", b)
	}

	// 30 days after t0 nothing is left, in memory or on disk.
	clk.Set(t0.Add(30 * 24 * time.Hour))
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	if a, ok := s.Account(john); ok {
		t.Errorf("after 30 days: %+v", a)
	}
	if st := s.Stats(); st.Accounts != 0 || st.Groups != 0 {
		t.Errorf("after 30 days: stats %+v", st)
	}
	if b, err := os.ReadFile(path); err != nil || strings.Contains(string(b), john) {
		t.Errorf("after 30 days the snapshot (err %v) holds:\n%s", err, b)
	}
}

func TestRetentionOnOpen(t *testing.T) {
	clk := newClock(t0)
	path := filepath.Join(t.TempDir(), "observations.json")
	s := open(t, observe.Options{Path: path, Now: clk.Now})
	s.Record(login(t0, "imap", "192.0.2.1", "john@johndoe.com"))
	s.Record(login(t0.Add(-10*24*time.Hour), "imap", "192.0.2.1", "jane@johndoe.com"))
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	clk.Add(25 * 24 * time.Hour)
	s = open(t, observe.Options{Path: path, Now: clk.Now})
	if _, ok := s.Account("jane@johndoe.com"); ok {
		t.Error("jane's login of 35 days ago was loaded")
	}
	if _, ok := s.Account("john@johndoe.com"); !ok {
		t.Error("john's login of 25 days ago was not loaded")
	}
	if st := s.Stats(); st.Accounts != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestTodayRollsOverAtUTCMidnight(t *testing.T) {
	late := time.Date(2026, 11, 28, 23, 59, 0, 0, time.UTC)
	clk := newClock(late.Add(30 * time.Second))
	// A zone far from UTC must not matter.
	s := open(t, observe.Options{Now: func() time.Time { return clk.Now().In(time.FixedZone("UTC-10", -10*3600)) }})
	e := badPassword(late, "pop3", "192.0.2.1", "john@johndoe.com")
	s.Record(e)
	f := mustAccount(t, s, "john@johndoe.com").Failures[0]
	if f.Today != 1 || f.Count != 1 {
		t.Errorf("23:59:30: today %d, count %d", f.Today, f.Count)
	}
	clk.Add(time.Minute)
	f = mustAccount(t, s, "john@johndoe.com").Failures[0]
	if f.Today != 0 || f.Count != 1 {
		t.Errorf("00:00:30: today %d, count %d", f.Today, f.Count)
	}
	e.Time = clk.Now()
	s.Record(e)
	f = mustAccount(t, s, "john@johndoe.com").Failures[0]
	if f.Today != 1 || f.Count != 2 || !f.First.Equal(late) {
		t.Errorf("after another: today %d, count %d, first %v", f.Today, f.Count, f.First)
	}
}

// record feeds a bit of everything for several accounts.
func recordMix(s *observe.Store, at time.Time) {
	for i, who := range []string{"john@johndoe.com", "jane@johndoe.com", "Joe@Example.test"} {
		remote := fmt.Sprintf("192.0.2.%d", i+1)
		for d := range 3 {
			at := at.Add(-time.Duration(d)*25*time.Hour - time.Duration(i)*time.Minute)
			s.Record(login(at, "imap", remote, who))
			s.Record(events.Event{Time: at, Kind: events.ClientID, Proto: "imap", Remote: ip(remote), Account: who, Client: "K-9 Mail 6.8"})
			s.Record(badPassword(at, "pop3", "2001:db8::1", who))
			s.Record(bareLocalPart(at, "pop3", remote, strings.Split(strings.ToLower(who), "@")[0]))
			s.Record(noAuth(at, remote, who, who))
			s.Record(pop3Session(at, remote, who, 4, 2, 0))
			s.Record(events.Event{Time: at, Kind: events.Delivery, Proto: "smtp", Remote: ip("198.51.100.1"), Result: "ok", Detail: "local " + who})
		}
	}
}

func TestRestart(t *testing.T) {
	clk := newClock(t0)
	path := filepath.Join(t.TempDir(), "observations.json")
	opts := observe.Options{Path: path, Now: clk.Now, DeleteAfterDays: func(string) int { return 2 }}
	s := open(t, opts)
	recordMix(s, t0)
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	s2 := open(t, opts)
	for _, who := range []string{"john@johndoe.com", "jane@johndoe.com", "joe@example.test"} {
		a, b := mustAccount(t, s, who), mustAccount(t, s2, who)
		if len(a.Findings) == 0 || len(a.POP3) == 0 || a.Deliveries == 0 {
			t.Fatalf("%s: too little recorded to compare: %s", who, mustJSON(t, a))
		}
		if ja, jb := mustJSON(t, a), mustJSON(t, b); ja != jb {
			t.Errorf("%s differs after a restart:\nbefore %s\nafter %s", who, ja, jb)
		}
	}
	if a, b := s.Stats(), s2.Stats(); a.Accounts != b.Accounts || a.Groups != b.Groups {
		t.Errorf("stats before %+v, after %+v", a, b)
	}

	// Nothing changed: Save writes nothing.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Save without changes wrote the file (%v)", err)
	}
}

func TestRunSavesOnCancel(t *testing.T) {
	clk := newClock(t0)
	path := filepath.Join(t.TempDir(), "observations.json")
	opts := observe.Options{Path: path, Now: clk.Now}
	s := open(t, opts)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- s.Run(ctx, time.Hour) }()
	recordMix(s, t0)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	s2 := open(t, opts)
	if a, b := mustJSON(t, mustAccount(t, s, "john@johndoe.com")), mustJSON(t, mustAccount(t, s2, "john@johndoe.com")); a != b {
		t.Errorf("after Run:\nbefore %s\nafter %s", a, b)
	}
}

func TestRunPrunesAndSaves(t *testing.T) {
	clk := newClock(t0)
	path := filepath.Join(t.TempDir(), "observations.json")
	s := open(t, observe.Options{Path: path, Now: clk.Now})
	s.Record(login(t0, "imap", "192.0.2.1", "john@johndoe.com"))
	clk.Add(31 * 24 * time.Hour)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- s.Run(ctx, time.Millisecond) }()
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().Accounts != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Accounts != 0 {
		t.Errorf("Run did not prune: %+v", st)
	}
	if b, err := os.ReadFile(path); err != nil || strings.Contains(string(b), "john") {
		t.Errorf("snapshot (err %v):\n%s", err, b)
	}
}

func TestOpenMaxAccounts(t *testing.T) {
	clk := newClock(t0)
	path := filepath.Join(t.TempDir(), "observations.json")
	s := open(t, observe.Options{Path: path, Now: clk.Now})
	for i := range 50 {
		s.Record(login(t0.Add(time.Duration(i-50)*time.Minute), "imap", "192.0.2.1", fmt.Sprintf("u%d@example.test", i)))
	}
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	s = open(t, observe.Options{Path: path, Now: clk.Now, MaxAccounts: 10})
	if st := s.Stats(); st.Accounts != 10 {
		t.Errorf("accounts loaded: %d, want 10", st.Accounts)
	}
	if _, ok := s.Account("u49@example.test"); !ok {
		t.Error("the most recently seen account was dropped")
	}
	if _, ok := s.Account("u39@example.test"); ok {
		t.Error("a less recently seen account was kept")
	}
}

func TestCorruptSnapshot(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	s := open(t, observe.Options{Path: good, Now: newClock(t0).Now})
	recordMix(s, t0)
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	valid, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, content string
		version       bool
	}{
		{"empty", "", false},
		{"not json", "{not json", false},
		{"truncated", string(valid[:len(valid)/2]), false},
		{"trailing", string(valid) + "{}", false},
		{"no version", `{"accounts":[]}`, false},
		{"bad address", `{"version":1,"accounts":[{"key":"a@b","logins":[{"remote":"300.1.1.1"}]}]}`, false},
		{"newer version", `{"version":2,"accounts":[]}`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name+".json")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := observe.Open(observe.Options{Path: path})
			if err == nil {
				t.Fatal("Open accepted it")
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error does not name the file: %v", err)
			}
			if tc.version != errors.Is(err, observe.ErrSnapshotVersion) {
				t.Errorf("error %v: version error %v, want %v", err, !tc.version, tc.version)
			}
		})
	}
	if _, err := observe.Open(observe.Options{Path: filepath.Join(dir, "missing.json")}); err != nil {
		t.Errorf("missing file: %v", err)
	}
}

func TestConcurrentUse(t *testing.T) {
	clk := newClock(t0)
	path := filepath.Join(t.TempDir(), "observations.json")
	s := open(t, observe.Options{Path: path, Now: clk.Now, MaxAccounts: 50})
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	runErr := make(chan error, 1)
	go func() { runErr <- s.Run(ctx, time.Millisecond) }()
	for r := range 2 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				if a, ok := s.Account(fmt.Sprintf("u%d@example.test", (i+r)%80)); ok {
					_ = mustJSON(t, a)
				}
				_ = s.Stats()
			}
		})
	}
	wg.Go(func() {
		for ctx.Err() == nil {
			if err := s.Save(); err != nil {
				t.Error(err)
				return
			}
		}
	})
	// The bus: one goroutine.
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 20_000 {
		s.Record(randomEvent(rng, fmt.Sprintf("u%d@example.test", i%80), t0))
	}
	cancel()
	wg.Wait()
	if err := <-runErr; err != nil {
		t.Fatal(err)
	}
	s2 := open(t, observe.Options{Path: path, Now: clk.Now, MaxAccounts: 50})
	for i := range 80 {
		who := fmt.Sprintf("u%d@example.test", i)
		a, oka := s.Account(who)
		b, okb := s2.Account(who)
		if oka != okb || mustJSON(t, a) != mustJSON(t, b) {
			t.Fatalf("%s differs after the last save", who)
		}
	}
}
