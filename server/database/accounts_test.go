package database_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailsetup/internal/testkit"
	"mailsetup/server/accounts"
	"mailsetup/server/database"
)

// TestAccountsOnDemand: a replica reads accounts when they are used and
// keeps at most its cache size; an address it looked up while unknown,
// an account and an alias changed through the other replica are read
// again at once; the list streams every account in order; the search
// finds by address and alias.
func TestAccountsOnDemand(t *testing.T) {
	pg := testkit.StartPostgres(t)
	dbA := open(t, pg)
	if _, _, err := dbA.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	a, b := start(t, dbA), startCache(t, open(t, pg), 3)
	// Unknown on B before A adds it: cached as unknown.
	if _, ok := b.accounts.Resolve("late@example.com"); ok {
		t.Fatal("an account that does not exist resolves")
	}
	if _, ok := b.accounts.Resolve("alias@example.com"); ok {
		t.Fatal("an alias that does not exist resolves")
	}
	for i := range 6 {
		if err := a.accounts.Add(fmt.Sprintf("user%d@example.com", i), "a long password"); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 6 {
		if _, ok := b.accounts.Get(fmt.Sprintf("USER%d@example.com", i)); !ok {
			t.Fatalf("B does not find user%d", i)
		}
	}
	if n := b.accounts.CacheLen(); n > 3+1 {
		t.Fatalf("B caches %d lookups, its limit is 3 accounts and 1 unknown address", n)
	}
	if err := a.accounts.Add("late@example.com", "a long password"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "B finds the account it had looked up while unknown", func() bool { _, ok := b.accounts.Get("late@example.com"); return ok })
	if err := a.accounts.AddAlias("user5@example.com", "alias@example.com"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "B resolves the alias it had looked up while unknown", func() bool {
		got, ok := b.accounts.Resolve("alias@example.com")
		return ok && got.Address == "user5@example.com"
	})
	if _, ok := b.accounts.Get("alias@example.com"); ok {
		t.Fatal("Get takes an alias for an account")
	}
	old := mustGet(t, b.accounts, "user5@example.com").PasswordHash
	if err := a.accounts.SetPassword("user5@example.com", "another long password"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "B reads the new password hash", func() bool {
		return mustGet(t, b.accounts, "user5@example.com").PasswordHash != old
	})
	got, _ := b.accounts.Resolve("alias@example.com")
	if ok, _ := accounts.CheckPassword(got.PasswordHash, "another long password"); !ok {
		t.Fatal("the alias still names the account with its old hash")
	}
	if err := a.accounts.Remove("user5@example.com"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "B forgets the removed account's alias", func() bool { _, ok := b.accounts.Resolve("alias@example.com"); return !ok })

	if err := a.accounts.AddAlias("user3@example.com", "sales@example.com"); err != nil {
		t.Fatal(err)
	}
	defer database.SetEachPage(2)() // pages end before, on and after the alias
	var listed []string
	if err := b.accounts.Each(context.Background(), func(a accounts.Account) error {
		listed = append(listed, a.Address+strings.Join(a.Aliases, ","))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(listed) != "[late@example.com user0@example.com user1@example.com user2@example.com user3@example.comsales@example.com user4@example.com]" {
		t.Fatalf("listed %v", listed)
	}
	if found, err := b.accounts.Search("sale", 10); err != nil || fmt.Sprint(found) != "[user3@example.com]" {
		t.Fatalf("search by alias: %v %v", found, err)
	}
	if found, err := b.accounts.Search("user", 2); err != nil || fmt.Sprint(found) != "[user0@example.com user1@example.com]" {
		t.Fatalf("search by address, limit 2: %v %v", found, err)
	}

	// The database down: what B cached answers, the rest is an error
	// (not "no such account").
	mustGet(t, b.accounts, "user4@example.com")
	// Mail to made-up addresses does not push the account out.
	for i := range 10 {
		if _, ok := b.accounts.Resolve(fmt.Sprintf("made-up-%d@example.com", i)); ok {
			t.Fatal("a made-up address resolves")
		}
	}
	pg.Stop()
	defer pg.Start()
	if _, ok, err := b.accounts.Lookup("user4@example.com"); !ok || err != nil {
		t.Fatalf("a cached account with the database down: %v %v", ok, err)
	}
	if _, _, err := b.accounts.Lookup("user0@example.com"); err == nil {
		t.Fatal("an account B never cached is 'not found' with the database down, want an error")
	}
}

// TestCopyIntoDatabaseInBatches: db import's Copy from the files into
// the database adds accounts a thousand a transaction: 2,500 accounts
// with aliases, one already there (skipped), all of them then found by
// another replica that had looked one up while it was unknown; a batch
// with an alias that is taken is refused whole, naming the alias.
func TestCopyIntoDatabaseInBatches(t *testing.T) {
	pg := testkit.StartPostgres(t)
	db := open(t, pg)
	if _, _, err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	a, b := start(t, db), start(t, open(t, pg))
	hash, err := accounts.HashPassword("a long password")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.accounts.Add("user7@example.com", "another long password"); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.accounts.Resolve("user2400@example.com"); ok {
		t.Fatal("resolves before the import")
	}
	now := time.Now().UTC().Truncate(time.Second)
	var all []accounts.Account
	for i := range 2500 {
		acct := accounts.Account{Address: fmt.Sprintf("user%d@example.com", i), PasswordHash: hash, Created: now, Changed: now}
		if i%10 == 0 {
			acct.Aliases = []string{fmt.Sprintf("alias%d@example.com", i)}
		}
		all = append(all, acct)
	}
	files := filesStore(t, all)
	began := time.Now()
	copied, skipped, err := a.accounts.Copy(files)
	t.Logf("copied 2,500 accounts in %v", time.Since(began).Round(time.Millisecond))
	if err != nil || copied != 2499 || skipped != 1 {
		t.Fatalf("Copy: copied %d, skipped %d, %v; want 2499, 1", copied, skipped, err)
	}
	if got := mustGet(t, a.accounts, "user7@example.com"); got.PasswordHash == hash {
		t.Error("the account that was there before was overwritten")
	}
	eventually(t, "B finds the account it had looked up while unknown", func() bool {
		_, ok := b.accounts.Resolve("user2400@example.com")
		return ok
	})
	if got, ok := b.accounts.Resolve("alias2490@example.com"); !ok || got.Address != "user2490@example.com" {
		t.Fatalf("alias2490 resolves to %+v, %v", got, ok)
	}
	n := 0
	if err := b.accounts.Each(context.Background(), func(accounts.Account) error { n++; return nil }); err != nil || n != 2500 {
		t.Fatalf("B lists %d accounts, %v; want 2500", n, err)
	}
	// A taken alias refuses its batch, nothing of it written.
	clash := filesStore(t, []accounts.Account{
		{Address: "new1@example.com", PasswordHash: hash, Created: now, Changed: now},
		{Address: "new2@example.com", PasswordHash: hash, Created: now, Changed: now, Aliases: []string{"alias0@example.com"}},
	})
	if _, _, err := a.accounts.Copy(clash); err == nil || !strings.Contains(err.Error(), "alias0@example.com") {
		t.Fatalf("a taken alias: %v", err)
	}
	if _, ok := a.accounts.Get("new1@example.com"); ok {
		t.Error("an account of the refused batch was written")
	}
}

// filesStore writes accts as a files store's snapshot and opens it.
func filesStore(t *testing.T, accts []accounts.Account) *accounts.Store {
	t.Helper()
	path := filepath.Join(t.TempDir(), "accounts.json")
	b, err := json.Marshal(struct {
		Version  int                `json:"version"`
		Accounts []accounts.Account `json:"accounts"`
	}{1, accts})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := accounts.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
