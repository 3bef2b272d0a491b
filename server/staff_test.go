package server_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mailsetup/server"
)

// An unreadable observations snapshot must not keep the mail server
// from starting: it is moved aside and the store starts empty.
func TestUnreadableObservationsMovedAside(t *testing.T) {
	dir, _, cfg := defaultConfig(t)
	snap := filepath.Join(dir, "observations.json")
	if err := os.WriteFile(snap, []byte(`{"version": 1, "accounts": [{"key": 7`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := server.New(cfg, server.Options{}); err != nil {
		t.Fatalf("New with an unreadable snapshot: %v", err)
	}
	if _, err := os.Stat(snap); !os.IsNotExist(err) {
		t.Errorf("the unreadable snapshot is still in place (%v)", err)
	}
	matches, _ := filepath.Glob(snap + ".unreadable-*")
	if len(matches) != 1 {
		t.Fatalf("moved-aside files: %v", matches)
	}
	if b, _ := os.ReadFile(matches[0]); !strings.Contains(string(b), `"key": 7`) {
		t.Errorf("the moved file lost its content: %q", b)
	}
}

// The generated default has a staff user and the settings check limits,
// and a config with bad staff entries is refused naming each.
func TestStaffConfigValidation(t *testing.T) {
	dir, created, cfg := defaultConfig(t)
	if len(cfg.Staff.Users) != 1 || cfg.Staff.Users[0].Name != server.DefaultStaff || created.StaffPassword == "" {
		t.Fatalf("default staff: %+v", cfg.Staff.Users)
	}
	if strings.Contains(mustRead(t, created.ConfigPath), created.StaffPassword) {
		t.Error("the staff password is in the config file in clear")
	}
	data := mustRead(t, created.ConfigPath) + `
[[staff.token]]
name = "bad token"
sha256 = "abc"
`
	data = strings.Replace(data, `idle_minutes = 30`, `idle_minutes = -5`, 1)
	data = strings.Replace(data, `password_hash = "$argon2id$`, `password_hash = "plain$`, 1)
	data = strings.Replace(data, `retention_days = 30`, `retention_days = 400`, 1)
	_, err := server.ParseConfig([]byte(data), dir, "test.toml")
	if err == nil {
		t.Fatal("bad staff config accepted")
	}
	for _, want := range []string{"staff.idle_minutes = -5", `staff.user[0].password_hash for "admin"`, `staff.token[0].name = "bad token"`, `staff.token[0].sha256`, "observations.retention_days = 400"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestReload: a reload applies the staff section, names the sections
// that need a restart, and refuses an invalid config without changing
// anything.
func TestReload(t *testing.T) {
	_, created, cfg := defaultConfig(t)
	s, err := server.New(cfg, server.Options{})
	if err != nil {
		t.Fatal(err)
	}
	data := mustRead(t, created.ConfigPath)
	if err := os.WriteFile(created.ConfigPath, []byte(strings.Replace(data, "idle_minutes = 30", "idle_minutes = 45", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if need, err := s.Reload(created.ConfigPath); err != nil || len(need) != 0 {
		t.Errorf("staff-only change: need restart %v, %v", need, err)
	}
	changed := strings.Replace(data, `hostname = "localhost"`, `hostname = "mail.example.test"`, 1)
	changed = strings.Replace(changed, "max_message_bytes = 26214400", "max_message_bytes = 1000000", 1) // applies
	changed = strings.Replace(changed, "pop3_idle_minutes = 10", "pop3_idle_minutes = 20", 1)            // applies
	changed = strings.Replace(changed, "max_connections_per_ip = 20", "max_connections_per_ip = 5", 1)   // [mail]'s: applies
	if !strings.Contains(changed, "max_connections_per_ip = 5") {
		t.Fatalf("no mail.max_connections_per_ip in the default config:\n%s", changed)
	}
	if err := os.WriteFile(created.ConfigPath, []byte(changed), 0o600); err != nil {
		t.Fatal(err)
	}
	if need, err := s.Reload(created.ConfigPath); err != nil || fmt.Sprint(need) != "[hostname]" {
		t.Errorf("hostname and mail changes: need restart %v, %v", need, err)
	}
	if err := os.WriteFile(created.ConfigPath, []byte(data+"\nbogus_key = 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reload(created.ConfigPath); err == nil || !strings.Contains(err.Error(), "bogus_key") {
		t.Errorf("invalid config: %v", err)
	}
}

// defaultConfig creates an embedded default in a temporary directory and
// loads its config.
func defaultConfig(t *testing.T) (string, server.Created, *server.Config) {
	t.Helper()
	dir := t.TempDir()
	created, err := server.EnsureDefault(dir, server.DefaultPorts())
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := server.LoadConfig(created.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	return dir, created, cfg
}
