package server_test

import (
	"strings"
	"testing"

	"mailsetup/autoconfig"
	"mailsetup/server"
)

func TestLoadValidConfigDefaults(t *testing.T) {
	cfg, err := server.LoadConfig("testdata/valid.toml")
	if err != nil {
		t.Fatal(err)
	}
	ps := cfg.Policies()
	if len(ps) != 1 {
		t.Fatalf("policies = %d", len(ps))
	}
	p := ps[0]
	if p.Domain != "example.com" || p.Prefer != autoconfig.IMAP || p.Username != autoconfig.FullAddress ||
		!p.POP.LeaveOnServer || p.POP.DeleteAfterDays != server.DefaultDeleteAfterDays ||
		p.Web.BaseURL != "https://autoconfig.example.com" || len(p.Auth) != 2 {
		t.Errorf("defaults not applied: %+v", p)
	}
	if cfg.Limits.ReadHeaderSeconds != 5 || cfg.Log.Queue != 8192 {
		t.Errorf("limit defaults: %+v %+v", cfg.Limits, cfg.Log)
	}
}

const base = `
[listen]
http = "127.0.0.1:8080"
[[domain]]
name = "example.com"
display_name = "Example"
web_url = "https://autoconfig.example.com"
  [[domain.imap]]
  host = "imap.example.com"
  port = 993
  security = "tls"
  [[domain.submission]]
  host = "smtp.example.com"
  port = 465
  security = "tls"
`

// TestBrokenConfigs: each error names the key and the bad value, and all
// problems are reported at once.
func TestBrokenConfigs(t *testing.T) {
	tests := []struct {
		name, toml string
		want       []string
	}{
		{"unknown key", base + "  colour = \"red\"\n", []string{"domain.submission.colour: unknown key"}},
		{"toml syntax", "hostname = \n", []string{"broken.toml"}},
		{"no domain", "[listen]\nhttp = \"127.0.0.1:8080\"\n", []string{"no [[domain]]"}},
		{"bad security and port", strings.Replace(strings.Replace(base, `security = "tls"`, `security = "ssl"`, 1), "port = 465", "port = 70000", 1),
			[]string{`imap[0].security = "ssl"`, `submission[0].port = 70000`}},
		{"delete after too long", base + "  [domain.pop3_policy]\n  delete_after_days = 30\n", []string{"pop3_policy.delete_after_days = 30"}},
		{"leave forever", base + "  [domain.pop3_policy]\n  delete_after_days = 0\n", []string{"pop3_policy.delete_after_days = 0"}},
		{"http web url", strings.Replace(base, "https://autoconfig", "http://autoconfig", 1), []string{`web_url = "http://autoconfig.example.com": clients send passwords`}},
		{"bad listen", strings.Replace(base, `"127.0.0.1:8080"`, `"localhost"`, 1), []string{`listen.http = "localhost"`}},
		{"https without cert", strings.Replace(base, "http =", "https =", 1), []string{"needs tls.cert_file"}},
		{"bad log level", "[log]\nlevel = \"loud\"\n" + base, []string{`log.level = "loud"`}},
		{"duplicate domain", base + strings.SplitN(base, "[[domain]]", 2)[1][:0] + "[[domain]]\nname = \"example.com\"\ndisplay_name = \"x\"\nweb_url = \"https://a.example.com\"\n  [[domain.imap]]\n  host = \"i.example.com\"\n  port = 993\n  security = \"tls\"\n  [[domain.submission]]\n  host = \"s.example.com\"\n  port = 465\n  security = \"tls\"\n",
			[]string{"configured twice"}},
		{"bad web address", strings.Replace(base, `web_url`, "web_addresses = [\"not-an-ip\"]\nweb_url", 1), []string{`"not-an-ip" is not an IP address`}},
		{"advertised but not served", strings.Replace(base, `host = "imap.example.com"`, `host = "localhost"`, 1),
			[]string{`advertises imap localhost:993 tls, but listen.imaps is not set`}},
		{"advertised on another port", "[tls]\ncert_file = \"c\"\nkey_file = \"k\"\n" + strings.Replace(strings.Replace(base, `host = "imap.example.com"`, `host = "localhost"`, 1), "[listen]\n", "[listen]\nimaps = \"127.0.0.1:10993\"\n", 1),
			[]string{`listen.imaps = "127.0.0.1:10993" listens on port 10993`}},
		{"expiry dry run without expiry", "[mail]\nexpire_dry_run = true\n" + base, []string{"mail.expire_dry_run = true", "no domain sets pop3_policy.expire_days"}},
		{"expiry dry run not a boolean", "[mail]\nexpire_dry_run = \"yes\"\n" + base, []string{"mail.expire_dry_run", "string"}},
		{"negative expire_days", base + "  [domain.pop3_policy]\n  expire_days = -1\n", []string{"pop3_policy.expire_days = -1"}},
		{"acme and cert files", "[tls]\ncert_file = \"c\"\nkey_file = \"k\"\n[tls.acme]\nemail = \"pm@example.com\"\n" + base, []string{"tls.cert_file/tls.key_file and tls.acme are both set"}},
		{"acme bad values", "[tls.acme]\nemail = \"postmaster\"\ndirectory_url = \"http://ca.example/dir\"\neab_kid = \"k\"\nrenew_before_days = 90\nretry_seconds = 7200\nnames = [\"mail\"]\n" + base,
			[]string{"tls.acme.retry_seconds = 7200", `tls.acme.email = "postmaster"`, `tls.acme.directory_url = "http://ca.example/dir"`, "set both eab_kid and eab_hmac_key_file", "tls.acme.renew_before_days = 90", `tls.acme.names: "mail"`}},
		{"acme without email", "[tls.acme]\ndirectory_url = \"https://ca.example/dir\"\n" + base, []string{"set tls.acme.email to turn ACME on"}},
		{"local part username", strings.Replace(base, `web_url`, "username = \"local-part\"\nweb_url", 1), []string{`username = "local-part"`}},
		{"database password without url", "[database]\npassword_file = \"pw\"\n" + base, []string{"database.password_file is set but database.url is not"}},
		{"database url not a url", "[database]\nurl = \"postgres://u:hunter2@db:port/x\"\npassword_file = \"missing\"\n" + base,
			[]string{"database.url: not a PostgreSQL URL", "database.password_file: stat"}},
		{"load balancer not an address", "[load_balancer]\nproxy_protocol_from = [\"10.0.0.5\", \"10.0.0.300\", \"10.0.0.0/33\"]\n" + base,
			[]string{`load_balancer.proxy_protocol_from: "10.0.0.300" is neither an IP address nor a CIDR range`, `"10.0.0.0/33"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := server.ParseConfig([]byte(tt.toml), t.TempDir(), "broken.toml")
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

// TestACMENames: every name the policies need, the hostname first.
func TestACMENames(t *testing.T) {
	cfg, err := server.ParseConfig([]byte("hostname = \"mail.example.com\"\n[tls.acme]\nemail = \"pm@example.com\"\nnames = [\"extra.example.net\"]\n"+base), t.TempDir(), "acme.toml")
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(cfg.ACMENames(), " ")
	want := "mail.example.com autoconfig.example.com autodiscover.example.com ua-auto-config.example.com mta-sts.example.com imap.example.com smtp.example.com extra.example.net"
	if got != want {
		t.Errorf("ACMENames:\n got %s\nwant %s", got, want)
	}
}

func TestEnsureDefaultIsReused(t *testing.T) {
	dir := t.TempDir()
	c1, err := server.EnsureDefault(dir, server.DefaultPorts())
	if err != nil {
		t.Fatal(err)
	}
	if !c1.New || len(c1.DemoPassword) != 20 {
		t.Fatalf("first run: %+v", c1)
	}
	cfg, err := server.LoadConfig(c1.ConfigPath)
	if err != nil {
		t.Fatalf("generated config invalid: %v", err)
	}
	if !cfg.HasDomain(server.DemoDomain) {
		t.Error("demo domain missing")
	}
	c2, err := server.EnsureDefault(dir, server.DefaultPorts())
	if err != nil {
		t.Fatal(err)
	}
	if c2.New || c2.DemoPassword != "" {
		t.Errorf("second run recreated: %+v", c2)
	}
}
