package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"mailsetup/internal/testkit"
)

// TestSystemdUnits: the shipped unit and socket units pass the real
// systemd-analyze verify without a warning (a misspelt hardening option
// would only warn, so the test wants no output at all), every socket
// hands its descriptor to a listen.* key by name, and the service lists
// every socket.
func TestSystemdUnits(t *testing.T) {
	analyze := testkit.Tool(t, "systemd-analyze", "systemd")
	src := filepath.Join("..", "..", "contrib", "systemd")
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var units, sockets []string
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if e.Name() == "mailsetup.service" {
			// verify wants the program to exist: the binary under test.
			data = []byte(strings.Replace(string(data), "/usr/local/bin/mailsetup", binary, 1))
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(e.Name(), ".socket") || strings.HasSuffix(e.Name(), ".service") {
			units = append(units, "./"+e.Name())
		}
		if strings.HasSuffix(e.Name(), ".socket") {
			sockets = append(sockets, e.Name())
			m := regexp.MustCompile(`(?m)^FileDescriptorName=(\S+)$`).FindStringSubmatch(string(data))
			keys := []string{"http", "https", "dns", "smtp", "submission", "submissions", "imap", "imaps", "pop3", "pop3s"}
			if m == nil || !slices.Contains(keys, m[1]) || e.Name() != "mailsetup-"+m[1]+".socket" {
				t.Errorf("%s: FileDescriptorName %v is not its listen.* key", e.Name(), m)
			}
		}
	}
	if len(sockets) != 10 {
		t.Errorf("%d socket units, want one per public listen.* key (10): %v", len(sockets), sockets)
	}
	service, _ := os.ReadFile(filepath.Join(src, "mailsetup.service"))
	for _, s := range sockets {
		if !regexp.MustCompile(`(?m)^Sockets=.*\b` + regexp.QuoteMeta(s) + `\b`).Match(service) {
			t.Errorf("mailsetup.service does not list %s in Sockets=", s)
		}
	}
	cmd := exec.Command(analyze, append([]string{"verify"}, units...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
