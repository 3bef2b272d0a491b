package server_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mailsetup/server"
)

// TestBrandingConfigRefusesBadValues: each bad [branding] value is named
// with what is wanted; good ones load.
func TestBrandingConfigRefusesBadValues(t *testing.T) {
	dir := t.TempDir()
	created, err := server.EnsureDefault(dir, server.DefaultPorts())
	if err != nil {
		t.Fatal(err)
	}
	base, err := os.ReadFile(created.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not a picture"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "logo.svg"), []byte(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><rect width="10" height="10"/></svg>`), 0o600); err != nil {
		t.Fatal(err)
	}
	load := func(branding string) error {
		t.Helper()
		path := filepath.Join(dir, "branded.toml")
		if err := os.WriteFile(path, append(append([]byte(nil), base...), []byte("\n[branding]\n"+branding)...), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := server.LoadConfig(path)
		return err
	}
	err = load(`accent = "#ffd700"
support_phone = "call me"
support_url = "javascript:alert(1)"
logo = "notes.txt"
`)
	if err == nil {
		t.Fatal("bad branding loaded")
	}
	for _, want := range []string{`branding.accent = "#ffd700": contrast with white is 1.4:1`, `branding.support_phone = "call me"`,
		`branding.support_url = "javascript:alert(1)": want an http or https URL`, `branding.logo = "notes.txt": not a PNG, JPEG, WebP or SVG image`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("no %q in:\n%v", want, err)
		}
	}
	if err := load(`accent = "bluish"` + "\n"); err == nil || !strings.Contains(err.Error(), `branding.accent = "bluish": want a colour #rrggbb`) {
		t.Errorf("accent bluish: %v", err)
	}
	if err := load("name = \"Example Net\"\nlogo = \"logo.svg\"\naccent = \"#7A1F5C\"\nsupport_phone = \"+49 30 1234567\"\nsupport_url = \"https://help.example.net/mail\"\n"); err != nil {
		t.Errorf("good branding refused: %v", err)
	}
}
