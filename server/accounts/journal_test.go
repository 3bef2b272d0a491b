package accounts_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailsetup/server/accounts"
)

// oldFormat is accounts.json as every earlier release wrote it.
func oldFormat(t *testing.T, path string, n int) []byte {
	t.Helper()
	hash, err := accounts.HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	type file struct {
		Version  int                `json:"version"`
		Accounts []accounts.Account `json:"accounts"`
	}
	f := file{Version: 1}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := range n {
		f.Accounts = append(f.Accounts, accounts.Account{Address: fmt.Sprintf("user%03d@example.com", i), PasswordHash: hash, Created: at, Changed: at})
	}
	f.Accounts[0].Aliases = []string{"info@example.com"}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	data = append(data, '\n')
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return data
}

// TestOpenOldFormat: today's accounts.json opens unchanged, and a
// change leaves it as it is (one journal line instead).
func TestOpenOldFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "accounts.json")
	before := oldFormat(t, path, 3)
	s, err := accounts.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := s.Resolve("INFO@example.com"); !ok || a.Address != "user000@example.com" {
		t.Fatalf("alias from the old file: %+v %v", a, ok)
	}
	if ok, _ := accounts.CheckPassword(mustGet(t, s, "user002@example.com").PasswordHash, "correct horse"); !ok {
		t.Fatal("the old file's hash does not check")
	}
	if err := s.SetPassword("user001@example.com", "battery staple"); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Fatal("a change rewrote the snapshot")
	}
	journal, err := os.ReadFile(accounts.JournalPath(path))
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(journal, []byte("\n")); n != 1 || !bytes.HasPrefix(journal, []byte(`{"seq":1,"put":{"address":"user001@example.com"`)) {
		t.Fatalf("journal after one change:\n%s", journal)
	}
	if st, _ := os.Stat(accounts.JournalPath(path)); st.Mode().Perm() != 0o600 {
		t.Errorf("journal mode %v", st.Mode())
	}
	again, err := accounts.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := accounts.CheckPassword(mustGet(t, again, "user001@example.com").PasswordHash, "battery staple"); !ok {
		t.Fatal("the journal's change is not replayed on open")
	}
	if n := len(again.List()); n != 3 {
		t.Fatalf("%d accounts, want 3", n)
	}
}

func mustGet(t *testing.T, s *accounts.Store, address string) accounts.Account {
	t.Helper()
	a, ok := s.Get(address)
	if !ok {
		t.Fatalf("%s: no such account", address)
	}
	return a
}

// TestJournalTornTail: a line without its newline (a writer killed
// before its fsync returned, never acknowledged) is not read, and the
// next writer cuts it off before appending.
func TestJournalTornTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "accounts.json")
	oldFormat(t, path, 2)
	w, _ := accounts.Open(path)
	r, _ := accounts.Open(path)
	if err := w.Remove("user001@example.com"); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(accounts.JournalPath(path), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"seq":2,"del":"user000@exam`)
	f.Close()
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Get("user001@example.com"); ok {
		t.Fatal("the reader missed the complete line")
	}
	if _, ok := r.Get("user000@example.com"); !ok {
		t.Fatal("the reader applied a torn line")
	}
	if err := w.Add("new@example.com", "correct horse"); err != nil {
		t.Fatal(err)
	}
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Get("new@example.com"); !ok {
		t.Fatal("the reader does not see the change after the torn line")
	}
	journal, _ := os.ReadFile(accounts.JournalPath(path))
	if bytes.Contains(journal, []byte("user000@exam")) || bytes.Count(journal, []byte("\n")) != 2 {
		t.Fatalf("the torn line was not cut off:\n%s", journal)
	}
	if _, err := accounts.Open(path); err != nil {
		t.Fatal(err)
	}
}

// TestJournalCompaction: a grown journal is folded into the snapshot;
// a reader that followed the old journal follows across it, and a bad
// complete line is an error naming the file.
func TestJournalCompaction(t *testing.T) {
	path := filepath.Join(t.TempDir(), "accounts.json")
	oldFormat(t, path, 2)
	w, _ := accounts.Open(path)
	w.SetCompactAt(1)
	r, _ := accounts.Open(path)
	snap, _ := os.Stat(path)
	for i := range 5 {
		if err := w.SetQuota("user000@example.com", int64(i+1)); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			r.Reload() // the reader follows part of the way
		}
	}
	now, _ := os.Stat(path)
	if os.SameFile(snap, now) {
		t.Fatal("the snapshot was never compacted")
	}
	data, _ := os.ReadFile(path)
	if !strings.Contains(string(data), `"seq": `) || !json.Valid(data) {
		t.Fatalf("compacted snapshot:\n%s", data)
	}
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, r, "user000@example.com").QuotaBytes; got != 5 {
		t.Fatalf("the reader's quota after the compaction: %d, want 5", got)
	}
	o, err := accounts.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, o, "user000@example.com").QuotaBytes; got != 5 || len(o.List()) != 2 {
		t.Fatalf("reopened: quota %d, %d accounts", got, len(o.List()))
	}
	os.WriteFile(accounts.JournalPath(path), []byte("{not json}\n"), 0o600)
	if _, err := accounts.Open(path); err == nil || !strings.Contains(err.Error(), accounts.JournalPath(path)) {
		t.Fatalf("bad journal line: %v", err)
	}
}

// TestJournalAfterGap: a snapshot and a journal that starts later (a
// backup copied while a compaction ran) open with what they hold.
func TestJournalAfterGap(t *testing.T) {
	path := filepath.Join(t.TempDir(), "accounts.json")
	oldFormat(t, path, 2)
	os.WriteFile(accounts.JournalPath(path), []byte(`{"seq":7,"del":"user001@example.com"}`+"\n"), 0o600)
	s, err := accounts.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Get("user001@example.com"); ok || len(s.List()) != 1 {
		t.Fatalf("the journal after the gap is not applied: %d accounts", len(s.List()))
	}
	if err := s.SetQuota("user000@example.com", 1); err != nil {
		t.Fatal(err)
	}
	journal, _ := os.ReadFile(accounts.JournalPath(path))
	if !bytes.Contains(journal, []byte(`{"seq":8,`)) {
		t.Fatalf("the next change does not follow the journal's last:\n%s", journal)
	}
}
