package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailsetup/finding"
	"mailsetup/probe"
)

// TestStaffCommandsAndAPIWithCurl: `mailsetup staff token` and `staff
// hash` print config entries that work once added to the config and the
// service reloads it (SIGHUP, no restart): the token with the real curl
// against the support API, the new staff member by signing in.
func TestStaffCommandsAndAPIWithCurl(t *testing.T) {
	m := startMail(t)
	// The misuse the API should report.
	if out := swaks(t, fmt.Sprintf("127.0.0.1:%d", m.ports.Submission), "--tls", "--from", "demo@example.test", "--to", "demo@example.test"); !strings.Contains(out, "530") {
		t.Fatalf("submission without AUTH was not refused:\n%s", out)
	}

	code, entry, stderr := runCLI(t, "", "staff", "token", "helpdesk")
	if code != 0 {
		t.Fatalf("staff token: %d %s", code, stderr)
	}
	token := regexp.MustCompile(`mst_[A-Za-z0-9_-]{43}`).FindString(stderr)
	if token == "" || strings.Contains(entry, token) || !strings.Contains(entry, "[[staff.token]]") {
		t.Fatalf("staff token printed:\nstdout %s\nstderr %s", entry, stderr)
	}
	code, userEntry, stderr := runCLI(t, "second staff password\n", "staff", "hash", "bob")
	if code != 0 || !strings.Contains(userEntry, "[[staff.user]]") || !strings.Contains(userEntry, `password_hash = "$argon2id$`) {
		t.Fatalf("staff hash: %d\n%s\n%s", code, userEntry, stderr)
	}
	for _, bad := range [][]string{{"staff", "token", "bad name"}, {"staff", "hash"}, {"staff", "bogus", "x"}} {
		if code, _, stderr := runCLI(t, "pw\n", bad...); code == 0 || stderr == "" {
			t.Errorf("%v: exit %d, stderr %q", bad, code, stderr)
		}
	}
	cfg, err := os.ReadFile(m.config)
	if err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("https://127.0.0.1:%d", m.ports.HTTPS)
	auth := "Authorization: Bearer " + token
	if r := curl(t, "-H", auth, base+"/api/v1/troubles"); r.status != http.StatusNotFound || !strings.Contains(string(r.body), "SIGHUP") {
		t.Fatalf("the API before any token: %d %s", r.status, r.body)
	}
	// A change that needs a restart is only reported.
	cfg = []byte(strings.Replace(string(cfg), `hostname = "localhost"`, `hostname = "mail.example.test"`, 1))
	if err := os.WriteFile(m.config, append(cfg, []byte("\n"+entry+"\n"+userEntry)...), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := m.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(m.stderr.String(), "config reloaded"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no reload after SIGHUP:\n%s", m.stderr)
		}
	}
	if log := m.stderr.String(); !strings.Contains(log, "need a restart") || !strings.Contains(log, "keys=hostname") {
		t.Errorf("the hostname change is not reported as needing a restart:\n%s", log)
	}

	r := curl(t, "-H", auth, base+"/api/v1/accounts/demo@example.test/observations")
	var obs struct {
		Observed     bool `json:"observed"`
		Observations struct {
			Findings []finding.Finding `json:"findings"`
		} `json:"observations"`
	}
	if err := json.Unmarshal(r.body, &obs); err != nil || r.status != http.StatusOK || !obs.Observed {
		t.Fatalf("observations: %d %s (%v)", r.status, r.body, err)
	}
	if len(obs.Observations.Findings) == 0 || obs.Observations.Findings[0].ID != "smtp.auth-disabled" {
		t.Errorf("observations findings: %s", r.body)
	}
	if r := curl(t, "-H", auth, base+"/api/v1/troubles"); r.status != http.StatusOK || !strings.Contains(string(r.body), `"address":"demo@example.test"`) {
		t.Errorf("troubles: %d %s", r.status, r.body)
	}
	if r := curl(t, "-H", "Authorization: Bearer mst_not-a-token", base+"/api/v1/accounts/demo@example.test/observations"); r.status != http.StatusUnauthorized {
		t.Errorf("unknown token: %d %s", r.status, r.body)
	}
	// Over plain HTTP from this machine the token is accepted (loopback).
	if r := curl(t, "-H", auth, fmt.Sprintf("http://127.0.0.1:%d/api/v1/accounts/demo@example.test/observations", m.ports.HTTP)); r.status != http.StatusOK {
		t.Errorf("loopback HTTP: %d %s", r.status, r.body)
	}

	body := `{"address":"demo@example.test","client":{"incoming":{"protocol":"imap","username":"demo"},"outgoing":{"auth":false}}}`
	r = curl(t, "-H", auth, "-H", "Content-Type: application/json", "--data-binary", body, base+"/api/v1/probe")
	var rep probe.Report
	if err := json.Unmarshal(r.body, &rep); err != nil || r.status != http.StatusOK {
		t.Fatalf("probe: %d %s (%v)", r.status, r.body, err)
	}
	got := map[string]bool{}
	for _, f := range rep.Findings {
		got[f.ID] = true
	}
	if !got["username.not-full-address"] || !got["smtp.auth-disabled"] || rep.Worst != finding.Critical {
		t.Errorf("probe findings: %v", got)
	}
	if r := curl(t, "-H", auth, "-H", "Content-Type: application/json", "--data-binary", `{"address":"demo@elsewhere.test"}`, base+"/api/v1/probe"); r.status != http.StatusNotFound || !strings.Contains(string(r.body), `"error"`) {
		t.Errorf("foreign domain: %d %s", r.status, r.body)
	}

	// The second staff member signs in (staffClientAs fails the test
	// otherwise).
	staffClientAs(t, base, "bob", "second staff password")
}
