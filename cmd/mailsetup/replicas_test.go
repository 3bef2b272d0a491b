package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"mailsetup/internal/testkit"
	"mailsetup/server"
	"mailsetup/server/accounts"
	"mailsetup/server/database"
	"mailsetup/server/web/console"
)

// replicaConfig points a generated config at the database and makes
// three failures from one address enough for a lockout.
func replicaConfig(pg *testkit.Postgres) func(t *testing.T, m *mailService, config string) string {
	return func(t *testing.T, m *mailService, config string) string {
		config = strings.Replace(config, "[mail]\n", "[mail]\nlogin_failures_per_ip = 3\n", 1)
		return config + fmt.Sprintf("\n[self_help]\nchecks_per_address_per_hour = 1\n\n[database]\nurl = %q\npassword_file = %q\n", pg.URL, pg.PasswordFile)
	}
}

// curlPOP3Login logs in over POP3S with the real curl and reports whether
// the server took the password; the server's answer is returned too.
func curlPOP3Login(t *testing.T, port int, user, password string) (bool, string) {
	t.Helper()
	path := testkit.Tool(t, "curl", "curl")
	cmd := exec.Command(path, "-sS", "-k", "-v", "--max-time", "20", "-u", user+":"+password, fmt.Sprintf("pop3s://127.0.0.1:%d/", port))
	var errb bytes.Buffer
	cmd.Stderr = &errb
	err := cmd.Run()
	return err == nil, errb.String()
}

// curlStaff runs curl with a cookie jar shared by both replicas (one
// browser, two replicas behind a load balancer).
func curlStaff(t *testing.T, jar string, args ...string) curlResult {
	t.Helper()
	return curl(t, append([]string{"-c", jar, "-b", jar}, args...)...)
}

// TestTwoReplicasOnPostgres runs two replicas of the real binary on one
// private PostgreSQL: the schema migrated by two processes at once; an
// account added through one replica's command logs in on the other
// (curl, POP3S); a staff session from A works on B (curl, one cookie
// jar) and A's audit entry is on B's audit page; B's POP3 login shows
// on A's console within seconds, its bare local part in A's overview
// CSV; the
// self-help limit holds across them; a password
// changed through A is the one B takes; with PostgreSQL stopped a cached
// login still works, a password change and a staff sign-in are refused
// with a clear error and
// /healthz says degraded, and autoconfig keeps answering; restarted, a
// lockout through A is enforced by B at the next guess.
func TestTwoReplicasOnPostgres(t *testing.T) {
	testkit.Tool(t, "curl", "curl")
	pg := testkit.StartPostgres(t)
	a := prepareMail(t, replicaConfig(pg))
	b := prepareMail(t, replicaConfig(pg))
	// B has A's staff member (one staff, any replica).
	hash := regexp.MustCompile(`(?m)^  password_hash = ".*"$`)
	aText, err := os.ReadFile(a.config)
	if err != nil {
		t.Fatal(err)
	}
	bText, err := os.ReadFile(b.config)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(b.config, hash.ReplaceAllLiteral(bText, hash.Find(aText)), 0o600); err != nil {
		t.Fatal(err)
	}
	staffPassword := staffPasswordOf(t, a)

	// Two processes migrate the empty database at once.
	var wg sync.WaitGroup
	outs := make([][]byte, 2)
	errs := make([]error, 2)
	for i, cfg := range []string{a.config, b.config} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], errs[i] = exec.Command(binary, "db", "migrate", "--config", cfg).CombinedOutput()
		}()
	}
	wg.Wait()
	for i := range errs {
		if errs[i] != nil || !strings.Contains(string(outs[i]), fmt.Sprintf("database schema at version %d", database.Version())) {
			t.Fatalf("db migrate: %v\n%s", errs[i], outs[i])
		}
	}
	a.service = startServe(t, "--config", a.config)
	b.service = startServe(t, "--config", b.config)

	// An account added through A's command; B (already running) uses it.
	if code, _, stderr := runCLI(t, "first password 1\n", "user", "add", "jane@example.test", "--config", a.config); code != 0 {
		t.Fatalf("user add: %s", stderr)
	}
	// The feed carries the change in milliseconds; a wrong guess here
	// would count as a failed login, so wait a moment once.
	time.Sleep(500 * time.Millisecond)
	if ok, out := curlPOP3Login(t, b.ports.POP3S, "jane@example.test", "first password 1"); !ok {
		t.Fatalf("B does not log in the account added through A:\n%s\nB's log:\n%s", out, b.stderr)
	}

	// A staff session from A works on B.
	jar := filepath.Join(t.TempDir(), "cookies")
	baseA, baseB := fmt.Sprintf("https://127.0.0.1:%d", a.ports.HTTPS), fmt.Sprintf("https://127.0.0.1:%d", b.ports.HTTPS)
	form := curlStaff(t, jar, baseA+"/staff/signin")
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(form.body)
	if m == nil {
		t.Fatalf("no csrf field on A's sign-in page:\n%s", form.body)
	}
	if r := curlStaff(t, jar, "-d", "csrf="+string(m[1]), "-d", "name=admin", "--data-urlencode", "password="+staffPassword, baseA+"/staff/signin"); r.status != 303 {
		t.Fatalf("sign-in on A: %d\n%s", r.status, r.body)
	}
	if r := curlStaff(t, jar, baseB+"/staff/"); r.status != 200 {
		t.Fatalf("B does not take A's staff session: %d\n%s", r.status, r.headers)
	}

	// A's audit entry (the sign-in) is on B's audit page.
	waitFor(t, 5*time.Second, "B's audit page lists the sign-in on A", func() bool {
		r := curlStaff(t, jar, baseB+"/staff/audit")
		return r.status == 200 && bytes.Contains(r.body, []byte("<td>sign-in</td>"))
	})

	// B's login appears on A's console.
	waitFor(t, 10*time.Second, "A's console shows B's POP3 login", func() bool {
		r := curlStaff(t, jar, baseA+"/staff/accounts/jane@example.test")
		return r.status == 200 && !bytes.Contains(r.body, []byte("has seen nothing"))
	})
	// B's client typing the bare local part is in both replicas'
	// overview and its CSV (the observations reach A through the
	// database).
	if ok, out := curlPOP3Login(t, b.ports.POP3S, "jane", "first password 1"); ok || !strings.Contains(out, "use your full email address") {
		t.Fatalf("B took the bare local part:\n%s", out)
	}
	today := time.Now().UTC().Format("2006-01-02") + ",example.test,1,0,0,0"
	for _, base := range []string{baseA, baseB} {
		// A console shows a counted overview again for its maximum age
		// (30 s): a poll before the event arrived may be shown that long.
		waitFor(t, 10*time.Second+console.DefaultOverviewMaxAge, base+"'s overview CSV counts B's bare local part", func() bool {
			r := curlStaff(t, jar, base+"/staff/overview.csv")
			return r.status == 200 && bytes.Contains(r.body, []byte(today+"\n"))
		})
	}

	// The self-help limit (one check per address and hour here) holds
	// across replicas: B refuses the check A ran.
	clients := "/check/jane@example.test?clients=1"
	if r := curl(t, baseA+clients); r.status != 200 {
		t.Fatalf("A's first check: %d\n%s", r.status, r.body)
	}
	time.Sleep(2500 * time.Millisecond) // the next batch, and B's poll at the latest
	if r := curl(t, baseB+clients); r.status != 429 {
		t.Fatalf("B runs the check A ran under a limit of one: %d", r.status)
	}

	// A password changed through A is the one B takes.
	if code, _, stderr := runCLI(t, "second password 2\n", "user", "passwd", "jane@example.test", "--config", a.config); code != 0 {
		t.Fatalf("user passwd: %s", stderr)
	}
	waitFor(t, 5*time.Second, "B takes the new password", func() bool {
		ok, _ := curlPOP3Login(t, b.ports.POP3S, "jane@example.test", "second password 2")
		return ok
	})
	if ok, _ := curlPOP3Login(t, b.ports.POP3S, "jane@example.test", "first password 1"); ok {
		t.Fatal("B still takes the old password")
	}

	// PostgreSQL stopped.
	pg.Stop()
	if ok, out := curlPOP3Login(t, b.ports.POP3S, "jane@example.test", "second password 2"); !ok {
		t.Fatalf("a cached login fails with the database down:\n%s", out)
	}
	code, _, stderr := runCLI(t, "third password 3\n", "user", "passwd", "jane@example.test", "--config", a.config)
	if code == 0 || !strings.Contains(stderr, "database") {
		t.Fatalf("user passwd with the database down: exit %d, %q; want a failure naming the database", code, stderr)
	}
	waitFor(t, 10*time.Second, "B's /healthz says degraded", func() bool {
		r := curl(t, fmt.Sprintf("http://127.0.0.1:%d/healthz", b.ports.HTTP))
		return r.status == 200 && bytes.HasPrefix(r.body, []byte("degraded: database unreachable"))
	})
	// A staff sign-in is refused, not half made.
	jar2 := filepath.Join(t.TempDir(), "cookies")
	form = curlStaff(t, jar2, baseB+"/staff/signin")
	if m = regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(form.body); m == nil {
		t.Fatalf("no csrf field on B's sign-in page with the database down: %d", form.status)
	}
	if r := curlStaff(t, jar2, "-d", "csrf="+string(m[1]), "-d", "name=admin", "--data-urlencode", "password="+staffPassword, baseB+"/staff/signin"); r.status != 503 || !bytes.Contains(r.body, []byte("database is unavailable")) {
		t.Fatalf("sign-in on B with the database down: %d\n%s", r.status, r.body)
	}
	if r := curl(t, fmt.Sprintf("http://127.0.0.1:%d/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=jane@example.test", b.ports.HTTP)); r.status != 200 {
		t.Fatalf("autoconfig with the database down: %d", r.status)
	}

	// Restarted: healthy again, and a lockout through A holds on B.
	pg.Start()
	for _, m := range []*mailService{a, b} {
		waitFor(t, 15*time.Second, "/healthz recovers", func() bool {
			r := curl(t, fmt.Sprintf("http://127.0.0.1:%d/healthz", m.ports.HTTP))
			return string(r.body) == "ok\n"
		})
	}
	for range 3 {
		if ok, _ := curlPOP3Login(t, a.ports.POP3S, "jane@example.test", "wrong password"); ok {
			t.Fatal("a wrong password logged in")
		}
	}
	// The next guess, through B, is refused unchecked: B reads the
	// feed before any password check its cache cannot answer.
	ok, out := curlPOP3Login(t, b.ports.POP3S, "jane@example.test", "another guess")
	if ok || !strings.Contains(out, "-ERR [SYS/TEMP] too many failed logins") {
		t.Fatalf("B checks a guess from the address A locked out: ok=%v\n%s", ok, out)
	}
	a.stop(t)
	b.stop(t)
}

// staffPasswordOf is the console password EnsureDefault printed for m.
func staffPasswordOf(t *testing.T, m *mailService) string {
	t.Helper()
	if m.staffPassword == "" {
		t.Fatal("prepareMail kept no staff password")
	}
	return m.staffPassword
}

// TestReadmeReplicas runs the README's "Several replicas on PostgreSQL"
// block as written, in one shell, against a private PostgreSQL: only the
// URL and the password differ.
func TestReadmeReplicas(t *testing.T) {
	cmds := readmeBlock(t, "## Several replicas on PostgreSQL")
	pg := testkit.StartPostgres(t)
	password, err := os.ReadFile(pg.PasswordFile)
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	if _, err := server.EnsureDefault(filepath.Join(work, "mailsetup-data"), freePorts(t)); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(binary, filepath.Join(work, "mailsetup")); err != nil {
		t.Fatal(err)
	}
	const url = "postgres://mailsetup@db.example.net:5432/mailsetup?sslmode=verify-full"
	script := strings.Join(cmds, "\n")
	if !strings.Contains(script, url) || !strings.Contains(script, "'the database password'") {
		t.Fatalf("the block no longer has the URL and password this test replaces:\n%s", script)
	}
	script = strings.NewReplacer(url, pg.URL, "'the database password'", "'"+strings.TrimSpace(string(password))+"'").Replace(script)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-e", "-c", script)
	cmd.Dir = work
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the README's block failed: %v\n%s", err, out)
	}
	for _, want := range []string{fmt.Sprintf("database schema at version %d", database.Version()),
		"accounts: 1 copied into the database", "demo@example.test\tcreated ", "jane@example.test\tcreated "} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the output lacks %q:\n%s", want, out)
		}
	}
	// The account is in the database, not in the file; export writes it
	// there with its hash.
	file := filepath.Join(work, "mailsetup-data", "accounts.json")
	if data, err := os.ReadFile(file); err == nil && strings.Contains(string(data), "jane@") {
		t.Error("user add wrote the file, not the database")
	}

	// "Moving an installation in and out", as written, after a staff
	// sign-in in the audit log: the import adds the entry and keeps
	// jane, the export writes jane into the file, the second export
	// copies nothing. The output shown in the README is the import's.
	audit := `{"time":"2026-12-01T10:00:00Z","staff":"admin","action":"sign-in","remote":"192.0.2.7"}` + "\n"
	if err := os.WriteFile(filepath.Join(work, "mailsetup-data", "audit.log"), []byte(audit), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd = exec.CommandContext(ctx, "sh", "-e", "-c", strings.Join(readmeBlock(t, "### Moving an installation in and out"), "\n"))
	cmd.Dir = work
	if out, err = cmd.CombinedOutput(); err != nil {
		t.Fatalf("the README's db import/export block failed: %v\n%s", err, out)
	}
	shown := readmeOutput(t, "### Moving an installation in and out")
	if len(shown) != 3 {
		t.Fatalf("the README shows %d lines of output, want the import's 3", len(shown))
	}
	for _, want := range append(shown, "accounts: 1 copied into the data directory", "audit entries: 0 copied into the data directory",
		"accounts: 0 copied into the data directory "+filepath.Join(work, "mailsetup-data")+", 2 already there") {
		if !strings.Contains(string(out), want) {
			t.Errorf("the output lacks %q:\n%s", want, out)
		}
	}
	store, err := accounts.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := accounts.CheckPassword(store.List()[1].PasswordHash, "a long password"); !ok || store.List()[1].Address != "jane@example.test" {
		t.Errorf("the exported file does not take jane's password: %+v", store.List())
	}
}

// readmeOutput is the output the README shows after the sh block that
// follows heading (the next fenced block without a language), by line.
func readmeOutput(t *testing.T, heading string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, _ := strings.Cut(string(data), "\n"+heading+"\n")
	_, after, _ = strings.Cut(after, "```sh\n")
	_, after, _ = strings.Cut(after, "\n```\n")
	_, block, ok := strings.Cut(after, "```\n")
	if !ok {
		t.Fatalf("no output block after the sh block of %q", heading)
	}
	block, _, _ = strings.Cut(block, "```\n")
	return strings.Split(strings.TrimSuffix(block, "\n"), "\n")
}
