package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestImportKilledThenRerun kills `mailsetup import --from-maildir` with
// SIGKILL in the middle of a large import (batches committed, one being
// written), runs it again, and checks with a real POP3 client (curl)
// against both servers: our UIDL list is exactly the old Dovecot's, each
// message once, none lost, and the mailbox loads cleanly.
func TestImportKilledThenRerun(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	old := startOldDovecot(t)
	const n = 6000
	msgs := make([]string, n)
	pad := strings.Repeat("0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrs\n", 60)
	for i := range msgs {
		msgs[i] = fmt.Sprintf("From: a@example.org\nTo: user1@example.test\nSubject: old %d\nMessage-ID: <old%d@example.org>\n\n%d\n%s", i, i, i, pad)
	}
	old.put(t, "user1", msgs...)
	// The old server's UIDLs, as a POP3 client sees them (this also has
	// Dovecot write dovecot-uidlist, which the import reads).
	oldUIDLs := uidlList(t, "--cacert", filepath.Join(old.dir, "dovecot", "ssl", "cert.pem"), "-u", "user1@example.test:secret",
		fmt.Sprintf("pop3s://127.0.0.1:%d/", old.pop3s))
	if len(oldUIDLs) != n {
		t.Fatalf("old Dovecot lists %d UIDLs, want %d", len(oldUIDLs), n)
	}

	m := prepareMail(t, func(t *testing.T, m *mailService, config string) string { return config })
	const password = "new-server-password"
	if code, _, stderr := runCLI(t, password+"\n", "user", "add", "--config", m.config, "user1@example.test"); code != 0 {
		t.Fatalf("user add: %s", stderr)
	}
	accts := writeAccounts(t, "user1@example.test,example.test/user1/Maildir")
	args := []string{"import", "--config", m.config, "--from-maildir", filepath.Join(old.dir, "mail"), "--accounts", accts}
	box := filepath.Join(m.dir, "mail", "example.test", "user1", "Maildir")
	stored := func() int {
		k := 0
		for _, sub := range []string{"new", "cur"} {
			names, _ := os.ReadDir(filepath.Join(box, sub))
			k += len(names)
		}
		return k
	}

	cmd := exec.Command(binary, args...)
	outPath := filepath.Join(t.TempDir(), "import.out")
	outFile, err := os.Create(outPath)
	if err != nil {
		t.Fatal(err)
	}
	defer outFile.Close()
	cmd.Stdout, cmd.Stderr = outFile, outFile
	output := func() string { b, _ := os.ReadFile(outPath); return string(b) }
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() }) // only the process this test started
	deadline := time.Now().Add(60 * time.Second)
	for stored() < 200 {
		select {
		case err := <-done:
			t.Fatalf("import ended (%v) before it could be killed; make the import larger\n%s", err, output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("import stored nothing in 60 s\n%s", output())
		}
		time.Sleep(2 * time.Millisecond)
	}
	// A moment later at random: a batch being written, fsynced, placed
	// or indexed.
	time.Sleep(time.Duration(rand.IntN(40)) * time.Millisecond)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-done
	before := stored()
	if before >= n {
		t.Fatalf("the import had stored all %d messages when killed; make the import larger", n)
	}
	tmpLeft, _ := os.ReadDir(filepath.Join(box, "tmp"))
	t.Logf("killed with %d of %d messages in new/ and cur/, %d files in tmp/", before, n, len(tmpLeft))

	code, stdout, stderr := runBinary(t, "", "", args...)
	if code != 0 {
		t.Fatalf("rerun: exit %d\n%s%s", code, stdout, stderr)
	}
	re := regexp.MustCompile(`user1@example.test: found (\d+), imported (\d+), skipped (\d+) \(already here\), refused 0`)
	mm := re.FindStringSubmatch(stdout)
	if mm == nil {
		t.Fatalf("rerun report:\n%s", stdout)
	}
	found, _ := strconv.Atoi(mm[1])
	imported, _ := strconv.Atoi(mm[2])
	skipped, _ := strconv.Atoi(mm[3])
	if found != n || imported+skipped != n || skipped < before || imported == 0 {
		t.Errorf("rerun: found %d, imported %d, skipped %d; %d were stored before", found, imported, skipped, before)
	}
	if got := stored(); got != n {
		t.Errorf("%d message files after the rerun, want %d", got, n)
	}

	m.service = startServe(t, "--config", m.config)
	defer m.stop(t)
	ours := uidlList(t, "-k", "-u", "user1@example.test:"+password, fmt.Sprintf("pop3s://127.0.0.1:%d/", m.ports.POP3S))
	if len(ours) != n {
		t.Errorf("mailsetup lists %d UIDLs, want %d", len(ours), n)
	}
	slices.Sort(ours)
	if dup := slices.Compact(slices.Clone(ours)); len(dup) != len(ours) {
		t.Errorf("%d UIDLs listed twice", len(ours)-len(dup))
	}
	slices.Sort(oldUIDLs)
	if !slices.Equal(ours, oldUIDLs) {
		t.Errorf("UIDLs differ from the old server's")
	}
	if strings.Contains(m.stderr.String(), "rebuilding") || strings.Contains(m.stderr.String(), "unreadable") {
		t.Errorf("the mailbox did not load cleanly:\n%s", m.stderr)
	}
}

// uidlList runs curl's POP3 UIDL with args (credentials, URL) and returns
// the UIDLs listed.
func uidlList(t *testing.T, args ...string) []string {
	t.Helper()
	r := curl(t, append([]string{"-X", "UIDL", "--max-time", "60"}, args...)...)
	var out []string
	for l := range strings.Lines(string(r.body)) {
		f := strings.Fields(l)
		if len(f) == 2 {
			out = append(out, f[1])
		}
	}
	return out
}
