package server_test

import (
	"os"
	"path/filepath"
	"testing"

	"mailsetup/server"
)

// TestCredentialsFileKeepsEveryCreatedPassword: EnsureDefault writes each
// password it creates to a 0600 file; a start that stopped half-way (the
// config not yet written) and the next one leave every password in use
// there; a complete data directory is not touched again.
func TestCredentialsFileKeepsEveryCreatedPassword(t *testing.T) {
	dir := t.TempDir()
	c1, err := server.EnsureDefault(dir, server.DefaultPorts())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, server.CredentialsFile)
	if c1.CredentialsPath != path {
		t.Fatalf("CredentialsPath = %q, want %q", c1.CredentialsPath, path)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v, mode %v; want 0600", path, err, st)
	}
	want := server.Credentials{DemoAddress: server.DemoAddress, DemoPassword: c1.DemoPassword, StaffName: server.DefaultStaff, StaffPassword: c1.StaffPassword}
	if got, err := server.ReadCredentials(path); err != nil || got != want {
		t.Fatalf("ReadCredentials = %+v, %v; want %+v", got, err, want)
	}

	// The first start stopped before writing the config: the demo
	// account exists, so the next start makes only a new staff password.
	if err := os.Remove(c1.ConfigPath); err != nil {
		t.Fatal(err)
	}
	c2, err := server.EnsureDefault(dir, server.DefaultPorts())
	if err != nil {
		t.Fatal(err)
	}
	if c2.DemoPassword != "" || c2.StaffPassword == "" || c2.StaffPassword == c1.StaffPassword || c2.CredentialsPath != path {
		t.Fatalf("second EnsureDefault: %+v", c2)
	}
	want.StaffPassword = c2.StaffPassword
	if got, err := server.ReadCredentials(path); err != nil || got != want {
		t.Fatalf("after the second start: %+v, %v; want %+v (the first demo password, the new staff one)", got, err, want)
	}

	before, _ := os.ReadFile(path)
	c3, err := server.EnsureDefault(dir, server.DefaultPorts())
	if err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(path)
	if c3.CredentialsPath != "" || string(before) != string(after) {
		t.Errorf("a complete data directory got new credentials: %+v", c3)
	}
}
