package server_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mailsetup/server"
)

// TestUnknownKeysListedWithEveryProblem: a misspelt key does not hide the
// other problems; each unknown key is listed with the nearest known key of
// its table, a key inside an unknown table only once.
func TestUnknownKeysListedWithEveryProblem(t *testing.T) {
	dir := t.TempDir()
	created, err := server.EnsureDefault(dir, server.DefaultPorts())
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(created.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for old, repl := range map[string]string{
		"max_connections = 500":      "max_conections = 500",   // misspelt
		"delete_after_days = 7":      "delete_after_days = 60", // invalid value
		"  port = 10993\n":           "  port = 10993\n  hots = \"localhost\"\n",
		"[observations]":             "[observation]",
		"\nhostname = \"localhost\"": "\nhostname = \"localhost\"\nfrobnicate = true",
	} {
		if !strings.Contains(text, old) {
			t.Fatalf("the default config lacks %q", old)
		}
		text = strings.Replace(text, old, repl, 1)
	}
	path := filepath.Join(dir, "broken.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = server.LoadConfig(path)
	if err == nil {
		t.Fatal("a config with unknown keys loaded")
	}
	msg := err.Error()
	for _, want := range []string{
		"mail.max_conections: unknown key; did you mean `max_connections`?",
		"domain.imap.hots: unknown key; did you mean `host`?",
		"observation: unknown key; did you mean `observations`?",
		"pop3_policy.delete_after_days = 60",
		"frobnicate: unknown key\n",
	} {
		if !strings.Contains(msg+"\n", want) {
			t.Errorf("the error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "observation.retention_days") {
		t.Errorf("a key inside an unknown table is listed again:\n%s", msg)
	}
}
