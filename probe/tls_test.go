package probe

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"mailsetup/autoconfig"
)

// testCert makes a self-signed certificate for names, valid for the
// given time, and a pool that trusts it.
func testCert(t *testing.T, names []string, valid time.Duration) (*tls.Config, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: names[0]},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(valid),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true, DNSNames: names,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, pool
}

// TestCertificateChecks: name mismatch, expired, untrusted, expiring
// soon; the login is not attempted over an unverified connection.
func TestCertificateChecks(t *testing.T) {
	year := 365 * 24 * time.Hour
	for _, c := range []struct {
		name  string
		names []string
		valid time.Duration
		trust bool
		now   time.Duration // offset of the probe's clock
		want  []string
	}{
		{"good", []string{"localhost"}, year, true, 0, nil},
		{"name mismatch", []string{"mail.other.test"}, year, true, 0, []string{"tls.name-mismatch", "tls.failed"}},
		{"expired", []string{"localhost"}, year, true, 2 * year, []string{"tls.expired", "tls.failed"}},
		{"untrusted", []string{"localhost"}, year, false, 0, []string{"tls.untrusted", "tls.failed"}},
		{"expires soon", []string{"localhost"}, 5 * 24 * time.Hour, true, 0, []string{"tls.expires-soon"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, pool := testCert(t, c.names, c.valid)
			if !c.trust {
				pool = x509.NewCertPool()
			}
			f := startFakePOP3(t, cfg, "+OK", time.Now().Format(time.RFC1123Z))
			pol := popPolicy(f.ln.Addr().(*net.TCPAddr).Port)
			rep, err := Run(context.Background(), Request{Address: "john@example.test", Password: "pw"}, Options{
				Policy: func(string) (autoconfig.Policy, bool) { return pol, true }, RootCAs: pool,
				Now: func() time.Time { return time.Now().Add(c.now) },
			})
			if err != nil {
				t.Fatal(err)
			}
			got := slices.DeleteFunc(ids(rep.Findings), func(id string) bool { return id == "pop3.login-delay" })
			if !slices.Equal(got, c.want) {
				t.Errorf("findings %v, want %v\n%+v", got, c.want, rep.Steps)
			}
			if c.want != nil && c.name != "expires soon" && slices.Contains(f.got(), "AUTH") {
				t.Errorf("the password was sent over an unverified connection: %v", f.got())
			}
		})
	}
}

// TestUnreachable: a closed port gives one server.unreachable, seen by
// the connection and the login steps.
func TestUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	pol := popPolicy(port)
	rep, err := Run(context.Background(), Request{Address: "john@example.test", Password: "pw"}, Options{
		Policy: func(string) (autoconfig.Policy, bool) { return pol, true },
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(rep.Findings); !slices.Equal(got, []string{"server.unreachable"}) || ExitCode(rep) != 2 || len(rep.Steps) != 2 || rep.Steps[0].Error == "" || rep.Steps[1].Error == "" {
		t.Errorf("findings %v %+v", got, rep.Findings)
	}
}

// TestUnreachableSaysCallUsOnce: several servers that do not answer are
// one server.unreachable whose fix says "call us" once and names each
// server (it used to repeat the whole sentence per server).
func TestUnreachableSaysCallUsOnce(t *testing.T) {
	var ports []int
	for range 3 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
		ln.Close()
	}
	pol := popPolicy(ports[0])
	pol.IMAP = []autoconfig.Endpoint{{Protocol: autoconfig.IMAP, Host: "localhost", Port: ports[1], Security: autoconfig.TLS}}
	pol.Submission = []autoconfig.Endpoint{{Protocol: autoconfig.SMTP, Host: "localhost", Port: ports[2], Security: autoconfig.TLS}}
	rep, err := Run(context.Background(), Request{Address: "john@example.test"}, Options{
		Policy: func(string) (autoconfig.Policy, bool) { return pol, true },
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != 1 || rep.Findings[0].ID != "server.unreachable" {
		t.Fatalf("findings %+v", rep.Findings)
	}
	fix := rep.Findings[0].Fix
	if strings.Count(fix, "call us") != 1 || !strings.Contains(fix, "the servers ") {
		t.Errorf("fix %q", fix)
	}
	for _, p := range ports {
		if !strings.Contains(fix, fmt.Sprintf("localhost:%d", p)) {
			t.Errorf("fix %q does not name port %d", fix, p)
		}
	}
}
