package observe_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mailsetup/server/observe"
)

// FuzzSnapshot: whatever the snapshot file holds, Open either refuses it
// with an error naming the file or gives a store that answers lookups
// and saves again, within its bounds; it never panics.
func FuzzSnapshot(f *testing.F) {
	// Seed: a real snapshot.
	dir := f.TempDir()
	path := filepath.Join(dir, "seed.json")
	s := open(f, observe.Options{Path: path, Now: newClock(t0).Now, MaxAccounts: 10})
	s.Record(bareLocalPart(t0, "pop3", "203.0.113.7", "john"))
	s.Record(pop3Session(t0, "192.0.2.1", "john@johndoe.com", 10, 1, 0))
	s.Record(badPassword(t0, "imap", "192.0.2.1", "john@johndoe.com"))
	if err := s.Save(); err != nil {
		f.Fatal(err)
	}
	seed, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(`{"version":1,"accounts":[]}`))
	f.Add([]byte(`{"version":99}`))
	f.Add([]byte(``))
	f.Add([]byte(`{"version":1,"accounts":[{"key":"","logins":[{"days":[{"d":-5,"n":4294967295}]}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, "observations.json")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		st, err := observe.Open(observe.Options{Path: path, Now: newClock(t0).Now, MaxAccounts: 10})
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("the error does not name the file: %v", err)
			}
			return
		}
		if n := st.Stats().Accounts; n > 10 {
			t.Fatalf("%d accounts loaded into a store bounded at 10", n)
		}
		for _, addr := range []string{"john@johndoe.com", "jane@johndoe.com", "x@y"} {
			if a, ok := st.Account(addr); ok {
				if _, err := json.Marshal(a); err != nil {
					t.Fatalf("the view of %s does not marshal: %v", addr, err)
				}
			}
		}
		st.Record(badPassword(t0, "imap", "192.0.2.1", "john@johndoe.com"))
		if err := st.Save(); err != nil {
			t.Fatalf("saving a loaded store: %v", err)
		}
		if _, err := observe.Open(observe.Options{Path: path, Now: newClock(t0).Now, MaxAccounts: 10}); err != nil {
			t.Fatalf("reopening what was saved: %v", err)
		}
	})
}
