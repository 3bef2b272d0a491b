package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInit: init writes a production config that serve's checks accept
// (ACME, the standard ports, no demo account, no self-signed certificate,
// no staff user), prints the records to publish and the next steps,
// never overwrites, and names a bad value.
func TestInit(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "var")
	conf := filepath.Join(dir, "etc", "mailsetup.toml")
	code, out, errOut := runCLI(t, "", "init", "--hostname", "mail.example.com", "--domain", "example.com", "--domain", "example.org",
		"--web-address", "192.0.2.10", "--config", conf, "--data", data)
	if code != 0 {
		t.Fatalf("init: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"_imaps._tcp.example.com. 3600 IN SRV 0 0 993 mail.example.com.",
		"_submission._tcp.example.org. 3600 IN SRV 10 0 587 mail.example.com.",
		"autoconfig.example.org. 3600 IN A 192.0.2.10",
		"example.com. 3600 IN MX 10 mail.example.com.",
		"  mta-sts.example.org\n",
		"mailsetup user add --config " + conf,
		"mailsetup checkconfig --config " + conf,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("init output lacks %q:\n%s", want, out)
		}
	}
	written, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(written)
	for _, want := range []string{`email = "postmaster@example.com"`, `directory_url = "https://acme-v02.api.letsencrypt.org/directory"`,
		`smtp = ":25"`, `submission = ":587"`, `submissions = ":465"`, `imap = ":143"`, `imaps = ":993"`, `pop3 = ":110"`, `pop3s = ":995"`,
		`http = ":80"`, `https = ":443"`, `data_dir = "` + data + `"`} {
		if !strings.Contains(cfg, want) {
			t.Errorf("config lacks %s:\n%s", want, cfg)
		}
	}
	for _, not := range []string{"cert_file", "example.test", "[[staff.user]]", "insecure_auth"} {
		if strings.Contains(cfg, not) {
			t.Errorf("config has %s:\n%s", not, cfg)
		}
	}
	for _, f := range []string{"accounts.json", "credentials.txt", "tls"} {
		if _, err := os.Stat(filepath.Join(data, f)); err == nil {
			t.Errorf("init created %s", f)
		}
	}
	if code, out, errOut := runCLI(t, "", "checkconfig", "--config", conf); code != 0 || !strings.Contains(out, "config OK: 2 domain(s)") {
		t.Errorf("checkconfig: %d %s%s", code, out, errOut)
	}
	if code, out, _ := runCLI(t, "", "records", "--config", conf); code != 0 || !strings.Contains(out, "_pop3s._tcp.example.org. 3600 IN SRV 20 0 995 mail.example.com.") {
		t.Errorf("records: %d %s", code, out)
	}

	// Never overwrites: the file stays as it was.
	if err := os.WriteFile(conf, append(written, "# edited\n"...), 0o640); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runCLI(t, "", "init", "--hostname", "other.example.com", "--domain", "example.net", "--config", conf, "--data", data)
	if code != 1 || !strings.Contains(errOut, "already there; init never overwrites") {
		t.Errorf("second init: exit %d, %s", code, errOut)
	}
	if again, _ := os.ReadFile(conf); !strings.HasSuffix(string(again), "# edited\n") {
		t.Error("the second init changed the config")
	}

	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--domain", "example.com"}, 2, "want --hostname"},
		{[]string{"--hostname", "mail.example.com"}, 2, "at least one --domain"},
		{[]string{"--hostname", "localhost", "--domain", "example.com"}, 1, `--hostname "localhost"`},
		{[]string{"--hostname", "mail.example.com", "--domain", "exa mple.com"}, 1, `--domain "exa mple.com"`},
		{[]string{"--hostname", "mail.example.com", "--domain", "example.com", "--web-address", "192.0.2"}, 1, `--web-address "192.0.2"`},
		{[]string{"--hostname", "mail.example.com", "--domian", "example.com"}, 2, "--domian"},
	} {
		code, _, errOut := runCLI(t, "", append([]string{"init", "--data", filepath.Join(t.TempDir(), "d")}, tc.args...)...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("init %v: exit %d, want %d with %q:\n%s", tc.args, code, tc.code, tc.want, errOut)
		}
	}
}
