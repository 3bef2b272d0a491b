package database_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"mailsetup/internal/testkit"
	"mailsetup/server/accounts"
	"mailsetup/server/auth"
	"mailsetup/server/database"
)

// replica is what one process holds: its connection, feed, account copy
// and login throttle.
type replica struct {
	db       *database.DB
	feed     *database.Feed
	accounts *accounts.Store
	throttle *auth.Throttle
}

func open(t *testing.T, pg *testkit.Postgres) *database.DB {
	t.Helper()
	db, err := database.Open(context.Background(), database.Options{URL: pg.URL, PasswordFile: pg.PasswordFile})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return db
}

func start(t *testing.T, db *database.DB) *replica {
	t.Helper()
	return startCache(t, db, 0)
}

// startCache starts a replica that caches at most cache accounts (0:
// the default).
func startCache(t *testing.T, db *database.DB, cache int) *replica {
	t.Helper()
	r := &replica{db: db, feed: db.NewFeed()}
	r.accounts = accounts.OpenShared(db.Accounts(), cache)
	r.throttle = auth.NewThrottle(auth.ThrottleOptions{IPLimit: 3, Share: r.feed.ThrottleShare()}, nil)
	r.feed.FollowAccounts(r.accounts)
	r.feed.FollowThrottles(r.throttle)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.feed.Run(ctx, database.KindThrottle); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

// eventually polls cond for up to 10 seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 10s: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestTwoReplicas: two replicas migrate the empty database together
// (once); an account added and a password changed through one are used by
// the other; a throttle filled through one refuses on the other; the
// database stopped: changes are refused with ErrUnavailable (never
// acknowledged), the copy keeps answering, Health says why; restarted:
// writes work again and a change made meanwhile reaches the other.
func TestTwoReplicas(t *testing.T) {
	pg := testkit.StartPostgres(t)
	dbA, dbB := open(t, pg), open(t, pg)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, db := range []*database.DB{dbA, dbB} {
		wg.Add(1)
		go func() { defer wg.Done(); _, _, errs[i] = db.Migrate(context.Background()) }()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("migrating together: %v", err)
		}
	}
	if v := dbA.SchemaVersion(context.Background()); v != database.Version() {
		t.Fatalf("schema version %d, want %d", v, database.Version())
	}
	a, b := start(t, dbA), start(t, dbB)

	if err := a.accounts.Add("Jane@example.com", "first password"); err != nil {
		t.Fatal(err)
	}
	if err := b.accounts.Add("jane@example.com", "other password"); !errors.Is(err, accounts.ErrExists) {
		t.Fatalf("adding the account again through B: %v, want ErrExists", err)
	}
	eventually(t, "B sees the account A added", func() bool { _, ok := b.accounts.Get("jane@example.com"); return ok })
	if err := a.accounts.AddAlias("jane@example.com", "j@example.com"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "B resolves A's alias", func() bool {
		got, ok := b.accounts.Resolve("J@example.com")
		return ok && got.Address == "Jane@example.com"
	})
	old, _ := b.accounts.Get("jane@example.com")
	if err := a.accounts.SetPassword("jane@example.com", "second password"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "B has A's new password hash", func() bool {
		got, _ := b.accounts.Get("jane@example.com")
		return got.PasswordHash != old.PasswordHash
	})
	got, _ := b.accounts.Get("jane@example.com")
	if ok, _ := accounts.CheckPassword(got.PasswordHash, "second password"); !ok {
		t.Fatal("B's copy does not take the new password")
	}

	ip := netip.MustParseAddr("192.0.2.7")
	for range 3 {
		a.throttle.Fail(ip, "jane@example.com")
	}
	if a.throttle.Blocked(ip, "jane@example.com") == 0 {
		t.Fatal("A does not refuse after 3 failures")
	}
	eventually(t, "B refuses the address A locked out", func() bool { return b.throttle.Blocked(ip, "jane@example.com") > 0 })

	// A third replica started now replays the lockout.
	c := start(t, open(t, pg))
	eventually(t, "a replica started after the lockout refuses the address", func() bool { return c.throttle.Blocked(ip, "jane@example.com") > 0 })

	pg.Stop()
	err := a.accounts.SetPassword("jane@example.com", "third password")
	if !errors.Is(err, database.ErrUnavailable) {
		t.Fatalf("password change with the database down: %v, want ErrUnavailable", err)
	}
	if got, _ := a.accounts.Get("jane@example.com"); got.PasswordHash == old.PasswordHash {
		t.Fatal("the copy went back to an old hash")
	}
	if ok, _ := accounts.CheckPassword(mustGet(t, a.accounts, "jane@example.com").PasswordHash, "second password"); !ok {
		t.Fatal("with the database down the last password no longer works")
	}
	eventually(t, "A's health says the database is down", func() bool { return strings.Contains(dbA.Health(), "database unreachable") })
	ip2 := netip.MustParseAddr("192.0.2.8")
	for range 3 {
		a.throttle.Fail(ip2, "jane@example.com") // queued
	}
	if n, _ := a.feed.Pending(); n == 0 {
		t.Fatal("failures with the database down were not queued")
	}

	pg.Start()
	eventually(t, "A's health recovers", func() bool { return dbA.Health() == "" })
	eventually(t, "B refuses the address A locked out while the database was down", func() bool {
		return b.throttle.Blocked(ip2, "jane@example.com") > 0
	})
	if err := a.accounts.SetPassword("jane@example.com", "third password"); err != nil {
		t.Fatalf("password change after the restart: %v", err)
	}
	eventually(t, "B takes the password changed after the restart", func() bool {
		ok, _ := accounts.CheckPassword(mustGet(t, b.accounts, "jane@example.com").PasswordHash, "third password")
		return ok
	})
	if err := b.accounts.Remove("jane@example.com"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "A forgets the account B removed, and its alias", func() bool {
		_, ok1 := a.accounts.Get("jane@example.com")
		_, ok2 := a.accounts.Resolve("j@example.com")
		return !ok1 && !ok2
	})
}

func mustGet(t *testing.T, s *accounts.Store, address string) accounts.Account {
	t.Helper()
	a, ok := s.Get(address)
	if !ok {
		t.Fatalf("%s: no such account", address)
	}
	return a
}

// TestRedact: a password in the URL never reaches an error message.
func TestRedact(t *testing.T) {
	url := "postgres://mailsetup:s3cret-pw@db.example.net:99999/mailsetup"
	_, err := database.Open(context.Background(), database.Options{URL: url})
	if err == nil {
		t.Fatal("port 99999 accepted")
	}
	if strings.Contains(err.Error(), "s3cret-pw") {
		t.Fatalf("the password is in the error: %v", err)
	}
}

// TestPrune: the pruning statements run on a real database.
func TestPrune(t *testing.T) {
	pg := testkit.StartPostgres(t)
	db := open(t, pg)
	if _, _, err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := start(t, db)
	if err := r.accounts.Add("a@example.com", "a password"); err != nil {
		t.Fatal(err)
	}
	if err := db.Prune(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.accounts.Get("a@example.com"); !ok {
		t.Fatal("the account is gone after pruning")
	}
}
