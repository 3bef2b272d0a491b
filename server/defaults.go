package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base32"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"text/template"
	"time"

	"mailsetup/server/accounts"
)

// Names inside a data directory.
const (
	ConfigFile   = "mailsetup.toml"
	AccountsFile = "accounts.json"
	CertFile     = "tls/cert.pem"
	KeyFile      = "tls/key.pem"
	// LockFile is locked (flock) by the process that owns the mail
	// storage: `serve` with mail listeners, or `expire`.
	LockFile = "mailsetup.lock"
	// CredentialsFile keeps the passwords EnsureDefault created (mode
	// 0600, shell syntax), written before anything else can fail, so they
	// are never lost; it stays until the user deletes it.
	CredentialsFile = "credentials.txt"
)

// DemoDomain and DemoAddress are the embedded default's domain and account.
const (
	DemoDomain  = "example.test"
	DemoAddress = "demo@example.test"
	// DefaultStaff is the embedded default's staff console user.
	DefaultStaff = "admin"
)

// DefaultPorts returns the embedded default's unprivileged ports.
func DefaultPorts() Ports {
	return Ports{HTTP: 8080, HTTPS: 8443, DNS: 8053, Admin: 9100,
		SMTP: 10025, Submission: 10587, Submissions: 10465, IMAP: 10143, IMAPS: 10993, POP3: 10110, POP3S: 10995}
}

// Ports are the listening ports of a generated default config.
type Ports struct {
	HTTP, HTTPS, DNS, Admin       int
	SMTP, Submission, Submissions int
	IMAP, IMAPS, POP3, POP3S      int
}

// Created reports what EnsureDefault made.
type Created struct {
	// ConfigPath is the config file, new or existing.
	ConfigPath string
	// New is true when the data directory was set up now.
	New bool
	// DemoPassword is the demo account's password, set only when the
	// account was created now; it is shown once and stored only hashed.
	DemoPassword string
	// StaffPassword is the password of the staff console's DefaultStaff
	// member, set when the config was created now; shown once.
	StaffPassword string
	// CredentialsPath is the CredentialsFile the passwords created now
	// were added to ("" when none was created).
	CredentialsPath string
}

// Credentials are what a CredentialsFile holds; empty fields were not
// created.
type Credentials struct {
	DemoAddress, DemoPassword string
	StaffName, StaffPassword  string
}

// credentialsHeader starts a new CredentialsFile.
const credentialsHeader = `# mailsetup: the passwords created on the first start of this data
# directory; they are stored nowhere else (only their hashes are).
# Shell syntax: sourcing it (". DIR/credentials.txt") sets the
# variables. Store the passwords elsewhere, then delete this file: serve
# reminds you at every start while it is here.
`

// addCredentials appends name=value lines to the CredentialsFile in dir
// (created with mode 0600) and syncs it.
func addCredentials(dir string, lines ...string) (string, error) {
	path := filepath.Join(dir, CredentialsFile)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return "", fmt.Errorf("writing credentials: %w", err)
	}
	defer f.Close()
	var b strings.Builder
	if st, err := f.Stat(); err == nil && st.Size() == 0 {
		b.WriteString(credentialsHeader)
	}
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	if _, err := f.WriteString(b.String()); err != nil {
		return "", fmt.Errorf("writing credentials: %w", err)
	}
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("writing credentials: %w", err)
	}
	return path, f.Close()
}

// ReadCredentials reads a CredentialsFile; a name given twice (a first
// start that failed half-way, then another) takes its last value.
func ReadCredentials(path string) (Credentials, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Credentials{}, err
	}
	var c Credentials
	for _, line := range strings.Split(string(data), "\n") {
		name, value, ok := strings.Cut(line, "=")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		switch name {
		case "DEMO_ADDRESS":
			c.DemoAddress = value
		case "DEMO_PASSWORD":
			c.DemoPassword = value
		case "STAFF_NAME":
			c.StaffName = value
		case "STAFF_PASSWORD":
			c.StaffPassword = value
		}
	}
	return c, nil
}

var defaultConfig = template.Must(template.New("config").Parse(`# mailsetup configuration, generated for local use: the demo domain
# {{.Domain}} is served on localhost on unprivileged ports.
# Reference: the README's "Configuration" section.

hostname = "localhost"
data_dir = "."

[log]
level = "info"
format = "text"
# true: log every successful HTTP request too (failed ones always are).
access = false

[tls]
cert_file = "{{.CertFile}}"
key_file = "{{.KeyFile}}"

# Sign Apple profiles (CMS) with this certificate and key; comment out to
# serve them unsigned.
[profile_signing]
cert_file = "{{.CertFile}}"
key_file = "{{.KeyFile}}"

[listen]
http = "127.0.0.1:{{.P.HTTP}}"
https = "127.0.0.1:{{.P.HTTPS}}"
dns = "127.0.0.1:{{.P.DNS}}"
admin = "127.0.0.1:{{.P.Admin}}"
smtp = "127.0.0.1:{{.P.SMTP}}"
submission = "127.0.0.1:{{.P.Submission}}"
submissions = "127.0.0.1:{{.P.Submissions}}"
imap = "127.0.0.1:{{.P.IMAP}}"
imaps = "127.0.0.1:{{.P.IMAPS}}"
pop3 = "127.0.0.1:{{.P.POP3}}"
pop3s = "127.0.0.1:{{.P.POP3S}}"

[mail]
max_message_bytes = 26214400
max_connections = 500
max_connections_per_ip = 20
# Only for local tools on 127.0.0.1: allow passwords without TLS there.
insecure_auth_on_loopback = false
pop3_idle_minutes = 10
# With a domain's pop3_policy.expire_days set: only log what the expiry
# would delete.
expire_dry_run = false

# The staff console (/staff/) and the support API (/api/v1/). Add staff
# with "mailsetup staff hash NAME", API tokens with "mailsetup staff
# token NAME"; passwords and tokens are stored only hashed.
[staff]
idle_minutes = 30
audit_log = "audit.log"

  [[staff.user]]
  name = "{{.StaffName}}"
  password_hash = "{{.StaffHash}}"

# What the server saw of each account's clients, for the console.
[observations]
retention_days = 30
max_accounts = 50000
file = "observations.json"

[[domain]]
name = "{{.Domain}}"
display_name = "Example Test Mail"
short_name = "Example"
prefer = "imap"
username = "full-address"
auth = ["plain", "login"]
web_url = "https://localhost:{{.P.HTTPS}}"
# The autoconfig., autodiscover. names' address (A records), so that
# "mailsetup probe --clients" can follow them to this machine.
web_addresses = ["127.0.0.1"]

  # Implicit TLS first (RFC 8314), STARTTLS second.
  [[domain.imap]]
  host = "localhost"
  port = {{.P.IMAPS}}
  security = "tls"

  [[domain.imap]]
  host = "localhost"
  port = {{.P.IMAP}}
  security = "starttls"

  [[domain.pop3]]
  host = "localhost"
  port = {{.P.POP3S}}
  security = "tls"

  [[domain.pop3]]
  host = "localhost"
  port = {{.P.POP3}}
  security = "starttls"

  [[domain.submission]]
  host = "localhost"
  port = {{.P.Submissions}}
  security = "tls"

  [[domain.submission]]
  host = "localhost"
  port = {{.P.Submission}}
  security = "starttls"

  [[domain.mx]]
  host = "localhost"
  preference = 10

  # POP3 clients keep a copy on the server only together with "delete
  # after N days" (1..10). expire_days > 0 deletes on the server what
  # was retrieved over POP3 more than that many days ago (at least
  # delete_after_days; advertised as CAPA EXPIRE).
  [domain.pop3_policy]
  leave_on_server = true
  delete_after_days = 7
  expire_days = 0
`))

// EnsureDefault sets up dir as an embedded default (config file,
// self-signed certificate for localhost, demo account) unless it already
// has a config file, which is then reused as it is.
func EnsureDefault(dir string, ports Ports) (Created, error) {
	cfgPath := filepath.Join(dir, ConfigFile)
	if _, err := os.Stat(cfgPath); err == nil {
		return Created{ConfigPath: cfgPath}, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return Created{}, fmt.Errorf("data directory: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "tls"), 0o700); err != nil {
		return Created{}, fmt.Errorf("creating data directory: %w", err)
	}
	if err := WriteSelfSigned(filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile), []string{"localhost", "autoconfig." + DemoDomain, "autodiscover." + DemoDomain}, 2*365*24*time.Hour); err != nil {
		return Created{}, err
	}
	store, err := accounts.Open(filepath.Join(dir, AccountsFile))
	if err != nil {
		return Created{}, err
	}
	created := Created{ConfigPath: cfgPath, New: true}
	// Each password is in the credentials file before it is in use.
	if _, ok := store.Get(DemoAddress); !ok {
		created.DemoPassword = RandomPassword()
		if created.CredentialsPath, err = addCredentials(dir, "DEMO_ADDRESS="+DemoAddress, "DEMO_PASSWORD="+created.DemoPassword); err != nil {
			return Created{}, err
		}
		if err := store.Add(DemoAddress, created.DemoPassword); err != nil {
			return Created{}, fmt.Errorf("creating demo account: %w", err)
		}
	}
	created.StaffPassword = RandomPassword()
	if created.CredentialsPath, err = addCredentials(dir, "STAFF_NAME="+DefaultStaff, "STAFF_PASSWORD="+created.StaffPassword); err != nil {
		return Created{}, err
	}
	staffHash, err := accounts.HashPassword(created.StaffPassword)
	if err != nil {
		return Created{}, err
	}
	var b strings.Builder
	if err := defaultConfig.Execute(&b, struct {
		Domain, CertFile, KeyFile string
		StaffName, StaffHash      string
		P                         Ports
	}{DemoDomain, CertFile, KeyFile, DefaultStaff, staffHash, ports}); err != nil {
		return Created{}, err
	}
	// Written last: a config file marks a complete data directory.
	if err := os.WriteFile(cfgPath, []byte(b.String()), 0o600); err != nil {
		return Created{}, fmt.Errorf("writing config: %w", err)
	}
	return created, nil
}

// RandomPassword returns 20 random base32 characters (100 bits).
func RandomPassword() string {
	b := make([]byte, 13)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))[:20]
}

// WriteSelfSigned writes a self-signed ECDSA P-256 certificate valid for
// names (and 127.0.0.1 and ::1) and its key, as PEM files.
func WriteSelfSigned(certPath, keyPath string, names []string, validity time.Duration) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: names[0], Organization: []string{"mailsetup self-signed"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageEmailProtection},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              names,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("creating certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return fmt.Errorf("writing key: %w", err)
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return fmt.Errorf("writing certificate: %w", err)
	}
	return nil
}
