package accounts_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mailsetup/server/accounts"
)

func TestAddVerifyChangeRemove(t *testing.T) {
	path := filepath.Join(t.TempDir(), "accounts.json")
	s, err := accounts.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Add("John@JohnDoe.com", "correct horse"); err != nil {
		t.Fatal(err)
	}
	if err := s.Add("john@johndoe.com", "another one"); !errors.Is(err, accounts.ErrExists) {
		t.Errorf("duplicate add: %v", err)
	}
	if err := s.Add("john", "correct horse"); err == nil {
		t.Error("bare local part accepted as an account")
	}
	if err := s.Add("jane@johndoe.com", "short"); !errors.Is(err, accounts.ErrWeakPassword) {
		t.Errorf("short password: %v", err)
	}
	a, ok := s.Get("john@johndoe.com")
	if !ok || a.Address != "John@johndoe.com" {
		t.Fatalf("get: %+v %v", a, ok)
	}
	if !strings.HasPrefix(a.PasswordHash, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("hash %q", a.PasswordHash)
	}
	data, _ := os.ReadFile(path)
	if strings.Contains(string(data), "correct horse") {
		t.Fatal("password stored in clear")
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode())
	}
	for pw, want := range map[string]bool{"correct horse": true, "correct hors": false, "": false} {
		if ok, err := accounts.CheckPassword(a.PasswordHash, pw); err != nil || ok != want {
			t.Errorf("CheckPassword(%q) = %v, %v", pw, ok, err)
		}
	}
	// Another process (the user command) changes the file: Reload sees it.
	other, _ := accounts.Open(path)
	if err := other.SetPassword("john@johndoe.com", "battery staple"); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	a, _ = s.Get("john@johndoe.com")
	if ok, _ := accounts.CheckPassword(a.PasswordHash, "battery staple"); !ok {
		t.Error("password change not seen after Reload")
	}
	if err := s.Remove("john@johndoe.com"); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove("john@johndoe.com"); !errors.Is(err, accounts.ErrNotFound) {
		t.Errorf("second remove: %v", err)
	}
	if len(s.List()) != 0 {
		t.Error("list not empty")
	}
}

func TestCorruptFileIsAnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "accounts.json")
	os.WriteFile(path, []byte("{not json"), 0o600)
	if _, err := accounts.Open(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("corrupt file: %v", err)
	}
}

func TestCheckPasswordRejectsForeignHashes(t *testing.T) {
	for _, h := range []string{"", "plain", "$2y$10$abcdefghijklmnopqrstuu", "$argon2id$v=19$m=x$a$b", "$argon2id$v=18$m=1,t=1,p=1$AAAA$AAAA"} {
		if ok, err := accounts.CheckPassword(h, "x"); ok || err == nil {
			t.Errorf("CheckPassword(%q) = %v, %v", h, ok, err)
		}
	}
}

func TestAliases(t *testing.T) {
	s, _ := accounts.Open(filepath.Join(t.TempDir(), "accounts.json"))
	s.Add("john@johndoe.com", "correct horse")
	s.Add("jane@johndoe.com", "correct horse")
	if err := s.AddAlias("john@johndoe.com", "Info@JohnDoe.com"); err != nil {
		t.Fatal(err)
	}
	if a, ok := s.Resolve("info@johndoe.com"); !ok || a.Address != "john@johndoe.com" {
		t.Errorf("resolve alias: %+v %v", a, ok)
	}
	if err := s.AddAlias("jane@johndoe.com", "info@johndoe.com"); !errors.Is(err, accounts.ErrExists) {
		t.Errorf("alias taken twice: %v", err)
	}
	if err := s.AddAlias("jane@johndoe.com", "john@johndoe.com"); !errors.Is(err, accounts.ErrExists) {
		t.Errorf("alias shadowing an account: %v", err)
	}
	if err := s.RemoveAlias("john@johndoe.com", "info@johndoe.com"); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Resolve("info@johndoe.com"); ok {
		t.Error("removed alias still resolves")
	}
}
