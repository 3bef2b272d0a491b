package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailsetup/autoconfig"
	"mailsetup/autoconfig/mozilla"
	"mailsetup/finding"
	"mailsetup/probe"
	"mailsetup/server"
)

// runProbe runs the real binary's probe against m with the demo password
// on stdin (when password is not empty) and the JSON report.
func runProbe(t *testing.T, m *mailService, password string, args ...string) (int, *probe.Report, string) {
	t.Helper()
	all := append([]string{"probe", server.DemoAddress, "--config", m.config, "--json"}, args...)
	if password != "" {
		all = append(all, "--password-stdin")
	}
	code, stdout, stderr := runBinary(t, "", password+"\n", all...)
	if password != "" && strings.Contains(stdout+stderr, password) {
		t.Fatalf("the password appears in the probe's output")
	}
	var rep probe.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("probe %v: exit %d, JSON: %v\nstdout:\n%s\nstderr:\n%s", args, code, err, stdout, stderr)
	}
	return code, &rep, stdout
}

func findingIDs(r *probe.Report) []string {
	var ids []string
	for _, f := range r.Findings {
		ids = append(ids, f.ID)
	}
	return ids
}

// TestProbeEndToEnd runs `mailsetup probe` against the real service: the
// correct settings pass; each wrong setting gives exactly its finding; a
// wrong password gives login.failed; the SRV records served by the
// embedded DNS are all present.
func TestProbeEndToEnd(t *testing.T) {
	m := startMail(t)
	defer m.stop(t)
	p := m.ports
	good := []string{"--in-proto", "imap", "--in-host", "localhost", "--in-port", fmt.Sprint(p.IMAPS), "--in-security", "ssl",
		"--in-user", server.DemoAddress, "--out-host", "localhost", "--out-port", fmt.Sprint(p.Submission), "--out-security", "starttls",
		"--out-auth", "--out-user", server.DemoAddress}
	goodPOP := []string{"--in-proto", "pop3", "--in-host", "localhost", "--in-port", fmt.Sprint(p.POP3S), "--in-security", "ssl",
		"--in-user", server.DemoAddress, "--leave-on-server", "--delete-after", "7", "--out-host", "localhost", "--out-port", fmt.Sprint(p.Submissions),
		"--out-security", "ssl", "--out-auth"}
	resolver := []string{"--resolver", fmt.Sprintf("127.0.0.1:%d", p.DNS)}

	code, rep, out := runProbe(t, m, m.password, slices.Concat(good, resolver)...)
	if code != 0 || rep.Worst > finding.Info || !slices.Equal(findingIDs(rep), []string{"settings.ok"}) {
		t.Fatalf("correct settings: exit %d, findings %v\n%s", code, findingIDs(rep), out)
	}
	for _, want := range []string{"login imap", "login pop3", "login smtp", "dns records", "autoconfig document", "autodiscover document"} {
		if !slices.ContainsFunc(rep.Steps, func(s probe.Step) bool { return strings.HasPrefix(s.Name, want) && s.Error == "" }) {
			t.Errorf("no clean step %q:\n%s", want, out)
		}
	}
	if !strings.Contains(out, "_imaps._tcp.example.test. SRV: 0 0 ") {
		t.Errorf("SRV evidence missing:\n%s", out)
	}
	code, rep, out = runProbe(t, m, m.password, goodPOP...)
	if code != 0 || !slices.Equal(findingIDs(rep), []string{"settings.ok"}) {
		t.Fatalf("correct POP3 settings: exit %d, findings %v\n%s", code, findingIDs(rep), out)
	}

	// set replaces one flag's value in a copy of base.
	set := func(base []string, flagValues ...string) []string {
		out := slices.Clone(base)
		for i := 0; i < len(flagValues); i += 2 {
			if j := slices.Index(out, flagValues[i]); j >= 0 && j+1 < len(out) && !strings.HasPrefix(out[j+1], "--") {
				out[j+1] = flagValues[i+1]
			} else if j >= 0 {
				out[j] = flagValues[i] + "=" + flagValues[i+1]
			} else {
				out = append(out, flagValues[i], flagValues[i+1])
			}
		}
		return out
	}
	for _, c := range []struct {
		name string
		args []string
		id   string
		code int
	}{
		{"bare local part", set(good, "--in-user", "demo"), "username.not-full-address", 2},
		{"user/domain", set(good, "--in-user", "demo/example.test"), "username.not-full-address", 2},
		{"outgoing auth off", set(good, "--out-auth", "false"), "smtp.auth-disabled", 2},
		{"465 with STARTTLS", set(good, "--out-port", fmt.Sprint(p.Submissions), "--out-security", "starttls"), "port.security-mismatch", 2},
		{"leave on server forever", set(goodPOP, "--delete-after", "0"), "pop3.leave-forever", 2},
		{"delete after 30 days", set(goodPOP, "--delete-after", "30"), "pop3.delete-after-too-long", 2},
	} {
		code, rep, out := runProbe(t, m, "", c.args...)
		if code != c.code || !slices.Equal(findingIDs(rep), []string{c.id}) {
			t.Errorf("%s: exit %d, findings %v, want %d [%s]\n%s", c.name, code, findingIDs(rep), c.code, c.id, out)
		}
	}

	// A port set to the wrong mode: the probe finds out live which mode
	// the server speaks there, both ways round.
	for _, c := range []struct {
		args []string
		want string
	}{
		{set(good, "--out-port", fmt.Sprint(p.Submissions), "--out-security", "starttls"), fmt.Sprintf("localhost:%d stays silent and answers a TLS handshake: it speaks SSL/TLS", p.Submissions)},
		{set(good, "--in-port", fmt.Sprint(p.IMAP), "--in-security", "ssl"), fmt.Sprintf("localhost:%d sends a plaintext greeting", p.IMAP)},
	} {
		_, rep, out := runProbe(t, m, "", c.args...)
		if !slices.ContainsFunc(rep.Steps, func(s probe.Step) bool {
			return strings.HasPrefix(s.Name, "connection security of") && slices.ContainsFunc(s.Evidence, func(e string) bool { return strings.Contains(e, c.want) })
		}) || !slices.Equal(findingIDs(rep), []string{"port.security-mismatch"}) {
			t.Errorf("mode check: want step evidence %q, findings [port.security-mismatch]; got %v\n%s", c.want, findingIDs(rep), out)
		}
	}

	// The STARTTLS/STLS logins.
	for _, args := range [][]string{
		set(good, "--in-port", fmt.Sprint(p.IMAP), "--in-security", "starttls"),
		set(goodPOP, "--in-port", fmt.Sprint(p.POP3), "--in-security", "starttls", "--out-port", fmt.Sprint(p.Submission), "--out-security", "starttls"),
	} {
		code, rep, out := runProbe(t, m, m.password, args...)
		if code != 0 || !slices.Equal(findingIDs(rep), []string{"settings.ok"}) ||
			slices.ContainsFunc(rep.Steps, func(s probe.Step) bool { return s.Error != "" }) ||
			!strings.Contains(out, fmt.Sprintf("login %s localhost:%s starttls", args[1], args[5])) {
			t.Errorf("%v: exit %d, findings %v\n%s", args, code, findingIDs(rep), out)
		}
	}

	// With the password, the server's own refusal of the reported form
	// is evidence of the same finding.
	code, rep, out = runProbe(t, m, m.password, set(good, "--in-user", "demo/example.test")...)
	if code != 2 || !slices.Equal(findingIDs(rep), []string{"username.not-full-address"}) ||
		!slices.ContainsFunc(rep.Findings[0].Evidence, func(e string) bool { return strings.Contains(e, "the server refuses \"demo/example.test\"") }) {
		t.Errorf("user/domain with password: exit %d, findings %v\n%s", code, findingIDs(rep), out)
	}

	code, rep, out = runProbe(t, m, "wrong-password", good...)
	if code != 2 || !slices.Equal(findingIDs(rep), []string{"login.failed", "settings.ok"}) {
		t.Errorf("wrong password: exit %d, findings %v\n%s", code, findingIDs(rep), out)
	}
	if n := strings.Count(out, `"skipped: the password was refused`); n != 2 {
		t.Errorf("wrong password: %d logins skipped, want 2\n%s", n, out)
	}
}

// benchService runs `mailsetup serve` for a benchmark (startServe wants a
// *testing.T).
func benchService(b *testing.B) (*server.Config, string, server.Ports) {
	b.Helper()
	port := func() int {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().(*net.TCPAddr).Port
	}
	ports := server.Ports{HTTP: port(), HTTPS: port(), DNS: port(), Admin: port(), SMTP: port(), Submission: port(), Submissions: port(),
		IMAP: port(), IMAPS: port(), POP3: port(), POP3S: port()}
	created, err := server.EnsureDefault(b.TempDir(), ports)
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(binary, "serve", "--config", created.ConfigPath)
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	sc := bufio.NewScanner(pipe)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "domain ") {
			break
		}
	}
	go io.Copy(io.Discard, pipe)
	cfg, err := server.LoadConfig(created.ConfigPath)
	if err != nil {
		b.Fatal(err)
	}
	return cfg, created.DemoPassword, ports
}

// BenchmarkProbe is a full probe with the password (every connection,
// TLS, the three logins, DNS through the embedded responder, the
// autoconfig document) against the embedded server. It reports the
// median and 99th percentile wall time and the mean time of each step.
func BenchmarkProbe(b *testing.B) {
	cfg, password, ports := benchService(b)
	roots, err := server.ProbeRoots(cfg)
	if err != nil {
		b.Fatal(err)
	}
	policies := cfg.Policies()
	opts := probe.Options{
		Policy:   func(string) (autoconfig.Policy, bool) { return policies[0], true },
		Resolver: fmt.Sprintf("127.0.0.1:%d", ports.DNS),
		RootCAs:  roots,
	}
	req := probe.Request{Address: server.DemoAddress, Password: password}
	var walls []time.Duration
	steps := map[string]time.Duration{}
	portName := regexp.MustCompile(`:\d+`)
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		rep, err := probe.Run(context.Background(), req, opts)
		walls = append(walls, time.Since(start))
		if err != nil {
			b.Fatal(err)
		}
		if rep.Worst > finding.Info {
			b.Fatalf("findings %v", findingIDs(rep))
		}
		for _, s := range rep.Steps {
			steps[portName.ReplaceAllString(s.Name, "")] += s.Duration
		}
	}
	b.StopTimer()
	slices.Sort(walls)
	pct := func(p float64) time.Duration { return walls[min(len(walls)-1, int(p*float64(len(walls))))] }
	b.ReportMetric(float64(pct(0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(pct(0.99).Microseconds())/1000, "p99-ms")
	// Per-step means as metrics: "connect imap localhost tls" ->
	// connect-imap-tls-ms.
	for _, n := range slices.Sorted(maps.Keys(steps)) {
		f := strings.Fields(n)
		if len(f) == 4 {
			f = []string{f[0], f[1], f[3]}
		}
		mean := steps[n] / time.Duration(len(walls))
		b.ReportMetric(float64(mean.Microseconds())/1000, strings.Join(f, "-")+"-ms")
	}
}

// TestProbeCommandLine: settings from a JSON file, the exit status 3 for
// a probe that cannot run, --help.
func TestProbeCommandLine(t *testing.T) {
	m := startMail(t)
	defer m.stop(t)
	settings := fmt.Sprintf(`{"incoming": {"protocol": "pop3", "host": "localhost", "port": %d, "security": "ssl",
		"username": "demo", "leave_on_server": true, "delete_after_days": 7},
		"outgoing": {"host": "localhost", "port": %d, "security": "ssl", "auth": true}}`, m.ports.POP3S, m.ports.Submissions)
	file := filepath.Join(t.TempDir(), "settings.json")
	if err := os.WriteFile(file, []byte(settings), 0o600); err != nil {
		t.Fatal(err)
	}
	code, rep, out := runProbe(t, m, "", "--settings", file)
	if code != 2 || !slices.Equal(findingIDs(rep), []string{"username.not-full-address"}) || rep.Client == nil || rep.Client.Incoming.Port != m.ports.POP3S {
		t.Errorf("--settings: exit %d, findings %v\n%s", code, findingIDs(rep), out)
	}
	// A flag overrides the file.
	code, rep, out = runProbe(t, m, "", "--settings", file, "--in-user", server.DemoAddress)
	if code != 0 || !slices.Equal(findingIDs(rep), []string{"settings.ok"}) {
		t.Errorf("--settings with --in-user: exit %d, findings %v\n%s", code, findingIDs(rep), out)
	}
	for _, args := range [][]string{
		{"probe", "nobody@unknown.test", "--config", m.config},
		{"probe", "not-an-address", "--config", m.config},
		{"probe", "--config", m.config},
		{"probe", server.DemoAddress, "--config", m.config, "--in-port", "x"},
		{"probe", server.DemoAddress, "--config", m.config, "--password-stdin"},
	} {
		cmd := exec.Command(binary, args...)
		cmd.Stdin = strings.NewReader("")
		res, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
			t.Errorf("%v: %v, want exit 3\n%s", args, err, res)
		}
	}
	// The password from the environment.
	cmd := exec.Command(binary, "probe", server.DemoAddress, "--config", m.config)
	cmd.Env = append(os.Environ(), "MAILSETUP_PROBE_PASSWORD="+m.password)
	res, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(res), "login imap") || strings.Contains(string(res), m.password) {
		t.Errorf("MAILSETUP_PROBE_PASSWORD: %v\n%s", err, res)
	}
	res, err = exec.Command(binary, "probe", "--help").CombinedOutput()
	if err != nil || !strings.Contains(string(res), "Exit status: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN") {
		t.Errorf("--help: %v\n%s", err, res)
	}
	// Text output names the finding and the fix.
	cmd = exec.Command(binary, "probe", server.DemoAddress, "--config", m.config, "--in-user", "demo", "--out-auth=false")
	res, _ = cmd.CombinedOutput()
	for _, want := range []string{"CRITICAL", "[username.not-full-address]", "[smtp.auth-disabled]", "My outgoing server (SMTP) requires authentication"} {
		if !strings.Contains(string(res), want) {
			t.Errorf("text output lacks %q:\n%s", want, res)
		}
	}
}

// TestProbeDetectsPublishedMismatch: when what is published (DNS, the
// Thunderbird document) differs from the policy the probe expects, it
// says so: the probe runs in-process with a policy whose submission
// order and POP3 days differ from the served config.
func TestProbeDetectsPublishedMismatch(t *testing.T) {
	m := startMail(t)
	defer m.stop(t)
	cfg, err := server.LoadConfig(m.config)
	if err != nil {
		t.Fatal(err)
	}
	roots, err := server.ProbeRoots(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pol := cfg.Policies()[0]
	pol.Submission = []autoconfig.Endpoint{pol.Submission[1], pol.Submission[0]}
	pol.POP.DeleteAfterDays = 3
	rep, err := probe.Run(context.Background(), probe.Request{Address: server.DemoAddress}, probe.Options{
		Policy:   func(string) (autoconfig.Policy, bool) { return pol, true },
		Resolver: fmt.Sprintf("127.0.0.1:%d", m.ports.DNS),
		RootCAs:  roots,
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := findingIDs(rep); !slices.Equal(got, []string{"autoconfig.mismatch", "dns.srv-missing"}) || probe.ExitCode(rep) != 2 {
		var b strings.Builder
		probe.WriteText(&b, rep)
		t.Errorf("findings %v\n%s", got, b.String())
	}
	// The live Autodiscover answer is compared too.
	if !slices.ContainsFunc(rep.Steps, func(s probe.Step) bool {
		return s.Name == "autodiscover document" && slices.ContainsFunc(s.Evidence, func(e string) bool { return strings.HasPrefix(e, "Autodiscover: smtp servers") })
	}) {
		var b strings.Builder
		probe.WriteText(&b, rep)
		t.Errorf("no Autodiscover mismatch step:\n%s", b.String())
	}
}

// TestProbeDiscoverFlag: with --discover, a domain without a policy is
// probed against the Thunderbird document served for it (here pointing
// at the running service); without, it is an unknown domain.
func TestProbeDiscoverFlag(t *testing.T) {
	m := startMail(t)
	defer m.stop(t)
	cfg, err := server.LoadConfig(m.config)
	if err != nil {
		t.Fatal(err)
	}
	pol := cfg.Policies()[0]
	pol.Domain = "elsewhere.test"

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "autoconfig.elsewhere.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true, DNSNames: []string{"autoconfig.elsewhere.test"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/mail/config-v1.1.xml" {
			http.NotFound(w, r)
			return
		}
		mozilla.Render(w, pol, r.URL.Query().Get("emailaddress"))
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	srv.StartTLS()
	defer srv.Close()
	tune := func(o *probe.Options) {
		o.Resolve = func(string) (string, bool) { return "127.0.0.1", true }
		o.HTTPSPort = srv.Listener.Addr().(*net.TCPAddr).Port
		o.StepTimeout = 5 * time.Second
	}

	args := []string{"john@elsewhere.test", "--config", m.config, "--json", "--ca", caFile}
	var out bytes.Buffer
	if _, err := probeMain(context.Background(), args, strings.NewReader(""), &out, tune); !errors.Is(err, probe.ErrUnknownDomain) {
		t.Errorf("without --discover: %v, want ErrUnknownDomain", err)
	}
	code, err := probeMain(context.Background(), append(args, "--discover"), strings.NewReader(""), &out, tune)
	if err != nil {
		t.Fatal(err)
	}
	var rep probe.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	connects := 0
	for _, s := range rep.Steps {
		if strings.HasPrefix(s.Name, "connect ") {
			connects++
		}
	}
	if rep.Source != "autoconfig" || code != 0 || connects != len(pol.IMAP)+len(pol.POP3)+len(pol.Submission) {
		t.Errorf("--discover: exit %d, source %q, %d connect steps, findings %v\n%s", code, rep.Source, connects, findingIDs(&rep), out.String())
	}
}
