package main

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailsetup/internal/testkit"
)

// servedCert is the certificate a TLS listener serves for a name (SNI).
func servedCert(t *testing.T, addr, name string) []byte {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, &tls.Config{ServerName: name, InsecureSkipVerify: true}) // compared, then verified by openssl
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Raw
}

// waitLogAfter waits (bounded) until the service's log, from byte
// offset from on, contains want.
func waitLogAfter(t *testing.T, s *service, from int, want string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !strings.Contains(s.stderr.String()[from:], want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log within %s:\n%s", want, within, s.stderr.String()[from:])
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestACMERenewalBackoffAndNewDomain: Pebble issues certificates for 40
// days and the service renews 60 days before expiry, so each is due as
// soon as it is old enough (ten times tls.acme.retry_seconds). With the
// names' DNS answering nothing, Pebble's validation fails: each attempt
// is logged with its reason and a growing wait, counted per name, and
// the valid certificate stays in use (the same one served, still
// verifying against Pebble's root). Once DNS answers again the next
// attempt renews it and new connections get the new certificate. Then a
// domain added by SIGHUP gets its autoconfig. name's certificate from
// Pebble, and curl verifies it.
func TestACMERenewalBackoffAndNewDomain(t *testing.T) {
	curlBin := testkit.Tool(t, "curl", "curl")
	ports := freePorts(t)
	resolver, down := switchableDNS(t)
	p := startPebbleWith(t, ports.HTTP, ports.HTTPS, true, resolver, 40*24*time.Hour)
	dir := t.TempDir()
	cfg := acmeConfig(t, dir, p, ports, true)
	conf, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	withRenewal := bytes.Replace(conf, []byte("eab_hmac_key_file = \"eab.key\"\n"), []byte("eab_hmac_key_file = \"eab.key\"\nrenew_before_days = 60\nretry_seconds = 3\n"), 1)
	if err := os.WriteFile(cfg, withRenewal, 0o644); err != nil {
		t.Fatal(err)
	}
	s := startServe(t, "--config", cfg)
	defer s.stop(t)
	waitLog(t, s, "every name has its certificate", 120*time.Second)
	down.Store(true)
	imaps := fmt.Sprintf("127.0.0.1:%d", ports.IMAPS)
	root := p.rootFile(t)
	held := servedCert(t, imaps, "mail.example.test")
	from := len(s.stderr.String())

	// Two failed attempts, 3 s then 6 s apart (plus up to a quarter of jitter).
	waitLogAfter(t, s, from, `name=mail.example.test attempt=2 retry_in=`, 120*time.Second)
	failures := metricLine(t, s, `mailsetup_tls_renewal_failures_total{name="mail.example.test"}`)
	next := metricLine(t, s, `mailsetup_tls_renewal_next_attempt_seconds{name="mail.example.test"}`)
	if !strings.HasSuffix(failures, " 2") || next == "" {
		t.Errorf("metrics after two failures: %q %q", failures, next)
	}
	log := s.stderr.String()[from:]
	if !regexp.MustCompile(`msg="acme: renewal failed, the valid certificate stays in use" component=acme name=mail\.example\.test attempt=1 retry_in=[34]s .*the CA: .*tls-alpn-01: .*http-01: `).MatchString(log) {
		t.Errorf("the failures' lines lack the first wait or the CA's reason:\n%s", log)
	}
	if !bytes.Equal(servedCert(t, imaps, "mail.example.test"), held) {
		t.Fatal("a failed renewal changed the served certificate")
	}
	opensslVerify(t, imaps, "mail.example.test", root)

	// DNS answers again: the next attempt renews.
	from = len(s.stderr.String())
	down.Store(false)
	waitLogAfter(t, s, from, `msg="acme: certificate renewed" component=acme name=mail.example.test`, 60*time.Second)
	if bytes.Equal(servedCert(t, imaps, "mail.example.test"), held) {
		t.Error("the renewed certificate is not served")
	}
	opensslVerify(t, imaps, "mail.example.test", root)
	if l := metricLine(t, s, `mailsetup_tls_renewal_next_attempt_seconds{name="mail.example.test"}`); l != "" {
		t.Errorf("a next attempt is still shown after the renewal: %s", l)
	}

	// A domain added by SIGHUP: its names' certificates from Pebble.
	domain := acmeDomain("example.net", ports)
	if err := os.WriteFile(cfg, append(withRenewal, domain...), 0o644); err != nil {
		t.Fatal(err)
	}
	from = len(s.stderr.String())
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLogAfter(t, s, from, `msg="acme: certificate" component=acme name=autoconfig.example.net`, 60*time.Second)
	url := fmt.Sprintf("https://autoconfig.example.net:%d/mail/config-v1.1.xml?emailaddress=john@example.net", ports.HTTPS)
	body, err := exec.Command(curlBin, "-sS", "--max-time", "20", "--cacert", root,
		"--resolve", fmt.Sprintf("autoconfig.example.net:%d:127.0.0.1", ports.HTTPS), url).CombinedOutput()
	if err != nil || !strings.Contains(string(body), "<domain>example.net</domain>") {
		t.Fatalf("curl %s: %v\n%s", url, err, body)
	}
	if strings.Contains(s.stderr.String()[from:], "config changes that need a restart") {
		t.Errorf("adding a domain asked for a restart:\n%s", s.stderr.String()[from:])
	}
}
