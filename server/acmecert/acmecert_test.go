package acmecert

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/acme/autocert"
)

// lockedBuffer collects log output from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// cacheCert stores, in autocert's cache format, a certificate for name
// valid from notBefore to notAfter, and returns its DER.
func cacheCert(t *testing.T, dir, name string, notBefore, notAfter time.Time) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: notBefore, NotAfter: notAfter, DNSNames: []string{name},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	_ = pem.Encode(&buf, &pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
	_ = pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := autocert.DirCache(dir).Put(context.Background(), name, buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	return der
}

// failingCA is an ACME directory that answers every request 404 and
// counts them.
func failingCA(t *testing.T) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		http.Error(w, "no such directory", http.StatusNotFound)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// TestRenewalFailureKeepsTheValidCertificate: a certificate 5 days from
// expiry is due for renewal at once; the CA fails, and the certificate
// stays in use (the same one is served after the failed attempt), is
// logged as expiring soon, and is the metric's earliest expiry. Clients
// without a server name or with an unknown one get the first name's.
func TestRenewalFailureKeepsTheValidCertificate(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	soon := cacheCert(t, dir, "mail.example.test", now.Add(-80*24*time.Hour), now.Add(5*24*time.Hour))
	later := cacheCert(t, dir, "autoconfig.example.test", now.Add(-time.Hour), now.Add(60*24*time.Hour))
	ca, requests := failingCA(t)
	var logs lockedBuffer
	reg := prometheus.NewRegistry()
	mg, err := New(Options{DirectoryURL: ca.URL, Email: "pm@example.test", CacheDir: dir, Names: []string{"mail.example.test", "autoconfig.example.test"},
		Logger: slog.New(slog.NewTextHandler(&logs, nil)), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	runReady(t, mg, &logs)
	deadline := time.Now().Add(10 * time.Second)
	for requests.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if requests.Load() == 0 {
		t.Fatal("no renewal was attempted for the certificate 5 days from expiry")
	}
	time.Sleep(200 * time.Millisecond) // the failed attempt has ended
	for _, tc := range []struct {
		sni  string
		want []byte
	}{
		{"mail.example.test", soon}, {"autoconfig.example.test", later}, {"", soon}, {"unknown.example.test", soon},
	} {
		cert, err := mg.GetCertificate(ecdsaHello(tc.sni))
		if err != nil {
			t.Fatalf("%q: %v", tc.sni, err)
		}
		if !bytes.Equal(cert.Certificate[0], tc.want) {
			t.Errorf("SNI %q: not the expected (still valid) certificate", tc.sni)
		}
	}
	if e, name := mg.Earliest(); name != "mail.example.test" || e.Unix() != now.Add(5*24*time.Hour).Unix() {
		t.Errorf("Earliest = %v %s", e, name)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "{" + l.GetValue() + "}"
			}
			got[key] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	if got["mailsetup_tls_certificate_expiry_seconds"] != float64(now.Add(5*24*time.Hour).Unix()) ||
		got["mailsetup_tls_renewal_failures_total{mail.example.test}"] < 1 ||
		got["mailsetup_tls_renewal_next_attempt_seconds{mail.example.test}"] < float64(now.Unix()) {
		t.Errorf("metrics: %v", got)
	}
	if _, ok := got["mailsetup_tls_renewal_failures_total{autoconfig.example.test}"]; ok {
		t.Errorf("a renewal failure counted for a certificate not due: %v", got)
	}
	out := logs.String()
	if !regexp.MustCompile(`msg="acme: renewal failed, the valid certificate stays in use" name=mail\.example\.test attempt=1 retry_in=1m`).MatchString(out) {
		t.Errorf("no renewal failure line with attempt and retry_in:\n%s", out)
	}
	if !regexp.MustCompile(`msg="acme: certificate expires soon and has not been renewed" name=mail\.example\.test .*days_left=4 finding=tls\.expires-soon`).MatchString(out) {
		t.Errorf("no expires-soon line for mail.example.test:\n%s", out)
	}
	if strings.Contains(out, "expires soon and has not been renewed\" name=autoconfig") {
		t.Errorf("expires-soon for a certificate 60 days from expiry:\n%s", out)
	}
}

// TestBackoff: a name the CA does not issue is tried again after Retry,
// then twice as long, and so on.
func TestBackoff(t *testing.T) {
	ca, _ := failingCA(t)
	var logs lockedBuffer
	mg, err := New(Options{DirectoryURL: ca.URL, CacheDir: t.TempDir(), Names: []string{"mail.example.test"},
		Logger: slog.New(slog.NewTextHandler(&logs, nil)), Retry: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() { mg.Run(ctx, func() { t.Error("ready without a certificate") }); close(done) }()
	defer func() { <-done }()
	re := regexp.MustCompile(`retry_in=(\S+)`)
	for {
		if n := len(re.FindAllString(logs.String(), -1)); n >= 4 || ctx.Err() != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	var waits []string
	for _, m := range re.FindAllStringSubmatch(logs.String(), 4) {
		waits = append(waits, m[1])
	}
	if strings.Join(waits, " ") != "20ms 40ms 80ms 160ms" {
		t.Errorf("waits %v, want 20ms 40ms 80ms 160ms:\n%s", waits, logs.String())
	}
}

// TestRenewalBackoff: the waits double from Retry, with at most a
// quarter more of jitter, and never exceed MaxRetry.
func TestRenewalBackoff(t *testing.T) {
	mg, err := New(Options{CacheDir: t.TempDir(), Names: []string{"mail.example.test"}, Retry: time.Minute, MaxRetry: 6 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for n, base := range map[int]time.Duration{1: time.Minute, 2: 2 * time.Minute, 5: 16 * time.Minute, 9: 256 * time.Minute, 10: 6 * time.Hour, 40: 6 * time.Hour} {
		for range 50 {
			w := mg.backoff(n)
			if w < base || w > min(base+base/4, 6*time.Hour) {
				t.Fatalf("backoff(%d) = %s, want %s to %s", n, w, base, min(base+base/4, 6*time.Hour))
			}
		}
	}
}

// TestHostPolicy: the HTTP-01 request's Host may carry a port; other
// names are refused; a name without a dot is refused at New.
func TestHostPolicy(t *testing.T) {
	p := hostPolicy(func() []string { return []string{"mail.example.test"} })
	for host, ok := range map[string]bool{"mail.example.test": true, "MAIL.example.test.": true, "mail.example.test:8080": true, "evil.example": false, "": false} {
		if err := p(context.Background(), host); (err == nil) != ok {
			t.Errorf("%q: %v", host, err)
		}
	}
	if _, err := New(Options{CacheDir: t.TempDir(), Names: []string{"localhost"}}); err == nil || !strings.Contains(err.Error(), `"localhost"`) {
		t.Errorf("New with localhost: %v", err)
	}
}

// TestSetNames: a name added while running is asked for at once; a
// removed one is no longer served by its name nor counted.
func TestSetNames(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	cacheCert(t, dir, "mail.example.test", now.Add(-time.Hour), now.Add(80*24*time.Hour))
	old := cacheCert(t, dir, "old.example.test", now.Add(-time.Hour), now.Add(70*24*time.Hour))
	ca, _ := failingCA(t)
	var logs lockedBuffer
	mg, err := New(Options{DirectoryURL: ca.URL, CacheDir: dir, Names: []string{"mail.example.test", "old.example.test"},
		Logger: slog.New(slog.NewTextHandler(&logs, nil)), Retry: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	runReady(t, mg, &logs)
	if err := mg.SetNames([]string{"mail.example.test", "New.example.test."}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), `msg="acme: no certificate yet" name=new.example.test`) {
		if time.Now().After(deadline) {
			t.Fatalf("the added name was not asked for:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := strings.Join(mg.Names(), " "); got != "mail.example.test new.example.test" {
		t.Errorf("Names() = %s", got)
	}
	if _, name := mg.Earliest(); name != "mail.example.test" {
		t.Errorf("Earliest is %q's, want the removed name forgotten", name)
	}
	cert, err := mg.GetCertificate(ecdsaHello("old.example.test"))
	if err != nil || bytes.Equal(cert.Certificate[0], old) {
		t.Errorf("the removed name's certificate is still served by its name: %v", err)
	}
	if err := mg.SetNames([]string{"localhost"}); err == nil {
		t.Error("SetNames accepted a name without a dot")
	}
}

// runReady runs mg until the test ends and waits until every name has
// its certificate.
func runReady(t *testing.T, mg *Manager, logs *lockedBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	ready := make(chan struct{})
	go func() { mg.Run(ctx, func() { close(ready) }); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatalf("not ready:\n%s", logs.String())
	}
}

// TestRetiredManagerAsksNothing: a manager replaced by a renewal no
// longer reaches the CA (its own renewal timers would order again).
func TestRetiredManagerAsksNothing(t *testing.T) {
	ca, requests := failingCA(t)
	mg, err := New(Options{DirectoryURL: ca.URL, CacheDir: t.TempDir(), Names: []string{"mail.example.test"}})
	if err != nil {
		t.Fatal(err)
	}
	am, rt := mg.autocert(autocert.DirCache(t.TempDir()), nil)
	if _, err := am.Client.Discover(context.Background()); err == nil || requests.Load() != 1 {
		t.Fatalf("before: %v, %d requests", err, requests.Load())
	}
	rt.retired.Store(true)
	if _, err := am.Client.Discover(context.Background()); !errors.Is(err, errRetired) || requests.Load() != 1 {
		t.Errorf("retired: %v, %d requests", err, requests.Load())
	}
}
