package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"mailsetup/internal/testkit"
	"mailsetup/server"
	"mailsetup/server/web/console"
)

// databaseSection is the [database] of a config on pg.
func databaseSection(pg *testkit.Postgres) string {
	return fmt.Sprintf("\n[database]\nurl = %q\npassword_file = %q\n", pg.URL, pg.PasswordFile)
}

// withoutDatabase cuts the [database] section (the last one) off a
// config.
func withoutDatabase(t *testing.T, config string) string {
	t.Helper()
	i := strings.LastIndex(config, "\n[database]\n")
	if i < 0 {
		t.Fatalf("no [database] in the config:\n%s", config)
	}
	return config[:i+1]
}

// signInStaff signs admin in with curl (extra are more curl arguments)
// and returns the cookie jar.
func signInStaff(t *testing.T, base, password string, extra ...string) string {
	t.Helper()
	jar := filepath.Join(t.TempDir(), "cookies")
	form := curlStaff(t, jar, append(extra, base+"/staff/signin")...)
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(form.body)
	if m == nil {
		t.Fatalf("no csrf field on the sign-in page: %d\n%s", form.status, form.body)
	}
	if r := curlStaff(t, jar, append(extra, "-d", "csrf="+string(m[1]), "-d", "name=admin", "--data-urlencode", "password="+password, base+"/staff/signin")...); r.status != http.StatusSeeOther {
		t.Fatalf("staff sign-in at %s: %d\n%s", base, r.status, r.body)
	}
	return jar
}

// apiFindings is the support API's findings of an account (curl, a
// bearer token), as "id severity" lines, sorted.
func apiFindings(t *testing.T, base, token, address string) []string {
	t.Helper()
	_, findings := apiObservations(t, base, token, address)
	var out []string
	for _, f := range findings {
		out = append(out, fmt.Sprintf("%s %s", f.ID, f.Severity))
	}
	slices.Sort(out)
	return out
}

// auditRows are the rows the audit page shows for the entries of an
// audit file.
func auditRows(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e console.AuditEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		rows = append(rows, fmt.Sprintf("<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td>", e.Time.Format("2006-01-02 15:04:05"),
			html.EscapeString(e.Staff), html.EscapeString(e.Action), html.EscapeString(e.Target)))
	}
	return rows
}

// missingRows are the rows the audit page at base lacks.
func missingRows(t *testing.T, base, jar string, rows []string) []string {
	t.Helper()
	r := curlStaff(t, jar, base+"/staff/audit")
	if r.status != http.StatusOK {
		t.Fatalf("audit page at %s: %d", base, r.status)
	}
	var missing []string
	for _, row := range rows {
		if !bytes.Contains(r.body, []byte(row)) {
			missing = append(missing, row)
		}
	}
	return missing
}

// TestDBImportExportMovesInstallation: a files-based serve gets real
// traffic (swaks without AUTH and with the bare local part, curl's POP3
// with the bare local part and leaving every message on the server, a
// staff sign-in and a lookup with curl); `db import` is refused while it
// runs, then moves its accounts, observations and audit log into a
// private PostgreSQL (twice: the second adds nothing); a serve on the
// database with a fresh data directory shows the same findings through
// the support API and the same audit entries on its audit page; `db
// export` into another fresh data directory is refused (it has its own
// demo account), then with --replace makes it a copy, and a serve on
// those files shows them again and takes the demo password.
func TestDBImportExportMovesInstallation(t *testing.T) {
	testkit.Tool(t, "curl", "curl")
	pg := testkit.StartPostgres(t)
	_, tokenEntry, stderr := runCLI(t, "", "staff", "token", "helpdesk")
	token := regexp.MustCompile(`mst_[A-Za-z0-9_-]{43}`).FindString(stderr)
	if token == "" {
		t.Fatalf("staff token: %s", stderr)
	}
	addToken := func(t *testing.T, m *mailService, config string) string { return config + "\n" + tokenEntry }
	a := prepareMail(t, addToken)
	a.service = startServe(t, "--config", a.config)
	baseA := fmt.Sprintf("https://127.0.0.1:%d", a.ports.HTTPS)

	// The incident's mistakes, with real clients.
	sub := fmt.Sprintf("127.0.0.1:%d", a.ports.Submission)
	if out := swaks(t, sub, "--tls", "--from", server.DemoAddress, "--to", server.DemoAddress); !strings.Contains(out, "530") {
		t.Fatalf("submission without AUTH:\n%s", out)
	}
	if out := swaks(t, sub, "--tls", "--auth", "PLAIN", "--auth-user", "demo", "--auth-password", a.password, "--from", server.DemoAddress, "--to", server.DemoAddress); !strings.Contains(out, "535") {
		t.Fatalf("bare local part over submission:\n%s", out)
	}
	a.send(t, "left on the server")
	if ok, out := curlPOP3Login(t, a.ports.POP3S, "demo", a.password); ok {
		t.Fatalf("POP3 took the bare local part:\n%s", out)
	}
	// Retrieved and left on the server (no DELE), as the overloaded
	// POP servers' clients did.
	if r := exec.Command(testkit.Tool(t, "curl", "curl"), "-sS", "-k", "--max-time", "20", "-u", server.DemoAddress+":"+a.password,
		fmt.Sprintf("pop3s://127.0.0.1:%d/1", a.ports.POP3S)); r.Run() != nil {
		t.Fatal("POP3 retrieval failed")
	}
	jar := signInStaff(t, baseA, a.staffPassword)
	if r := curlStaff(t, jar, baseA+"/staff/accounts/"+server.DemoAddress); r.status != http.StatusOK {
		t.Fatalf("lookup: %d", r.status)
	}
	var want []string
	waitFor(t, 10*time.Second, "A's findings", func() bool {
		want = apiFindings(t, baseA, token, server.DemoAddress)
		return len(want) >= 3
	})

	// The same data directory with the database: db import.
	aText, err := os.ReadFile(a.config)
	if err != nil {
		t.Fatal(err)
	}
	importConfig := filepath.Join(a.dir, "with-database.toml")
	if err := os.WriteFile(importConfig, append(aText, databaseSection(pg)...), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runCLI(t, "", "db", "import", "--config", importConfig); code == 0 || !strings.Contains(stderr, "stop it first") {
		t.Fatalf("db import while serve runs: exit %d, %s", code, stderr)
	}
	a.stop(t)
	rows := auditRows(t, filepath.Join(a.dir, "audit.log"))
	if len(rows) < 2 {
		t.Fatalf("the audit log has %d entries", len(rows))
	}
	snap, err := os.ReadFile(filepath.Join(a.dir, "observations.json"))
	if err != nil {
		t.Fatal(err)
	}
	observed := bytes.Count(snap, []byte(`{"key":`))
	code, out, stderr := runCLI(t, "", "db", "import", "--config", importConfig)
	if code != 0 {
		t.Fatalf("db import: %d %s %s", code, out, stderr)
	}
	for _, w := range []string{"accounts: 1 copied into the database, 0 already there",
		fmt.Sprintf("observations: %d copied into the database, 0 already there", observed),
		fmt.Sprintf("audit entries: %d copied into the database, 0 already there", len(rows))} {
		if !strings.Contains(out, w) {
			t.Errorf("db import's report lacks %q:\n%s", w, out)
		}
	}
	code, out, stderr = runCLI(t, "", "db", "import", "--config", importConfig)
	if code != 0 || !strings.Contains(out, "accounts: 0 copied into the database, 1 already there") ||
		!strings.Contains(out, fmt.Sprintf("observations: 0 copied into the database, %d already there", observed)) ||
		!strings.Contains(out, fmt.Sprintf("audit entries: 0 copied into the database, %d already there", len(rows))) {
		t.Fatalf("db import again: %d\n%s%s", code, out, stderr)
	}

	// A serve on the database, its own fresh data directory, A's staff.
	// A's staff member and token, on the database.
	likeA := func(t *testing.T, m *mailService, config string) string {
		hash := regexp.MustCompile(`(?m)^  password_hash = ".*"$`)
		return hash.ReplaceAllLiteralString(config, hash.FindString(string(aText))) + "\n" + tokenEntry + databaseSection(pg)
	}
	// showsA checks that the serve m shows A's findings and audit
	// entries (with the real curl).
	showsA := func(m *mailService, which string) {
		t.Helper()
		base := fmt.Sprintf("https://127.0.0.1:%d", m.ports.HTTPS)
		if got := apiFindings(t, base, token, server.DemoAddress); !slices.Equal(got, want) {
			t.Errorf("the serve %s finds %q, the first serve found %q", which, got, want)
		}
		jar := signInStaff(t, base, a.staffPassword)
		if missing := missingRows(t, base, jar, rows); len(missing) > 0 {
			t.Errorf("the audit page of the serve %s lacks %d of the first entries, e.g. %s", which, len(missing), missing[0])
		}
	}
	b := prepareMail(t, likeA)
	b.service = startServe(t, "--config", b.config)
	showsA(b, "on the database")
	// What B sees is kept in the database too: an IMAP login (A saw
	// none), written back when B stops at the latest.
	if out, err := exec.Command(testkit.Tool(t, "curl", "curl"), "-sS", "-k", "--max-time", "20", "-u", server.DemoAddress+":"+a.password,
		fmt.Sprintf("imaps://127.0.0.1:%d/", b.ports.IMAPS)).CombinedOutput(); err != nil {
		t.Fatalf("IMAP login on the serve on the database: %v\n%s", err, out)
	}
	waitFor(t, 10*time.Second, "B's findings after its IMAP login", func() bool {
		want = apiFindings(t, fmt.Sprintf("https://127.0.0.1:%d", b.ports.HTTPS), token, server.DemoAddress)
		return len(want) > 0
	})
	b.stop(t)

	// Back into a fresh data directory: it has its own demo account,
	// so a plain export is refused; --replace makes it a copy.
	c := prepareMail(t, likeA)
	code, out, stderr = runCLI(t, "", "db", "export", "--config", c.config)
	if code == 0 || !strings.Contains(stderr, "nothing copied") || !strings.Contains(stderr, "different accounts") ||
		!strings.Contains(stderr, server.DemoAddress) || !strings.Contains(stderr, "--replace") {
		t.Fatalf("db export over another demo account: exit %d\n%s%s", code, out, stderr)
	}
	code, out, stderr = runCLI(t, "", "db", "export", "--replace", "--config", c.config)
	if code != 0 || !strings.Contains(out, "accounts: 0 copied into the data directory") || !strings.Contains(out, "1 different replaced") ||
		!strings.Contains(out, fmt.Sprintf("observations: %d copied", observed)) || !strings.Contains(out, "audit entries: ") {
		t.Fatalf("db export --replace: %d\n%s%s", code, out, stderr)
	}
	code, out, stderr = runCLI(t, "", "db", "export", "--config", c.config)
	if code != 0 || strings.Count(out, " 0 copied") != 3 {
		t.Fatalf("db export again: %d\n%s%s", code, out, stderr)
	}
	cText, err := os.ReadFile(c.config)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.config, []byte(withoutDatabase(t, string(cText))), 0o600); err != nil {
		t.Fatal(err)
	}
	if snap, err := os.ReadFile(filepath.Join(c.dir, "observations.json")); err != nil || !bytes.Contains(snap, []byte(`"proto":"imap"`)) {
		t.Errorf("the exported observations lack B's IMAP login (%v):\n%s", err, snap)
	}
	c.service = startServe(t, "--config", c.config)
	defer c.stop(t)
	showsA(c, "on the exported files")
	if ok, out := curlPOP3Login(t, c.ports.POP3S, server.DemoAddress, a.password); !ok {
		t.Errorf("the exported account does not take A's demo password:\n%s", out)
	}
}

// TestDBImportBadInput: every bad input of db import is refused with an
// error naming it, and nothing is copied: a line of the audit log that
// is not an entry, a snapshot that does not parse, --merge with
// --replace; the files fixed, the import copies everything.
func TestDBImportBadInput(t *testing.T) {
	pg := testkit.StartPostgres(t)
	m := prepareMail(t, func(t *testing.T, m *mailService, config string) string { return config + databaseSection(pg) })
	audit := filepath.Join(m.dir, "audit.log")
	good := `{"time":"2026-12-01T10:00:00Z","staff":"admin","action":"sign-in","remote":"127.0.0.1"}` + "\n"
	if err := os.WriteFile(audit, []byte(good+"not json at all\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runCLI(t, "", "db", "import", "--config", m.config)
	if code == 0 || !strings.Contains(stderr, audit+" line 2") || !strings.Contains(stderr, "not json at all") {
		t.Fatalf("a bad audit line: exit %d\n%s%s", code, out, stderr)
	}
	if err := os.WriteFile(audit, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	snap := filepath.Join(m.dir, "observations.json")
	if err := os.WriteFile(snap, []byte(`{"version":1,"accounts":[{"key":"a@example.test","logins":"x"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, stderr = runCLI(t, "", "db", "import", "--config", m.config)
	if code == 0 || !strings.Contains(stderr, "observations "+snap+": account 1") {
		t.Fatalf("a bad snapshot: exit %d\n%s%s", code, out, stderr)
	}
	if code, _, stderr := runCLI(t, "", "db", "import", "--merge", "--replace", "--config", m.config); code != exitUsage || !strings.Contains(stderr, "--merge and --replace") {
		t.Fatalf("--merge --replace: exit %d %s", code, stderr)
	}
	os.Remove(snap)
	code, out, stderr = runCLI(t, "", "db", "import", "--config", m.config)
	if code != 0 || !strings.Contains(out, "accounts: 1 copied") || !strings.Contains(out, "observations: 0 copied") || !strings.Contains(out, "audit entries: 1 copied") {
		t.Fatalf("db import after the fixes (nothing was copied before): exit %d\n%s%s", code, out, stderr)
	}
	// A different audit file: refused naming an entry; --merge adds it.
	other := `{"time":"2026-12-02T11:00:00Z","staff":"bob","action":"lookup","target":"x@example.test"}` + "\n"
	if err := os.WriteFile(audit, []byte(other), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, stderr = runCLI(t, "", "db", "import", "--config", m.config)
	if code == 0 || !strings.Contains(stderr, "different audit entries") || !strings.Contains(stderr, "2026-12-01T10:00:00Z admin sign-in") {
		t.Fatalf("a different audit log: exit %d\n%s%s", code, out, stderr)
	}
	code, out, stderr = runCLI(t, "", "db", "import", "--merge", "--config", m.config)
	if code != 0 || !strings.Contains(out, "audit entries: 1 copied into the database, 0 already there, 1 only in the target kept") {
		t.Fatalf("--merge: exit %d\n%s%s", code, out, stderr)
	}
}
