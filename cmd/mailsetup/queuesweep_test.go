package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mailsetup/internal/testkit"
	"mailsetup/server"
)

// TestServeSweepsQueueAfterCrash: kill -9 during an enqueue leaves a
// temporary file or a message without its envelope in queue/; the next
// start removes them and says so, and keeps every queued item.
func TestServeSweepsQueueAfterCrash(t *testing.T) {
	// The queued message stays: its domain's server refuses connections.
	resolver := testkit.DNS(t, "elsewhere.example. 60 IN A 127.0.0.1")
	m := prepareMail(t, func(t *testing.T, m *mailService, config string) string {
		return config + fmt.Sprintf("\n[queue]\nresolver = %q\nport = %d\n", resolver, testkit.FreePort(t))
	})
	m.service = startServe(t, "--config", m.config)
	out := swaks(t, fmt.Sprintf("127.0.0.1:%d", m.ports.Submission), "--tls", "--auth", "PLAIN",
		"--auth-user", server.DemoAddress, "--auth-password", m.password,
		"--from", server.DemoAddress, "--to", "someone@elsewhere.example", "--header", "Subject: queued")
	if !strings.Contains(out, "<~  250 2.0.0") {
		t.Fatalf("submission to a remote address failed:\n%s", out)
	}
	qdir := filepath.Join(m.dir, "queue")
	envelopes, _ := filepath.Glob(filepath.Join(qdir, "*.json"))
	if len(envelopes) != 1 {
		t.Fatalf("queue holds %v", envelopes)
	}
	queued := strings.TrimSuffix(filepath.Base(envelopes[0]), ".json")
	if err := m.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-m.done
	// What a kill -9 inside Enqueue leaves: the temporary file of the
	// message or of its envelope, or the message alone.
	msg, err := os.ReadFile(filepath.Join(qdir, queued+".eml"))
	if err != nil {
		t.Fatal(err)
	}
	debris := map[string][]byte{
		".tmp-4181516917": msg[:len(msg)/2],
		".tmp-992038475":  []byte(`{"id":"20260101T000000-0123456789abcdef01234567","fr`),
		"20260101T000000-0123456789abcdef01234567.eml": msg,
	}
	for name, data := range debris {
		if err := os.WriteFile(filepath.Join(qdir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// And what a kill -9 during DATA leaves: the SMTP spool file.
	spoolFile := filepath.Join(m.dir, "smtp-3141592653")
	if err := os.WriteFile(spoolFile, msg[:len(msg)/3], 0o600); err != nil {
		t.Fatal(err)
	}
	m.service = startServe(t, "--config", m.config)
	m.stop(t) // the log is written out
	if _, err := os.Stat(spoolFile); !os.IsNotExist(err) || !strings.Contains(m.stderr.String(), "removed a spool file left by a crash") {
		t.Errorf("the SMTP spool file left by the crash is still there (%v), or its removal not logged:\n%s", err, m.stderr)
	}
	left, _ := os.ReadDir(qdir)
	var names []string
	for _, e := range left {
		if e.Name() != queued+".state" { // the delivery agent's, once it tried
			names = append(names, e.Name())
		}
	}
	if want := []string{queued + ".eml", queued + ".json"}; strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("queue after the restart: %v, want %v", names, want)
	}
	for name := range debris {
		if !strings.Contains(m.stderr.String(), "removed a file left by a crash") || !strings.Contains(m.stderr.String(), "file="+name) {
			t.Errorf("removal of %s not logged:\n%s", name, m.stderr)
		}
	}
}
