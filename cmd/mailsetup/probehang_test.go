package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailsetup/internal/testkit"
	"mailsetup/probe"
)

// withTarpitDomain adds the domain tarpit.test, whose every server
// accepts and never greets, to the generated config.
func withTarpitDomain(t *testing.T, _ *mailService, config string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "\n[[domain]]\nname = \"tarpit.test\"\ndisplay_name = \"Tarpit\"\nweb_url = \"https://127.0.0.1:%d\"\n", testkit.Tarpit(t))
	for _, e := range []struct{ kind, sec string }{{"imap", "tls"}, {"imap", "starttls"}, {"pop3", "tls"}, {"pop3", "starttls"}, {"submission", "tls"}, {"submission", "starttls"}} {
		fmt.Fprintf(&b, "  [[domain.%s]]\n  host = \"127.0.0.1\"\n  port = %d\n  security = %q\n", e.kind, testkit.Tarpit(t), e.sec)
	}
	return config + b.String()
}

// TestProbeNeverHangs: `mailsetup probe` against servers that accept and
// never greet ends within --timeout (exit 2: they do not answer), and
// SIGTERM ends it within a second with the partial report (exit 3).
func TestProbeNeverHangs(t *testing.T) {
	m := prepareMail(t, withTarpitDomain)
	start := time.Now()
	code, stdout, stderr := runBinary(t, "", "secret\n", "probe", "john@tarpit.test", "--config", m.config, "--password-stdin", "--timeout", "3s")
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("probe with --timeout 3s took %v", took)
	}
	if code != 2 || !strings.Contains(stdout, "not finished") {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}

	cmd := exec.Command(binary, "probe", "john@tarpit.test", "--config", m.config, "--password-stdin", "--timeout", "60s", "--json")
	cmd.Stdin = strings.NewReader("secret\n")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	stopped := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	if took := time.Since(stopped); took > time.Second {
		t.Errorf("the probe ended %v after SIGTERM", took)
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
		t.Errorf("exit after SIGTERM: %v\n%s", err, errb.String())
	}
	var rep probe.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("no partial report (%v):\n%s\n%s", err, out.String(), errb.String())
	}
	if !rep.Interrupted || len(rep.Steps) == 0 {
		t.Errorf("partial report: interrupted %v, %d steps", rep.Interrupted, len(rep.Steps))
	}
	for _, s := range rep.Steps {
		if !s.NotFinished {
			t.Errorf("step %q against a tarpit is not marked not finished: %q", s.Name, s.Error)
		}
	}
}

// TestWebCheckNeverHangs: the same servers through the web's settings
// check (the support API): the answer comes within the 8 s the README
// promises.
func TestWebCheckNeverHangs(t *testing.T) {
	m := prepareMail(t, withTarpitDomain)
	code, entry, stderr := runCLI(t, "", "staff", "token", "helpdesk")
	if code != 0 {
		t.Fatalf("staff token: %d %s", code, stderr)
	}
	token := regexp.MustCompile(`mst_[A-Za-z0-9_-]{43}`).FindString(stderr)
	cfg, err := os.ReadFile(m.config)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(m.config, append(cfg, []byte("\n"+entry+"\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	m.service = startServe(t, "--config", m.config)
	defer m.stop(t)
	start := time.Now()
	r := curl(t, "-H", "Authorization: Bearer "+token, "-H", "Content-Type: application/json", "--max-time", "30",
		"--data-binary", `{"address":"john@tarpit.test"}`, fmt.Sprintf("https://127.0.0.1:%d/api/v1/probe", m.ports.HTTPS))
	if took := time.Since(start); took > 9*time.Second {
		t.Errorf("the web check took %v", took)
	}
	var rep probe.Report
	if err := json.Unmarshal(r.body, &rep); err != nil || r.status != http.StatusOK {
		t.Fatalf("API probe: %d %s (%v)", r.status, r.body, err)
	}
	if len(rep.Steps) == 0 || rep.Worst.String() != "critical" {
		t.Errorf("report: worst %s, %d steps", rep.Worst, len(rep.Steps))
	}
}

// TestProbeWithPolicyOnlyConfig: a config that only describes a domain's
// policy (servers that are not ours, no listeners) is enough for the
// probe; serve still refuses it.
func TestProbeWithPolicyOnlyConfig(t *testing.T) {
	dir := t.TempDir()
	port := testkit.Tarpit(t)
	config := fmt.Sprintf(`[[domain]]
name = "elsewhere.test"
display_name = "Elsewhere"
web_url = "https://127.0.0.1:%d"
  [[domain.imap]]
  host = "127.0.0.1"
  port = %d
  security = "tls"
  [[domain.submission]]
  host = "127.0.0.1"
  port = %d
  security = "starttls"
`, port, port, port)
	path := dir + "/policy.toml"
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runBinary(t, "", "", "probe", "john@elsewhere.test", "--config", path, "--timeout", "2s")
	if code != 2 || !strings.Contains(stdout, "john@elsewhere.test: CRITICAL") {
		t.Errorf("probe with a policy-only config: exit %d\n%s\n%s", code, stdout, stderr)
	}
	code, _, stderr = runBinary(t, "", "", "serve", "--config", path)
	if code == 0 || !strings.Contains(stderr, "neither http nor https") {
		t.Errorf("serve with a policy-only config: exit %d\n%s", code, stderr)
	}
}
