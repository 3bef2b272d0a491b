package main

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailsetup/internal/testkit"
	"mailsetup/server"
)

// paccDomain is a domain on the standard ports, which PACC can express
// (the demo domain's unprivileged ports it cannot).
const paccDomain = `
[[domain]]
name = "pacc.test"
display_name = "PACC Test Mail"
short_name = "PACC"
prefer = "imap"
username = "full-address"
auth = ["plain"]
web_url = "https://autoconfig.pacc.test"

  [[domain.imap]]
  host = "mail.pacc.test"
  port = 993
  security = "tls"

  [[domain.submission]]
  host = "mail.pacc.test"
  port = 465
  security = "tls"
`

// digTXT returns the texts of the TXT records of name, asked with the
// real dig from the service's DNS listener.
func digTXT(t *testing.T, dnsAddr, name string) []string {
	t.Helper()
	dig := testkit.Tool(t, "dig", "dnsutils")
	host, port, _ := strings.Cut(dnsAddr, ":")
	out, err := exec.Command(dig, "@"+host, "-p", port, "+short", "+time=5", "+tries=1", "TXT", name).Output()
	if err != nil {
		t.Fatalf("dig TXT %s: %v", name, err)
	}
	// dig prints a record a line, each of its character-strings quoted.
	var txt []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l == "" {
			continue
		}
		var b strings.Builder
		for _, part := range regexp.MustCompile(`"((?:[^"\\]|\\.)*)"`).FindAllStringSubmatch(l, -1) {
			b.WriteString(part[1])
		}
		txt = append(txt, b.String())
	}
	slices.Sort(txt)
	return txt
}

// TestPACCOverTheNetwork fetches the PACC document with the real curl
// from ua-auto-config.<domain> and its digest with the real dig from the
// embedded DNS responder: the SHA-256 of the bytes served is the digest
// published, before and after a config change applied with SIGHUP, and
// the earlier digest stays published beside the new one. `mailsetup
// records` prints the same TXT.
func TestPACCOverTheNetwork(t *testing.T) {
	ports := freePorts(t)
	created, err := server.EnsureDefault(t.TempDir(), ports)
	if err != nil {
		t.Fatal(err)
	}
	base, err := os.ReadFile(created.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(created.ConfigPath, append(base, paccDomain...), 0o600); err != nil {
		t.Fatal(err)
	}
	svc := startServe(t, "--config", created.ConfigPath)
	defer svc.stop(t)
	fetch := func() ([]byte, string) {
		r := curl(t, "--resolve", fmt.Sprintf("ua-auto-config.pacc.test:%d:127.0.0.1", ports.HTTPS),
			fmt.Sprintf("https://ua-auto-config.pacc.test:%d/.well-known/user-agent-configuration.json", ports.HTTPS))
		if r.status != 200 || r.contentType != "application/json" {
			t.Fatalf("PACC document: %d %s %s", r.status, r.contentType, r.body)
		}
		sum := sha256.Sum256(r.body)
		return r.body, "v=UAAC1; a=sha256; d=" + base64.StdEncoding.EncodeToString(sum[:])
	}
	doc, want := fetch()
	if !strings.Contains(string(doc), `"imap":{"host":"mail.pacc.test"}`) || !strings.Contains(string(doc), `"submit":{"host":"mail.pacc.test"}`) || !strings.Contains(string(doc), `"smtp":{"host":"mail.pacc.test"}`) {
		t.Errorf("document does not carry the policy's hosts: %s", doc)
	}
	if got := digTXT(t, svc.urls["dns"], "_ua-auto-config.pacc.test"); !slices.Equal(got, []string{want}) {
		t.Fatalf("TXT = %q, want [%q] (the digest of the bytes served)", got, want)
	}
	code, out, stderr := runBinary(t, "", "", "records", "--config", created.ConfigPath)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("_ua-auto-config.pacc.test. 300 IN TXT %q", want)) ||
		!strings.Contains(out, "; no PACC records: PACC needs") {
		t.Errorf("records (exit %d) do not print the served digest %q:\n%s%s", code, want, out, stderr)
	}
	// The demo domain (unprivileged ports) has no document.
	if r := curl(t, "--resolve", fmt.Sprintf("ua-auto-config.example.test:%d:127.0.0.1", ports.HTTPS),
		fmt.Sprintf("https://ua-auto-config.example.test:%d/.well-known/user-agent-configuration.json", ports.HTTPS)); r.status != 404 || !strings.Contains(string(r.body), "standard port") {
		t.Errorf("demo domain: %d %s", r.status, r.body)
	}

	// Change the policy and reload.
	changed := strings.Replace(string(base)+paccDomain, `display_name = "PACC Test Mail"`, `display_name = "PACC Mail, renamed"`, 1)
	if err := os.WriteFile(created.ConfigPath, []byte(changed), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := svc.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	var doc2 []byte
	var want2 string
	for {
		doc2, want2 = fetch()
		if want2 != want || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(string(doc2), "PACC Mail, renamed") {
		t.Fatalf("after SIGHUP the document is still %s\nlog:\n%s", doc2, svc.stderr)
	}
	got := digTXT(t, svc.urls["dns"], "_ua-auto-config.pacc.test")
	both := []string{want, want2}
	slices.Sort(both)
	if !slices.Equal(got, both) {
		t.Errorf("after the reload TXT = %q, want the new digest %q and, for one TTL, the old %q", got, want2, want)
	}
	if _, out, _ := runBinary(t, "", "", "records", "--config", created.ConfigPath); !strings.Contains(out, want2) {
		t.Errorf("records after the change do not print %q:\n%s", want2, out)
	}
}
