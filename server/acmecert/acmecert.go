// Package acmecert obtains and renews the service's certificates from an
// ACME CA (RFC 8555; Let's Encrypt by default) with
// golang.org/x/crypto/acme/autocert: the HTTP-01 challenge on the plain
// HTTP listener, TLS-ALPN-01 (RFC 8737) on the HTTPS listener, account and
// certificates cached in a directory (under the data directory).
//
// What it adds to autocert: a fixed list of names obtained at start
// rather than at a first handshake (with a per-name backoff while the CA
// or DNS is not ready), one certificate for clients that send no or an
// unknown server name (mail clients that connect by address), the
// earliest expiry as a metric, and a warning log line while a
// certificate is within ExpiresSoon of its end; names added or removed
// while running (SetNames, a config reload).
//
// Renewal is its own (renew.go): RenewBefore a certificate's expiry a
// second autocert manager, whose cache misses that one certificate,
// orders a new one; a failure is retried with an exponential backoff
// and jitter (Retry doubled per failure, up to MaxRetry), counted per
// name and logged once per attempt, while the valid certificate stays in
// use: a certificate that cannot be renewed never replaces a valid one.
// autocert's own renewal stays as the last resort a day before expiry.
//
// Imports: the standard library, x/crypto/acme and prometheus.
package acmecert

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// LetsEncrypt is the default directory.
const LetsEncrypt = acme.LetsEncryptURL

// ExpiresSoon is when a certificate is logged as expiring soon (the
// probe's tls.expires-soon uses the same 14 days).
const ExpiresSoon = 14 * 24 * time.Hour

// Options configure a Manager.
type Options struct {
	// DirectoryURL is the CA's ACME directory; default LetsEncrypt.
	DirectoryURL string
	// Email is the account's contact.
	Email string
	// EAB is the External Account Binding some CAs require; nil without.
	EAB *acme.ExternalAccountBinding
	// CacheDir holds the account key and the certificates (mode 0700).
	CacheDir string
	// Names are the host names to hold certificates for; the first is
	// served to clients that send no server name or one not listed.
	Names []string
	// RenewBefore renews a certificate this long before it expires;
	// default 30 days (autocert needs more than an hour).
	RenewBefore time.Duration
	// HTTPClient talks to the CA; its Timeout bounds every request.
	// Default: 30 s per request with the system roots.
	HTTPClient *http.Client
	// Logger; nil discards.
	Logger *slog.Logger
	// Registerer gets mailsetup_tls_certificate_expiry_seconds; nil
	// registers nothing.
	Registerer prometheus.Registerer
	// Retry is the first wait after a failed attempt for a name; it
	// doubles up to an hour while a name has no certificate, and up to
	// MaxRetry (with jitter) for a renewal. Default one minute.
	Retry time.Duration
	// MaxRetry bounds the wait between two renewal attempts of a name.
	// Default 6 hours.
	MaxRetry time.Duration
}

// Manager holds the certificates of Options.Names.
type Manager struct {
	// m is the autocert manager serving the certificates; a renewal
	// replaces it by the one that renewed (renew.go).
	m atomic.Pointer[autocert.Manager]
	// transport is m's way to the CA, retired when m is replaced.
	transport atomic.Pointer[retirable]
	opts      Options
	log       *slog.Logger
	retry     time.Duration
	// http01: HTTPHandler was asked for, so HTTP-01 can be offered.
	http01 atomic.Bool
	// wake makes Run look at the names now (SetNames).
	wake    chan struct{}
	metrics renewMetrics

	mu      sync.Mutex
	names   []string             // the default first
	expires map[string]time.Time // per name, the certificate's NotAfter
	issued  map[string]time.Time // per name, its NotBefore
	renew   map[string]*renewState
}

// New prepares a Manager; nothing is requested before Run or a handshake.
func New(o Options) (*Manager, error) {
	if len(o.Names) == 0 {
		return nil, errors.New("acme: no host names to get certificates for")
	}
	if o.CacheDir == "" {
		return nil, errors.New("acme: no cache directory")
	}
	for _, n := range o.Names {
		if !strings.Contains(strings.Trim(n, "."), ".") {
			return nil, fmt.Errorf("acme: %q: a CA issues certificates only for names with a dot", n)
		}
	}
	if o.DirectoryURL == "" {
		o.DirectoryURL = LetsEncrypt
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Retry <= 0 {
		o.Retry = time.Minute
	}
	if o.MaxRetry <= 0 {
		o.MaxRetry = 6 * time.Hour
	}
	if o.RenewBefore <= 0 {
		o.RenewBefore = 30 * 24 * time.Hour
	}
	mg := &Manager{opts: o, names: cleanNames(o.Names), log: o.Logger, retry: o.Retry, expires: map[string]time.Time{}, issued: map[string]time.Time{},
		renew: map[string]*renewState{}, wake: make(chan struct{}, 1)}
	am, rt := mg.autocert(autocert.DirCache(o.CacheDir), nil)
	mg.m.Store(am)
	mg.transport.Store(rt)
	mg.metrics = newRenewMetrics()
	if o.Registerer != nil {
		o.Registerer.MustRegister(mg.metrics.failures, mg.metrics.next)
		o.Registerer.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "mailsetup_tls_certificate_expiry_seconds",
			Help: "When the earliest-expiring ACME certificate expires (Unix time; 0 while none is held). Certificates are renewed 30 days before expiry; one within 14 days of it is logged as expiring soon.",
		}, func() float64 {
			t, _ := mg.Earliest()
			if t.IsZero() {
				return 0
			}
			return float64(t.Unix())
		}))
	}
	return mg, nil
}

// cleanNames lower-cases the names, without a final dot or repeats.
func cleanNames(in []string) []string {
	names := make([]string, 0, len(in))
	for _, n := range in {
		n = strings.ToLower(strings.TrimSuffix(n, "."))
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	return names
}

// autocertLastResort is autocert's own RenewBefore: it renews only if
// this package's renewal has failed until a day before expiry.
const autocertLastResort = 24 * time.Hour

// autocert is an autocert manager with the options, on cache; it talks
// to the CA through its own retirable transport, wrap's (may be nil)
// under it.
func (mg *Manager) autocert(cache autocert.Cache, wrap func(http.RoundTripper) http.RoundTripper) (*autocert.Manager, *retirable) {
	o := mg.opts
	base := o.HTTPClient.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	if wrap != nil {
		base = wrap(base)
	}
	rt := &retirable{base: base}
	hc := *o.HTTPClient
	hc.Transport = rt
	am := &autocert.Manager{
		Prompt:                 autocert.AcceptTOS,
		Cache:                  cache,
		HostPolicy:             hostPolicy(mg.Names),
		RenewBefore:            autocertLastResort,
		Email:                  o.Email,
		ExternalAccountBinding: o.EAB,
		Client:                 &acme.Client{DirectoryURL: o.DirectoryURL, HTTPClient: &hc, UserAgent: "mailsetup"},
	}
	if mg.http01.Load() {
		am.HTTPHandler(nil) // offers HTTP-01 (tokens reach the listener's handler through the cache)
	}
	return am, rt
}

// retirable is one autocert manager's way to the CA. Once a renewal has
// made another manager the served one, the old one is retired: its own
// last-resort renewal timers then fail at once instead of ordering
// certificates the service does not use.
type retirable struct {
	base    http.RoundTripper
	retired atomic.Bool
}

var errRetired = errors.New("acme: this certificate manager was replaced by a renewal")

func (r *retirable) RoundTrip(req *http.Request) (*http.Response, error) {
	if r.retired.Load() {
		return nil, errRetired
	}
	return r.base.RoundTrip(req)
}

// hostPolicy allows the names only. autocert asks it with the HTTP-01
// request's Host header, which carries the port when it is not 80.
func hostPolicy(names func() []string) autocert.HostPolicy {
	return func(_ context.Context, host string) error {
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if !slices.Contains(names(), strings.ToLower(strings.TrimSuffix(host, "."))) {
			return fmt.Errorf("acme: %q is not one of the names this server gets certificates for", host)
		}
		return nil
	}
}

// Names are the names certificates are held for, the default first.
func (mg *Manager) Names() []string {
	mg.mu.Lock()
	defer mg.mu.Unlock()
	return slices.Clone(mg.names)
}

// SetNames replaces the names (a config reload): Run obtains the new
// ones at once; a removed name's certificate is no longer served nor
// renewed (it stays in the cache). The first name stays the default.
func (mg *Manager) SetNames(names []string) error {
	names = cleanNames(names)
	if len(names) == 0 {
		return errors.New("acme: no host names to get certificates for")
	}
	for _, n := range names {
		if !strings.Contains(strings.Trim(n, "."), ".") {
			return fmt.Errorf("acme: %q: a CA issues certificates only for names with a dot", n)
		}
	}
	mg.mu.Lock()
	for n := range mg.expires {
		if !slices.Contains(names, n) {
			delete(mg.expires, n)
			delete(mg.issued, n)
			delete(mg.renew, n)
			mg.metrics.forget(n)
		}
	}
	mg.names = names
	mg.mu.Unlock()
	select {
	case mg.wake <- struct{}{}:
	default:
	}
	return nil
}

// TLSConfig is a server config answering with the certificates, the
// TLS-ALPN-01 challenge included (acme-tls/1 is offered; http/1.1 too,
// the only HTTP the service speaks over a TLS listener).
func (mg *Manager) TLSConfig() *tls.Config {
	return &tls.Config{
		GetCertificate: mg.GetCertificate,
		NextProtos:     []string{"http/1.1", acme.ALPNProto},
		MinVersion:     tls.VersionTLS12,
	}
}

// GetCertificate serves the certificate of the hello's server name; a
// client that sends none, or a name not held, gets the default name's.
func (mg *Manager) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	if names := mg.Names(); !slices.Contains(names, name) && !isChallenge(hello) {
		h := *hello
		h.ServerName = names[0]
		hello = &h
	}
	return mg.m.Load().GetCertificate(hello)
}

// isChallenge: the CA's TLS-ALPN-01 validation offers only acme-tls/1.
func isChallenge(hello *tls.ClientHelloInfo) bool {
	return len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == acme.ALPNProto
}

// HTTPHandler answers the HTTP-01 challenge and passes everything else
// to fallback. The challenge's tokens are read from the cache too, where
// a renewal's manager writes them.
func (mg *Manager) HTTPHandler(fallback http.Handler) http.Handler {
	mg.http01.Store(true)
	return mg.m.Load().HTTPHandler(fallback)
}

// Earliest is the earliest expiry among the certificates held, and its
// name; zero while none is held.
func (mg *Manager) Earliest() (time.Time, string) {
	mg.mu.Lock()
	defer mg.mu.Unlock()
	var t time.Time
	var name string
	for n, e := range mg.expires {
		if t.IsZero() || e.Before(t) {
			t, name = e, n
		}
	}
	return t, name
}

// ecdsaHello asks autocert for the ECDSA certificate every current client
// accepts (an empty hello would get the RSA one).
func ecdsaHello(name string) *tls.ClientHelloInfo {
	return &tls.ClientHelloInfo{
		ServerName:       name,
		SignatureSchemes: []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256},
		SupportedCurves:  []tls.CurveID{tls.CurveP256},
		CipherSuites:     []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
	}
}

// check gets (from the cache, or from the CA) the certificate of one
// name and records its expiry.
func (mg *Manager) check(name string) error {
	leaf, err := leafOf(mg.m.Load().GetCertificate(ecdsaHello(name)))
	if err != nil {
		return err
	}
	mg.mu.Lock()
	old, had := mg.expires[name]
	if slices.Contains(mg.names, name) {
		mg.expires[name], mg.issued[name] = leaf.NotAfter, leaf.NotBefore
	}
	mg.mu.Unlock()
	if !had || !old.Equal(leaf.NotAfter) {
		mg.log.Info("acme: certificate", "name", name, "issuer", leaf.Issuer.CommonName, "not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if left := time.Until(leaf.NotAfter); left < ExpiresSoon {
		mg.log.Warn("acme: certificate expires soon and has not been renewed", "name", name, "not_after", leaf.NotAfter.UTC().Format(time.RFC3339), "days_left", int(left.Hours()/24), "finding", "tls.expires-soon")
	}
	return nil
}

// leafOf is a certificate's parsed leaf.
func leafOf(cert *tls.Certificate, err error) (*x509.Certificate, error) {
	if err != nil {
		return nil, err
	}
	if cert.Leaf != nil {
		return cert.Leaf, nil
	}
	return x509.ParseCertificate(cert.Certificate[0])
}

// CheckInterval is how often Run looks at the held certificates (their
// expiry for the metric and the log, whether one is due for renewal).
const CheckInterval = 10 * time.Minute

// Run obtains every name's certificate, retrying a failed name after
// Retry, doubled on every failure up to an hour, renews each RenewBefore
// its expiry (renewDue), and looks at them every CheckInterval until ctx
// ends. ready, when not nil, is called once every name has a
// certificate.
func (mg *Manager) Run(ctx context.Context, ready func()) {
	wait := map[string]time.Duration{}
	next := map[string]time.Time{}
	for {
		now := time.Now()
		sleep := CheckInterval
		names := mg.Names()
		for _, name := range names {
			if now.Before(next[name]) {
				sleep = min(sleep, next[name].Sub(now))
				continue
			}
			if err := mg.check(name); err != nil {
				w := wait[name]
				if w == 0 {
					w = mg.retry
				} else {
					w = min(2*w, time.Hour)
				}
				wait[name] = w
				next[name] = time.Now().Add(w)
				sleep = min(sleep, w)
				mg.log.Warn("acme: no certificate yet", "name", name, "retry_in", w.String(), "err", err)
				continue
			}
			delete(wait, name)
			next[name] = time.Now().Add(CheckInterval)
			if at := mg.renewDue(ctx, name); !at.IsZero() && at.Before(next[name]) {
				next[name] = at // a renewal attempt sooner than the next look
			}
			sleep = min(sleep, time.Until(next[name]))
		}
		mg.mu.Lock()
		held := 0
		for _, n := range names {
			if _, ok := mg.expires[n]; ok {
				held++
			}
		}
		mg.mu.Unlock()
		if ready != nil && held == len(names) {
			ready()
			ready = nil
		}
		if ctx.Err() != nil {
			return
		}
		t := time.NewTimer(max(sleep, 0))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-mg.wake:
			t.Stop()
			for _, n := range mg.Names() {
				if _, held := mg.expiry(n); !held {
					next[n] = time.Time{} // a new name: now
				}
			}
		case <-t.C:
		}
	}
}
