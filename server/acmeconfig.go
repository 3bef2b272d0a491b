package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/acme"

	"mailsetup/server/acmecert"
)

// ServerTLSConfig is the service's certificate: PEM files, or ACME.
type ServerTLSConfig struct {
	CertFile string `toml:"cert_file"`
	KeyFile  string `toml:"key_file"`
	// ACME, when its email is set, gets the certificates from a CA
	// instead (cert_file and key_file must then be empty).
	ACME ACMEConfig `toml:"acme"`
}

// ACMEConfig gets certificates from an ACME CA (RFC 8555) for every name
// the policies need: hostname, each domain's web host, its autoconfig.,
// autodiscover., ua-auto-config. and mta-sts. names, the endpoint and MX
// hosts, and Names. Each must resolve to this server: the CA checks it
// over listen.http (HTTP-01, port 80) or listen.https (TLS-ALPN-01, 443).
type ACMEConfig struct {
	// Email is the account's contact; setting it turns ACME on.
	Email string `toml:"email"`
	// DirectoryURL is the CA's directory. Default Let's Encrypt.
	DirectoryURL string `toml:"directory_url"`
	// DirectoryCAFile is a PEM file of roots to trust for the
	// directory's own HTTPS (an in-house CA); default the system roots.
	DirectoryCAFile string `toml:"directory_ca_file"`
	// EABKeyID and EABKeyFile are the External Account Binding some CAs
	// require: the key id, and a file holding the base64url MAC key.
	EABKeyID   string `toml:"eab_kid"`
	EABKeyFile string `toml:"eab_hmac_key_file"`
	// Storage holds the account key and certificates. Default "acme" in
	// data_dir.
	Storage string `toml:"storage"`
	// Names are more host names to hold certificates for.
	Names []string `toml:"names"`
	// RenewBeforeDays renews a certificate this many days before it
	// expires. Default 30.
	RenewBeforeDays int `toml:"renew_before_days"`
	// RetrySeconds is the first wait after a failed attempt to get or
	// renew a name's certificate; it doubles per failure (up to an hour
	// while the name has none, up to 6 hours for a renewal, with
	// jitter). Default 60.
	RetrySeconds int `toml:"retry_seconds"`
}

// acmeOn reports whether the certificates come from ACME.
func (c *Config) acmeOn() bool { return c.TLS.ACME.Email != "" }

// hasCertificate: either PEM files or ACME provide the certificate.
func (c *Config) hasCertificate() bool {
	return c.acmeOn() || c.TLS.CertFile != "" && c.TLS.KeyFile != ""
}

func (c *Config) acmeDefaults() {
	a := &c.TLS.ACME
	if !c.acmeOn() {
		return
	}
	if a.DirectoryURL == "" {
		a.DirectoryURL = acmecert.LetsEncrypt
	}
	if a.Storage == "" {
		a.Storage = "acme"
	}
	setDefault(&a.RenewBeforeDays, 30)
	setDefault(&a.RetrySeconds, 60)
}

func (c *Config) validateACME(add func(string, ...any)) {
	a := c.TLS.ACME
	if !c.acmeOn() {
		if a.DirectoryURL != "" || a.EABKeyID != "" || a.EABKeyFile != "" || len(a.Names) > 0 {
			add("tls.acme: set tls.acme.email to turn ACME on (the CA's contact for the account)")
		}
		return
	}
	if !strings.Contains(a.Email, "@") || strings.ContainsAny(a.Email, " \t<>") {
		add("tls.acme.email = %q: want an address such as postmaster@example.com", a.Email)
	}
	if c.TLS.CertFile != "" || c.TLS.KeyFile != "" {
		add("tls.cert_file/tls.key_file and tls.acme are both set: use one (remove cert_file and key_file to get certificates from the CA)")
	}
	if u, err := url.Parse(a.DirectoryURL); err != nil || u.Scheme != "https" || u.Host == "" {
		add("tls.acme.directory_url = %q: want the CA's https:// directory URL", a.DirectoryURL)
	}
	if (a.EABKeyID == "") != (a.EABKeyFile == "") {
		add("tls.acme: set both eab_kid and eab_hmac_key_file, or neither")
	}
	if a.RenewBeforeDays < 2 || a.RenewBeforeDays > 60 {
		add("tls.acme.renew_before_days = %d: want 2 to 60", a.RenewBeforeDays)
	}
	if a.RetrySeconds < 1 || a.RetrySeconds > 3600 {
		add("tls.acme.retry_seconds = %d: want 1 to 3600", a.RetrySeconds)
	}
	if c.Listen.HTTP == "" && c.Listen.HTTPS == "" {
		add("tls.acme needs listen.http (HTTP-01 on port 80) or listen.https (TLS-ALPN-01 on port 443): the CA checks the names there")
	}
	for _, n := range a.Names {
		if !strings.Contains(strings.Trim(n, "."), ".") {
			add("tls.acme.names: %q: a CA issues certificates only for names with a dot", n)
		}
	}
}

// ACMENames are the host names the certificates are obtained for, the
// hostname first (served to clients that send no server name).
func (c *Config) ACMENames() []string {
	var names []string
	addName := func(n string) {
		n = strings.ToLower(strings.TrimSuffix(n, "."))
		if strings.Contains(n, ".") && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	addName(c.Hostname)
	for _, p := range c.Policies() {
		addName(p.Web.Host())
		for _, prefix := range []string{"autoconfig.", "autodiscover.", "ua-auto-config.", "mta-sts."} {
			addName(prefix + p.Domain)
		}
		for _, e := range append(p.Incoming(), p.Submission...) {
			addName(e.Host)
		}
		for _, mx := range p.MX {
			addName(mx.Host)
		}
	}
	for _, n := range c.TLS.ACME.Names {
		addName(n)
	}
	return names
}

// acmeOptions turns the config into the manager's options.
func (c *Config) acmeOptions() (acmecert.Options, error) {
	a := c.TLS.ACME
	o := acmecert.Options{
		DirectoryURL: a.DirectoryURL,
		Email:        a.Email,
		CacheDir:     filepath.Join(c.Path(c.DataDir), a.Storage),
		Names:        c.ACMENames(),
		RenewBefore:  time.Duration(a.RenewBeforeDays) * 24 * time.Hour,
		Retry:        time.Duration(a.RetrySeconds) * time.Second,
	}
	if filepath.IsAbs(a.Storage) {
		o.CacheDir = a.Storage
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if a.DirectoryCAFile != "" {
		certs, err := ReadCerts(c.Path(a.DirectoryCAFile))
		if err != nil {
			return o, fmt.Errorf("tls.acme.directory_ca_file = %q: %w", a.DirectoryCAFile, err)
		}
		pool := x509.NewCertPool()
		for _, cert := range certs {
			pool.AddCert(cert)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	o.HTTPClient = &http.Client{Timeout: 30 * time.Second, Transport: tr}
	if a.EABKeyID != "" {
		raw, err := os.ReadFile(c.Path(a.EABKeyFile))
		if err != nil {
			return o, fmt.Errorf("tls.acme.eab_hmac_key_file: %w", err)
		}
		key, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(strings.TrimSpace(string(raw)), "="))
		if err != nil || len(key) == 0 {
			return o, fmt.Errorf("tls.acme.eab_hmac_key_file = %q: want the CA's MAC key, base64url", a.EABKeyFile)
		}
		o.EAB = &acme.ExternalAccountBinding{KID: a.EABKeyID, Key: key}
	}
	return o, nil
}

// plainHTTP is the handler of listen.http: the web, behind the HTTP-01
// challenge with tls.acme.
func (s *Server) plainHTTP() http.Handler {
	if s.acme == nil {
		return s.web
	}
	return s.acme.HTTPHandler(s.web)
}

// startACME gets the certificates in the background, now that the
// listeners the CA checks are open; shutdown stops it.
func (r *running) startACME() {
	s := r.s
	if s.acme == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.acme.Run(ctx, func() { s.log.Info("acme: every name has its certificate", "names", len(s.acme.Names())) })
	}()
	r.closers = append(r.closers, func(sctx context.Context) error {
		cancel() // an order under way ends with its own deadline
		select {
		case <-done:
		case <-sctx.Done():
		}
		return nil
	})
}
