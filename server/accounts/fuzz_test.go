package accounts_test

import (
	"os"
	"path/filepath"
	"testing"

	"mailsetup/server/accounts"
)

// FuzzJournal: whatever the journal holds (a hand edit, a disk error),
// Open either refuses it with an error or reads a store whose every
// account resolves to itself, and a change then works and is read
// back.
func FuzzJournal(f *testing.F) {
	f.Add([]byte(`{"seq":1,"put":{"address":"a@example.com","password_hash":"x","aliases":["b@example.com"]}}` + "\n" + `{"seq":2,"del":"a@example.com"}` + "\n"))
	f.Add([]byte(`{"seq":1,"put":{"address":"a@example.com"}}` + "\n" + `{"seq":3,"del":"a@exa`))
	f.Add([]byte("\n\n{}\n"))
	f.Fuzz(func(t *testing.T, journal []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, "accounts.json")
		if err := os.WriteFile(accounts.JournalPath(path), journal, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := accounts.Open(path)
		if err != nil {
			return
		}
		for _, a := range s.List() {
			if got, ok := s.Resolve(a.Address); !ok || got.Address != a.Address {
				t.Fatalf("%q resolves to %q, %v", a.Address, got.Address, ok)
			}
		}
		list := s.List()
		if len(list) == 0 {
			return
		}
		if err := s.SetQuota(list[0].Address, 12345); err != nil {
			t.Fatalf("a change after opening: %v", err)
		}
		again, err := accounts.Open(path)
		if err != nil {
			t.Fatalf("reopening after a change: %v", err)
		}
		if a, ok := again.Get(list[0].Address); !ok || a.QuotaBytes != 12345 {
			t.Fatalf("the change is lost on reopening: %+v %v", a, ok)
		}
	})
}
