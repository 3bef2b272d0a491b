package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"mailsetup/internal/testkit"
	"mailsetup/server"
	"mailsetup/server/accounts"
)

// writeOldAccounts writes dir's accounts.json as earlier releases did
// (version 1, no journal) with the demo account and n more, and a
// journal of changes close to the size at which the next change
// compacts it (journalBytes; 0: none). The passwords are "password N".
func writeOldAccounts(t *testing.T, path string, n, journalBytes int) {
	t.Helper()
	demo, err := accounts.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	list := demo.List()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	hash, err := accounts.HashPassword("old password")
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		list = append(list, accounts.Account{Address: fmt.Sprintf("old%05d@example.test", i), PasswordHash: hash, Created: at, Changed: at})
	}
	data, err := json.MarshalIndent(struct {
		Version  int                `json:"version"`
		Accounts []accounts.Account `json:"accounts"`
	}{1, list}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Remove(accounts.JournalPath(path))
	var journal bytes.Buffer
	for seq := 1; journal.Len() < journalBytes; seq++ {
		a := list[1+seq%n]
		a.QuotaBytes = int64(seq)
		line, _ := json.Marshal(struct {
			Seq int64             `json:"seq"`
			Put *accounts.Account `json:"put"`
		}{int64(seq), &a})
		journal.Write(append(line, '\n'))
	}
	if journalBytes > 0 {
		if err := os.WriteFile(accounts.JournalPath(path), journal.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAccountsJournalSurvivesKill: `mailsetup user add` runs from
// three workers at once against an accounts.json of an earlier
// release with 3,000 accounts and a journal about to be compacted,
// and a third of the processes are killed with SIGKILL at random
// moments (during the password hash, the journal append or the
// compaction). Afterwards every account whose command reported success
// is listed by a fresh `user list`, the old accounts are all there, and
// the `serve` that ran all along (it never restarts) logs in the first
// and the last acknowledged account over POP3S (curl): it followed the
// journal, across its compaction.
func TestAccountsJournalSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	testkit.Tool(t, "curl", "curl")
	m := prepareMail(t, func(t *testing.T, m *mailService, config string) string { return config })
	path := filepath.Join(m.dir, server.AccountsFile)
	writeOldAccounts(t, path, 3000, 1<<20-3<<10)
	m.service = startServe(t, "--config", m.config)
	defer m.stop(t)

	var (
		mu    sync.Mutex
		acked []string
		kills int
	)
	const workers, perWorker = 3, 30
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := range perWorker {
				addr := fmt.Sprintf("new-%d-%02d@example.test", w, i)
				cmd := exec.Command(binary, "user", "add", addr, "--config", m.config)
				cmd.Stdin = strings.NewReader("password " + addr + "\n")
				var out bytes.Buffer
				cmd.Stdout = &out
				if err := cmd.Start(); err != nil {
					t.Error(err)
					return
				}
				kill := rng.IntN(3) == 0
				if kill {
					time.Sleep(time.Duration(rng.IntN(150)) * time.Millisecond)
					cmd.Process.Kill()
				}
				err := cmd.Wait()
				mu.Lock()
				if err == nil && strings.Contains(out.String(), "password set") {
					acked = append(acked, addr)
				} else if kill {
					kills++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if kills == 0 || len(acked) < workers*perWorker/3 {
		t.Fatalf("%d processes killed mid-change, %d acknowledged: the test did not test", kills, len(acked))
	}
	snap, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(snap, []byte(`"seq": `)) {
		t.Fatal("the journal was never compacted into the snapshot")
	}
	list, err := exec.Command(binary, "user", "list", "--config", m.config).Output()
	if err != nil {
		t.Fatalf("user list after the kills: %v", err)
	}
	for _, a := range acked {
		if !bytes.Contains(list, []byte(a+"\t")) {
			t.Errorf("%s was acknowledged and is gone", a)
		}
	}
	if n := bytes.Count(list, []byte("@example.test\t")); n < 3001+len(acked) {
		t.Errorf("%d accounts listed, want at least %d", n, 3001+len(acked))
	}
	for _, a := range []string{acked[0], acked[len(acked)-1]} {
		if ok, out := curlPOP3Login(t, m.ports.POP3S, a, "password "+a); !ok {
			t.Fatalf("the running serve does not log %s in:\n%s\n%s", a, out, m.stderr)
		}
	}
	t.Logf("%d acknowledged, %d killed mid-change", len(acked), kills)
}

// TestReplicasLookUpAccountsOnDemand: two replicas of the real binary
// on one private PostgreSQL, B caching two accounts at most
// (database.account_cache). Accounts that existed before B started,
// and one added through A's command while it runs, log in on B over
// POP3S (curl), in turns that evict each other from B's cache; a
// password changed through A refuses the old one on B within seconds
// and takes the new one; an alias added through A receives mail on B
// (swaks) although B had just refused it as unknown.
func TestReplicasLookUpAccountsOnDemand(t *testing.T) {
	testkit.Tool(t, "curl", "curl")
	pg := testkit.StartPostgres(t)
	a := prepareMail(t, replicaConfig(pg))
	b := prepareMail(t, func(t *testing.T, m *mailService, config string) string {
		return replicaConfig(pg)(t, m, config) + "account_cache = 2\n"
	})
	users := []string{"first@example.test", "second@example.test", "third@example.test"}
	for _, u := range users[:2] {
		if code, _, stderr := runCLI(t, "pw "+u+"\n", "user", "add", u, "--config", a.config); code != 0 {
			t.Fatalf("user add %s: %s", u, stderr)
		}
	}
	a.service = startServe(t, "--config", a.config)
	defer a.stop(t)
	b.service = startServe(t, "--config", b.config)
	defer b.stop(t)
	if code, _, stderr := runCLI(t, "pw "+users[2]+"\n", "user", "add", users[2], "--config", a.config); code != 0 {
		t.Fatalf("user add: %s", stderr)
	}
	for round := range 2 {
		for _, u := range users {
			if ok, out := curlPOP3Login(t, b.ports.POP3S, u, "pw "+u); !ok {
				t.Fatalf("round %d: B does not log %s in:\n%s\nB's log:\n%s", round, u, out, b.stderr)
			}
		}
	}
	if code, _, stderr := runCLI(t, "new pw 1\n", "user", "passwd", users[0], "--config", a.config); code != 0 {
		t.Fatalf("user passwd: %s", stderr)
	}
	waitFor(t, 5*time.Second, "B takes the new password", func() bool {
		ok, _ := curlPOP3Login(t, b.ports.POP3S, users[0], "new pw 1")
		return ok
	})
	if ok, _ := curlPOP3Login(t, b.ports.POP3S, users[0], "pw "+users[0]); ok {
		t.Fatal("B still takes the old password")
	}

	smtp := fmt.Sprintf("127.0.0.1:%d", b.ports.SMTP)
	if out := swaks(t, smtp, "--to", "sales@example.test", "--quit-after", "RCPT"); !strings.Contains(out, "550") {
		t.Fatalf("B accepts mail for an alias nobody has:\n%s", out)
	}
	if code, _, stderr := runCLI(t, "", "user", "alias", users[1], "sales@example.test", "--config", a.config); code != 0 {
		t.Fatalf("user alias: %s", stderr)
	}
	var last string
	deadline := time.Now().Add(5 * time.Second)
	for last = swaks(t, smtp, "--to", "sales@example.test", "--quit-after", "RCPT"); !strings.Contains(last, "<sales@example.test> gets this"); last = swaks(t, smtp, "--to", "sales@example.test", "--quit-after", "RCPT") {
		if time.Now().After(deadline) {
			t.Fatalf("B refuses mail for the alias added through A:\n%s", last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
