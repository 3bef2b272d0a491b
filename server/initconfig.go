package server

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"text/template"

	"mailsetup/autoconfig"
	"mailsetup/server/acmecert"
)

// InitOptions describe a production config (`mailsetup init`).
type InitOptions struct {
	// Hostname is the server's public name: the mail servers' and the
	// web's host, the one certificate name every client sees.
	Hostname string
	// Domains are the mail domains served.
	Domains []string
	// DataDir is the data directory, written as an absolute path.
	DataDir string
	// Email is the ACME account's contact; default postmaster@ the first
	// domain.
	Email string
	// ACMEDirectory is the CA; default Let's Encrypt.
	ACMEDirectory string
	// ACMECAFile, when set, is tls.acme.directory_ca_file: the roots of
	// an in-house CA's directory.
	ACMECAFile string
	// WebAddresses are the server's public IPs, published as A/AAAA of
	// the autoconfig names; empty: CNAMEs to Hostname.
	WebAddresses []string
}

// ErrConfigExists: init never overwrites a config.
var ErrConfigExists = errors.New("a config is already there; init never overwrites one (move it away first, or edit it)")

// WriteProduction writes a production config to path: the standard
// ports on every address, certificates from ACME, no demo account, no
// self-signed certificate, no staff user yet. It checks the result as
// serve would before writing, refuses an existing file, creates the data
// directory (0750) and returns the loaded config.
func WriteProduction(path string, o InitOptions) (*Config, error) {
	var errs []error
	if err := autoconfig.ValidHost(o.Hostname); err != nil || !strings.Contains(o.Hostname, ".") {
		errs = append(errs, fmt.Errorf("--hostname %q: want the server's public host name, such as mail.example.com", o.Hostname))
	}
	if len(o.Domains) == 0 {
		errs = append(errs, errors.New("--domain: name at least one mail domain"))
	}
	for i, d := range o.Domains {
		o.Domains[i] = strings.ToLower(strings.TrimSuffix(d, "."))
		if err := autoconfig.ValidHost(o.Domains[i]); err != nil || !strings.Contains(d, ".") {
			errs = append(errs, fmt.Errorf("--domain %q: want a mail domain such as example.com", d))
		}
	}
	for _, a := range o.WebAddresses {
		if _, err := netip.ParseAddr(a); err != nil {
			errs = append(errs, fmt.Errorf("--web-address %q: want an IP address", a))
		}
	}
	if o.DataDir == "" {
		errs = append(errs, errors.New("--data: name the data directory"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if o.Email == "" {
		o.Email = "postmaster@" + o.Domains[0]
	}
	if o.ACMEDirectory == "" {
		o.ACMEDirectory = acmecert.LetsEncrypt
	}
	data, err := filepath.Abs(o.DataDir)
	if err != nil {
		return nil, err
	}
	o.DataDir = data
	if o.ACMECAFile != "" {
		if o.ACMECAFile, err = filepath.Abs(o.ACMECAFile); err != nil {
			return nil, err
		}
		if _, err := ReadCerts(o.ACMECAFile); err != nil {
			return nil, fmt.Errorf("--acme-ca-file: %w", err)
		}
	}
	var buf bytes.Buffer
	if err := productionConfig.Execute(&buf, o); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	cfg, err := ParseConfig(buf.Bytes(), filepath.Dir(abs), path)
	if err != nil {
		return nil, fmt.Errorf("the generated config is invalid (a bug): %w", err)
	}
	if _, err := os.Stat(path); err == nil {
		return nil, fmt.Errorf("%s: %w", path, ErrConfigExists)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o750); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(data, 0o750); err != nil {
		return nil, fmt.Errorf("creating the data directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("%s: %w", path, ErrConfigExists)
	}
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(buf.Bytes()); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	return cfg, f.Close()
}

var productionConfig = template.Must(template.New("production").Funcs(template.FuncMap{
	"quote": func(s string) string { return fmt.Sprintf("%q", s) },
}).Parse(`# mailsetup configuration for {{.Hostname}}, written by "mailsetup init".
# Reference: the README's "Configuration" and "Running it on the
# internet". Check a change with "mailsetup checkconfig --config FILE";
# SIGHUP (systemctl reload mailsetup) applies what can change at once.

hostname = {{quote .Hostname}}
data_dir = {{quote .DataDir}}

[log]
level = "info"
format = "text"

# Certificates for {{.Hostname}}, the autoconfig names of every domain and
# the mail hosts, from the CA below; the CA checks each name over port 80
# (HTTP-01) or 443 (TLS-ALPN-01), so every name must point here first.
[tls.acme]
email = {{quote .Email}}
directory_url = {{quote .ACMEDirectory}}
{{- if .ACMECAFile}}
directory_ca_file = {{quote .ACMECAFile}}
{{- end}}

# The standard ports on every address. Under systemd the sockets come
# from the socket units (contrib/systemd) by these names; without it the
# binary needs CAP_NET_BIND_SERVICE.
[listen]
http = ":80"
https = ":443"
# The embedded DNS responder (the records below as an authoritative
# server): uncomment to delegate the names to it.
# dns = ":53"
admin = "127.0.0.1:9100"
smtp = ":25"
submission = ":587"
submissions = ":465"
imap = ":143"
imaps = ":993"
pop3 = ":110"
pop3s = ":995"

# Staff console users: "mailsetup staff hash NAME" prints an entry.
[staff]
idle_minutes = 30
{{range .Domains}}
[[domain]]
name = {{quote .}}
display_name = {{quote .}}
web_url = "https://{{$.Hostname}}"
{{- if $.WebAddresses}}
web_addresses = [{{range $i, $a := $.WebAddresses}}{{if $i}}, {{end}}{{quote $a}}{{end}}]
{{- end}}

  # Implicit TLS first (RFC 8314), STARTTLS second.
  [[domain.imap]]
  host = {{quote $.Hostname}}
  port = 993
  security = "tls"

  [[domain.imap]]
  host = {{quote $.Hostname}}
  port = 143
  security = "starttls"

  [[domain.pop3]]
  host = {{quote $.Hostname}}
  port = 995
  security = "tls"

  [[domain.pop3]]
  host = {{quote $.Hostname}}
  port = 110
  security = "starttls"

  [[domain.submission]]
  host = {{quote $.Hostname}}
  port = 465
  security = "tls"

  [[domain.submission]]
  host = {{quote $.Hostname}}
  port = 587
  security = "starttls"

  [[domain.mx]]
  host = {{quote $.Hostname}}
  preference = 10

  [domain.pop3_policy]
  leave_on_server = true
  delete_after_days = 7
{{end}}`))
