package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"mailsetup/internal/testkit"
	"mailsetup/server"
)

// PebbleVersion is the ACME test server the tests build from the Go
// module proxy (github.com/letsencrypt/pebble/v2).
const PebbleVersion = "v2.10.3"

// pebbleBinary builds Pebble once per machine into the user's cache.
func pebbleBinary(t *testing.T) string {
	t.Helper()
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "mailsetup-tests", "pebble-"+PebbleVersion)
	bin := filepath.Join(dir, "pebble")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "install", "github.com/letsencrypt/pebble/v2/cmd/pebble@"+PebbleVersion)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building Pebble %s (go install from the module proxy): %v\n%s", PebbleVersion, err, out)
	}
	return bin
}

// loopbackDNS answers every A query with 127.0.0.1 (and AAAA with
// nothing): the resolver Pebble's validation uses (over TCP), as the
// public DNS would point the names at this server.
func loopbackDNS(t *testing.T) string {
	t.Helper()
	addr, _ := switchableDNS(t)
	return addr
}

// switchableDNS is loopbackDNS that answers no address while down is
// set: the CA's validation then fails, as when DNS points elsewhere.
func switchableDNS(t *testing.T) (string, *atomic.Bool) {
	t.Helper()
	down := &atomic.Bool{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Authoritative = true
		for _, q := range r.Question {
			if q.Qtype == dns.TypeA && !down.Load() {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(127, 0, 0, 1)})
			}
		}
		_ = w.WriteMsg(m)
	})
	srv := &dns.Server{Listener: ln, Handler: h}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return ln.Addr().String(), down
}

// pebble is a running Pebble.
type pebble struct {
	dir       string // ACME directory URL
	mgmt      string // management base URL
	tlsCert   string // PEM of Pebble's own HTTPS certificate
	out       *syncBuffer
	eabKID    string
	eabKeyB64 string
	cmd       *exec.Cmd
}

// kill ends this Pebble.
func (p *pebble) kill() {
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
}

// startPebble runs Pebble on loopback. Its validation connects to
// httpPort (HTTP-01) and tlsPort (TLS-ALPN-01) of the address our
// loopbackDNS gives; with eab every account needs the External Account
// Binding (eabKID and the key).
func startPebble(t *testing.T, httpPort, tlsPort int, eab bool) *pebble {
	t.Helper()
	return startPebbleWith(t, httpPort, tlsPort, eab, loopbackDNS(t), 90*24*time.Hour)
}

// startPebbleWith is startPebble with its resolver and the validity of
// the certificates it issues. It never reuses an authorization: every
// order is validated again.
func startPebbleWith(t *testing.T, httpPort, tlsPort int, eab bool, resolver string, validity time.Duration) *pebble {
	t.Helper()
	bin := pebbleBinary(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := server.WriteSelfSigned(certFile, keyFile, []string{"localhost"}, 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	p := &pebble{tlsCert: certFile, out: &syncBuffer{}, eabKID: "mailsetup-test",
		eabKeyB64: base64.RawURLEncoding.EncodeToString([]byte("a MAC key of thirty-two bytes!!!"))}
	listen, mgmt := freePort(t), freePort(t)
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress":                  fmt.Sprintf("127.0.0.1:%d", listen),
		"managementListenAddress":        fmt.Sprintf("127.0.0.1:%d", mgmt),
		"certificate":                    certFile,
		"privateKey":                     keyFile,
		"httpPort":                       httpPort,
		"tlsPort":                        tlsPort,
		"externalAccountBindingRequired": eab,
		"externalAccountMACKeys":         map[string]string{p.eabKID: p.eabKeyB64},
		"keyAlgorithm":                   "ecdsa",
		"retryAfter":                     map[string]int{"authz": 1, "order": 1},
		"profiles":                       map[string]any{"default": map[string]any{"description": "test", "validityPeriod": int(validity.Seconds())}},
	}}
	data, _ := json.Marshal(cfg)
	cfgFile := filepath.Join(dir, "pebble.json")
	if err := os.WriteFile(cfgFile, data, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-config", cfgFile, "-dnsserver", resolver)
	// No sleeping before validations, no deliberately rejected nonces:
	// the real validation still runs (PEBBLE_VA_ALWAYS_VALID is not set).
	cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0")
	cmd.Stdout, cmd.Stderr = stderrWriter{p.out}, stderrWriter{p.out}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.cmd = cmd
	t.Cleanup(func() { _ = cmd.Process.Kill() }) // only the Pebble this test started
	p.dir = fmt.Sprintf("https://127.0.0.1:%d/dir", listen)
	p.mgmt = fmt.Sprintf("https://127.0.0.1:%d", mgmt)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := p.get(t, p.dir); err == nil {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("Pebble did not start:\n%s", p.out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// get fetches a URL of Pebble's, trusting its own certificate.
func (p *pebble) get(t *testing.T, url string) ([]byte, error) {
	t.Helper()
	certs, err := server.ReadCerts(p.tlsCert)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(certs[0])
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 1<<20))
}

// rootFile writes the root Pebble issues under (it changes every start).
func (p *pebble) rootFile(t *testing.T) string {
	t.Helper()
	pemData, err := p.get(t, p.mgmt+"/roots/0")
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "pebble-root.pem")
	if err := os.WriteFile(f, pemData, 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// acmeConfig is a production-shaped config on loopback ports, its
// certificates from Pebble.
func acmeConfig(t *testing.T, dir string, p *pebble, ports server.Ports, http bool) string {
	t.Helper()
	keyFile := filepath.Join(dir, "eab.key")
	if err := os.WriteFile(keyFile, []byte(p.eabKeyB64+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	httpLine := ""
	if http {
		httpLine = fmt.Sprintf("http = \"127.0.0.1:%d\"\n", ports.HTTP)
	}
	cfg := fmt.Sprintf(`hostname = "mail.example.test"
data_dir = "."

[tls.acme]
email = "postmaster@example.test"
directory_url = %q
directory_ca_file = %q
eab_kid = %q
eab_hmac_key_file = "eab.key"

[listen]
admin = "127.0.0.1:%d"
%shttps = "127.0.0.1:%d"
submission = "127.0.0.1:%d"
imaps = "127.0.0.1:%d"
pop3s = "127.0.0.1:%d"
`, p.dir, p.tlsCert, p.eabKID, ports.Admin, httpLine, ports.HTTPS, ports.Submission, ports.IMAPS, ports.POP3S) + acmeDomain("example.test", ports)
	path := filepath.Join(dir, "mailsetup.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// acmeDomain is a [[domain]] served by mail.example.test on the ports.
func acmeDomain(name string, ports server.Ports) string {
	return fmt.Sprintf(`
[[domain]]
name = %q
display_name = "Example Test Mail"
web_url = "https://mail.example.test:%d"

  [[domain.imap]]
  host = "mail.example.test"
  port = %d
  security = "tls"

  [[domain.pop3]]
  host = "mail.example.test"
  port = %d
  security = "tls"

  [[domain.submission]]
  host = "mail.example.test"
  port = %d
  security = "starttls"
`, name, ports.HTTPS, ports.IMAPS, ports.POP3S, ports.Submission)
}

// logWithin waits (bounded) until the service's log contains want.
func logWithin(s *service, want string, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for !strings.Contains(s.stderr.String(), want) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(200 * time.Millisecond)
	}
	return true
}

// waitLog waits (bounded) until the service's log contains want.
func waitLog(t *testing.T, s *service, want string, within time.Duration) {
	t.Helper()
	if !logWithin(s, want, within) {
		t.Fatalf("no %q in the log within %s:\n%s", want, within, s.stderr)
	}
}

// runBounded runs cmd with empty stdin and returns its output; a command
// still running after d is killed and fails the test.
func runBounded(t *testing.T, cmd *exec.Cmd, d time.Duration) ([]byte, error) {
	t.Helper()
	cmd.Stdin = strings.NewReader("")
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
		return out, err
	case <-time.After(d):
		_ = cmd.Process.Kill() // only the process this test started
		<-done
		t.Fatalf("%v did not end within %s:\n%s", cmd.Args, d, out)
		return nil, nil
	}
}

// opensslVerify connects with the real openssl s_client, sending name as
// SNI, and requires the chain to verify against root for that name; name
// "" sends none and expects the hostname's certificate.
func opensslVerify(t *testing.T, addr, name, root string, starttls ...string) string {
	t.Helper()
	openssl := testkit.Tool(t, "openssl", "openssl")
	sni := []string{"-servername", name}
	if name == "" {
		sni, name = []string{"-noservername"}, "mail.example.test"
	}
	args := append(append([]string{"s_client", "-connect", addr, "-CAfile", root,
		"-verify_return_error", "-verify_hostname", name, "-brief"}, sni...), starttls...)
	out, err := runBounded(t, exec.Command(openssl, args...), 20*time.Second)
	if err != nil || !strings.Contains(string(out), "Verification: OK") {
		t.Fatalf("openssl s_client -connect %s -servername %s %v: %v\n%s", addr, name, starttls, err, out)
	}
	return string(out)
}

// TestACMEWithPebble: the real binary gets its certificates from a real
// ACME server (Pebble, with External Account Binding required), once
// over TLS-ALPN-01 (no plain HTTP listener) and once over HTTP-01
// (Pebble's TLS-ALPN-01 port pointed at nothing); then curl and openssl
// s_client verify them against Pebble's root on HTTPS, IMAPS, POP3S and
// SMTP STARTTLS, each name by SNI.
func TestACMEWithPebble(t *testing.T) {
	curlBin := testkit.Tool(t, "curl", "curl")
	for _, tc := range []struct {
		name string
		http bool
	}{
		{"tls-alpn-01", false},
		{"http-01", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ports := freePorts(t)
			tlsPort := ports.HTTPS
			if tc.http {
				tlsPort = freePort(t) // nothing listens: TLS-ALPN-01 fails, HTTP-01 follows
			}
			p := startPebble(t, ports.HTTP, tlsPort, true)
			dir := t.TempDir()
			cfg := acmeConfig(t, dir, p, ports, tc.http)
			s := startServe(t, "--config", cfg)
			if !logWithin(s, "every name has its certificate", 120*time.Second) {
				o, _ := exec.Command("sh", "-c", fmt.Sprintf("openssl s_client -connect 127.0.0.1:%d -servername mail.example.test -alpn acme-tls/1 </dev/null 2>&1 | head -20", ports.HTTPS)).CombinedOutput()
				t.Fatalf("no certificates within 2 minutes:\n%s\n%s\n%s", s.stderr, o, p.out)
			}
			// Only one challenge could succeed in each case; Pebble logs
			// every HTTP-01 fetch.
			if httpTried := strings.Contains(p.out.String(), "Attempting to validate w/ HTTP"); httpTried != tc.http {
				t.Errorf("HTTP-01 validations seen: %v, want %v:\n%s", httpTried, tc.http, p.out)
			}
			root := p.rootFile(t)

			// HTTPS with the real curl, verified (no -k), by name.
			url := fmt.Sprintf("https://autoconfig.example.test:%d/mail/config-v1.1.xml?emailaddress=john@example.test", ports.HTTPS)
			out, err := exec.Command(curlBin, "-sS", "--max-time", "20", "--cacert", root,
				"--resolve", fmt.Sprintf("autoconfig.example.test:%d:127.0.0.1", ports.HTTPS), "-o", "/dev/null", "-w", "%{http_code}", url).CombinedOutput()
			if err != nil || string(out) != "200" {
				t.Fatalf("curl %s: %v %s", url, err, out)
			}
			opensslVerify(t, fmt.Sprintf("127.0.0.1:%d", ports.IMAPS), "mail.example.test", root)
			opensslVerify(t, fmt.Sprintf("127.0.0.1:%d", ports.POP3S), "mail.example.test", root)
			opensslVerify(t, fmt.Sprintf("127.0.0.1:%d", ports.Submission), "mail.example.test", root, "-starttls", "smtp")
			// Each name gets its own certificate by SNI on a mail port too.
			opensslVerify(t, fmt.Sprintf("127.0.0.1:%d", ports.IMAPS), "autodiscover.example.test", root)
			// A client that sends no name gets the hostname's.
			opensslVerify(t, fmt.Sprintf("127.0.0.1:%d", ports.IMAPS), "", root)
			// The earliest expiry is a metric (Pebble: 90 days from now).
			m := curl(t, s.urls["admin"]+"/metrics")
			var expiry float64
			for _, l := range strings.Split(string(m.body), "\n") {
				if v, ok := strings.CutPrefix(l, "mailsetup_tls_certificate_expiry_seconds "); ok {
					fmt.Sscanf(v, "%g", &expiry)
				}
			}
			if left := time.Until(time.Unix(int64(expiry), 0)); left < 80*24*time.Hour || left > 91*24*time.Hour {
				t.Errorf("mailsetup_tls_certificate_expiry_seconds = %g: %s from now, want about 90 days", expiry, left)
			}
			// The certificates are stored under the data directory.
			if _, err := os.Stat(filepath.Join(dir, "acme", "mail.example.test")); err != nil {
				t.Errorf("no certificate stored under the data directory: %v", err)
			}
			s.stop(t)

			// A restart serves the stored certificates without asking the
			// CA: Pebble is gone.
			p.kill()
			s2 := startServe(t, "--config", cfg)
			waitLog(t, s2, "every name has its certificate", 30*time.Second)
			opensslVerify(t, fmt.Sprintf("127.0.0.1:%d", ports.IMAPS), "mail.example.test", root)
			s2.stop(t)
		})
	}
}

// TestInitConfigOnTheInternet: the config `mailsetup init` writes, served
// as systemd would serve it: systemd-socket-activate binds every
// listener it names (on loopback, standing in for the standard ports)
// and hands them over by name; the certificates come from Pebble (the
// in-house CA of --acme-directory and --acme-ca-file), and curl and
// openssl verify them on HTTPS, IMAPS, POP3S and SMTP STARTTLS.
func TestInitConfigOnTheInternet(t *testing.T) {
	activate := testkit.Tool(t, "systemd-socket-activate", "systemd")
	curlBin := testkit.Tool(t, "curl", "curl")
	ports := freePorts(t)
	p := startPebble(t, ports.HTTP, ports.HTTPS, false)
	dir := t.TempDir()
	config := filepath.Join(dir, "etc", "mailsetup.toml")
	code, out, errOut := runCLI(t, "", "init", "--hostname", "mail.example.test", "--domain", "example.test",
		"--acme-directory", p.dir, "--acme-ca-file", p.tlsCert, "--config", config, "--data", filepath.Join(dir, "var"))
	if code != 0 {
		t.Fatalf("init: %d\n%s%s", code, out, errOut)
	}
	addr := func(p int) string { return fmt.Sprintf("127.0.0.1:%d", p) }
	sockets := []struct {
		name string
		port int
	}{{"http", ports.HTTP}, {"https", ports.HTTPS}, {"admin", ports.Admin}, {"smtp", ports.SMTP}, {"submission", ports.Submission},
		{"submissions", ports.Submissions}, {"imap", ports.IMAP}, {"imaps", ports.IMAPS}, {"pop3", ports.POP3}, {"pop3s", ports.POP3S}}
	wrapper := []string{activate}
	var names []string
	for _, s := range sockets {
		wrapper = append(wrapper, "-l", addr(s.port))
		names = append(names, s.name)
	}
	wrapper = append(wrapper, "--fdname="+strings.Join(names, ":"))
	go firstConnection(addr(ports.HTTPS))
	s := startServeUnder(t, wrapper, "--config", config)
	if !logWithin(s, "every name has its certificate", 120*time.Second) {
		t.Fatalf("no certificates within 2 minutes:\n%s", s.stderr)
	}
	root := p.rootFile(t)
	url := fmt.Sprintf("https://autoconfig.example.test:%d/mail/config-v1.1.xml?emailaddress=john@example.test", ports.HTTPS)
	body, err := exec.Command(curlBin, "-sS", "--max-time", "20", "--cacert", root,
		"--resolve", fmt.Sprintf("autoconfig.example.test:%d:127.0.0.1", ports.HTTPS), url).CombinedOutput()
	if err != nil || !strings.Contains(string(body), "<hostname>mail.example.test</hostname>") || !strings.Contains(string(body), "<port>993</port>") {
		t.Fatalf("curl %s: %v\n%s", url, err, body)
	}
	opensslVerify(t, addr(ports.IMAPS), "mail.example.test", root)
	opensslVerify(t, addr(ports.POP3S), "mail.example.test", root)
	opensslVerify(t, addr(ports.Submission), "mail.example.test", root, "-starttls", "smtp")
	opensslVerify(t, addr(ports.IMAP), "mail.example.test", root, "-starttls", "imap")
	s.stop(t)
}
