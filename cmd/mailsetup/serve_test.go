package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"mailsetup/autoconfig"
	"mailsetup/autoconfig/autodiscover"
	"mailsetup/autoconfig/mobileconfig"
	"mailsetup/autoconfig/mozilla"
	"mailsetup/internal/testkit"
	"mailsetup/server"
)

// binary is the mailsetup binary built once for the tests that run it.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mailsetup-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "mailsetup")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building mailsetup: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freePort returns a loopback port that was free a moment ago.
//
// Ports come from 22000-31999, below the kernel's ephemeral range
// (32768-60999 here): a port picked from that range with :0 can be taken
// as the source port of any outgoing connection before the service binds
// it. Each port is checked free for TCP and UDP (the DNS listener).
func freePort(t *testing.T) int {
	t.Helper()
	for range 2000 {
		p := int(nextPort.Add(1)%10000) + 22000
		tl, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		ul, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p))
		tl.Close()
		if err != nil {
			continue
		}
		ul.Close()
		return p
	}
	t.Fatal("no free port in 22000-31999")
	return 0
}

// freePorts returns a free loopback port for every listener.
func freePorts(t *testing.T) server.Ports {
	t.Helper()
	return server.Ports{HTTP: freePort(t), HTTPS: freePort(t), DNS: freePort(t), Admin: freePort(t),
		SMTP: freePort(t), Submission: freePort(t), Submissions: freePort(t),
		IMAP: freePort(t), IMAPS: freePort(t), POP3: freePort(t), POP3S: freePort(t)}
}

// nextPort walks the port range from a random start, so concurrent test
// processes rarely try the same ports.
var nextPort = func() *atomic.Int64 {
	var n atomic.Int64
	n.Store(rand.Int64N(10000))
	return &n
}()

// service is a running `mailsetup serve`.
type service struct {
	cmd    *exec.Cmd
	stdout *syncBuffer
	stderr *syncBuffer       // the log
	urls   map[string]string // listener name -> URL or address
	done   chan error
}

// startServe runs the binary with args and waits until it printed its
// listeners (readiness, not a sleep).
func startServe(t *testing.T, args ...string) *service {
	t.Helper()
	return startServeUnder(t, nil, args...)
}

// startServeUnder is startServe with the binary run by a wrapper command
// (such as prlimit).
func startServeUnder(t *testing.T, wrapper []string, args ...string) *service {
	t.Helper()
	return startBinaryUnder(t, binary, wrapper, args...)
}

// startBinaryUnder is startServeUnder with another copy of the binary.
func startBinaryUnder(t *testing.T, bin string, wrapper []string, args ...string) *service {
	t.Helper()
	argv := append(append(append([]string(nil), wrapper...), bin, "serve"), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	stderr := &syncBuffer{}
	cmd.Stderr = stderrWriter{stderr}
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &service{cmd: cmd, stdout: &syncBuffer{}, stderr: stderr, urls: map[string]string{}, done: make(chan error, 1)}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		s.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		// Ends only the process this test started; a no-op once it exited.
		_ = cmd.Process.Kill()
	})
	listener := regexp.MustCompile(`^  (http|https|dns|admin|smtp|submission|submissions|imap|imaps|pop3|pop3s) +(\S+)`)
	timeout := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				<-s.done
				t.Fatalf("serve exited early:\n%s%s", s.stdout, stderr)
			}
			s.stdout.WriteString(l + "\n")
			if m := listener.FindStringSubmatch(l); m != nil {
				s.urls[m[1]] = m[2]
			}
			if strings.HasPrefix(l, "domain ") {
				// Listeners are printed before the domains; drain the rest.
				go func() {
					for l := range lines {
						s.stdout.WriteString(l + "\n")
					}
				}()
				return s
			}
		case <-timeout:
			t.Fatalf("serve did not report its listeners:\n%s", s.stdout)
		}
	}
}

// syncBuffer collects the service's output while tests read it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) WriteString(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.b.WriteString(s)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

type stderrWriter struct{ b *syncBuffer }

func (w stderrWriter) Write(p []byte) (int, error) {
	w.b.WriteString(string(p))
	return len(p), nil
}

// stop sends SIGTERM and expects a clean exit.
func (s *service) stop(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("serve exited with %v after SIGTERM", err)
		}
	case <-time.After(server.ShutdownGrace + 5*time.Second):
		t.Error("serve did not stop after SIGTERM")
	}
}

type curlResult struct {
	status      int
	contentType string
	body        []byte
	headers     string
}

// curl runs the real curl program against the service.
func curl(t *testing.T, args ...string) curlResult {
	t.Helper()
	path := testkit.Tool(t, "curl", "curl")
	dir := t.TempDir()
	body, hdr := filepath.Join(dir, "body"), filepath.Join(dir, "headers")
	all := append([]string{"-sS", "--max-time", "20", "-k", "-o", body, "-D", hdr, "-w", "%{http_code} %{content_type}"}, args...)
	out, err := exec.Command(path, all...).Output()
	if err != nil {
		t.Fatalf("curl %v: %v", args, err)
	}
	var r curlResult
	fields := strings.SplitN(string(out), " ", 2)
	fmt.Sscanf(fields[0], "%d", &r.status)
	if len(fields) == 2 {
		r.contentType = fields[1]
	}
	r.body, _ = os.ReadFile(body)
	h, _ := os.ReadFile(hdr)
	r.headers = string(h)
	return r
}

const outlookRequest = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n" +
	"<Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006\">\r\n" +
	"  <Request>\r\n    <EMailAddress>demo@example.test</EMailAddress>\r\n" +
	"    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>\r\n" +
	"  </Request>\r\n</Autodiscover>\r\n"

// TestServeEndToEnd runs the real binary on free loopback ports and
// fetches every endpoint with the real curl, verifies the signed profile
// with openssl and resolves the SRV records with dig.
func TestServeEndToEnd(t *testing.T) {
	dir := t.TempDir()
	ports := server.DefaultPorts()
	ports.HTTP, ports.HTTPS, ports.DNS, ports.Admin = freePort(t), freePort(t), freePort(t), freePort(t)
	created, err := server.EnsureDefault(dir, ports)
	if err != nil {
		t.Fatal(err)
	}
	svc := startServe(t, "--config", created.ConfigPath)
	defer svc.stop(t)
	https, http := svc.urls["https"], svc.urls["http"]
	if https != fmt.Sprintf("https://127.0.0.1:%d", ports.HTTPS) || http != fmt.Sprintf("http://127.0.0.1:%d", ports.HTTP) {
		t.Fatalf("printed listeners %v do not match the config:\n%s", svc.urls, svc.stdout)
	}
	// Every advertised port is printed as listening.
	for name, port := range map[string]int{"smtp": ports.SMTP, "submission": ports.Submission, "submissions": ports.Submissions,
		"imap": ports.IMAP, "imaps": ports.IMAPS, "pop3": ports.POP3, "pop3s": ports.POP3S, "dns": ports.DNS} {
		if got := svc.urls[name]; got != fmt.Sprintf("127.0.0.1:%d", port) {
			t.Errorf("listener %s printed as %q, want 127.0.0.1:%d:\n%s", name, got, port, svc.stdout)
		}
	}
	cfg, err := server.LoadConfig(created.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	policy := cfg.Policies()[0]
	cacert := filepath.Join(dir, server.CertFile)

	t.Run("thunderbird", func(t *testing.T) {
		for _, u := range []string{
			https + "/mail/config-v1.1.xml?emailaddress=demo@example.test",
			https + "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=demo%40example.test",
			http + "/mail/config-v1.1.xml?emailaddress=demo@example.test",
		} {
			r := curl(t, u)
			if r.status != 200 || !strings.HasPrefix(r.contentType, "application/xml") {
				t.Fatalf("%s: %d %s %s", u, r.status, r.contentType, r.body)
			}
			got, err := mozilla.Parse(bytes.NewReader(r.body))
			if err != nil {
				t.Fatal(err)
			}
			if diff := compareEndpoints(policy, got); diff != "" {
				t.Errorf("%s: %s", u, diff)
			}
			if !bytes.Contains(r.body, []byte("<username>demo@example.test</username>")) ||
				!bytes.Contains(r.body, []byte("<daysToLeaveMessagesOnServer>7</daysToLeaveMessagesOnServer>")) {
				t.Errorf("%s: username or POP days missing:\n%s", u, r.body)
			}
		}
		// Without ?emailaddress=, on autoconfig.<domain>: placeholders.
		r := curl(t, "--cacert", cacert, "--resolve", fmt.Sprintf("autoconfig.example.test:%d:127.0.0.1", ports.HTTPS),
			fmt.Sprintf("https://autoconfig.example.test:%d/mail/config-v1.1.xml", ports.HTTPS))
		if r.status != 200 || !bytes.Contains(r.body, []byte("%EMAILADDRESS%")) {
			t.Errorf("placeholder form: %d %s", r.status, r.body)
		}
		for _, c := range []struct {
			query  string
			status int
			text   string
		}{
			{"", 400, "missing emailaddress"},
			{"?emailaddress=john", 400, "emailaddress"},
			{"?emailaddress=john@other.example", 404, "not served here"},
		} {
			r := curl(t, https+"/mail/config-v1.1.xml"+c.query)
			if r.status != c.status || !strings.Contains(string(r.body), c.text) {
				t.Errorf("%q: %d %q, want %d with %q", c.query, r.status, r.body, c.status, c.text)
			}
		}
	})

	t.Run("settings json", func(t *testing.T) {
		r := curl(t, https+"/settings/demo@example.test")
		var got struct {
			Address  string `json:"address"`
			Username string `json:"username"`
			Incoming []struct {
				Protocol, Host, Security string
				Port                     int
			} `json:"incoming"`
			OutgoingAuth bool `json:"outgoing_requires_auth"`
			POP3         struct {
				LeaveOnServer   bool `json:"leave_on_server"`
				DeleteAfterDays int  `json:"delete_after_days"`
			} `json:"pop3"`
		}
		if err := json.Unmarshal(r.body, &got); err != nil || r.status != 200 || !strings.HasPrefix(r.contentType, "application/json") {
			t.Fatalf("%d %s %s (%v)", r.status, r.contentType, r.body, err)
		}
		if got.Username != "demo@example.test" || !got.OutgoingAuth || !got.POP3.LeaveOnServer || got.POP3.DeleteAfterDays != 7 ||
			len(got.Incoming) != 4 || got.Incoming[0].Port != ports.IMAPS || got.Incoming[0].Security != "tls" {
			t.Errorf("settings: %s", r.body)
		}
		for path, status := range map[string]int{"/settings/not-an-address": 400, "/settings/john@other.example": 404} {
			if r := curl(t, https+path); r.status != status || !strings.Contains(string(r.body), `"error"`) {
				t.Errorf("%s: %d %s", path, r.status, r.body)
			}
		}
	})

	t.Run("autodiscover", func(t *testing.T) {
		for _, path := range []string{"/autodiscover/autodiscover.xml", "/Autodiscover/Autodiscover.xml", "/AUTODISCOVER/AUTODISCOVER.XML"} {
			r := curl(t, "-u", "demo@example.test:not-logged", "-H", "Content-Type: text/xml; charset=utf-8", "--data-binary", outlookRequest, https+path)
			if r.status != 200 || !strings.HasPrefix(r.contentType, "text/xml") {
				t.Fatalf("%s: %d %s %s", path, r.status, r.contentType, r.body)
			}
			got, err := autodiscover.ParseResponse(bytes.NewReader(r.body))
			if err != nil {
				t.Fatal(err)
			}
			if diff := compareEndpoints(policy, got); diff != "" {
				t.Errorf("%s: %s", path, diff)
			}
		}
		r := curl(t, https+"/autodiscover/autodiscover.xml")
		if r.status != 405 || !strings.Contains(string(r.body), "<ErrorCode>600</ErrorCode>") || !strings.Contains(r.headers, "Allow: POST") {
			t.Errorf("GET: %d %s", r.status, r.body)
		}
		r = curl(t, "--data-binary", "<Autodiscover><Request>", https+"/autodiscover/autodiscover.xml")
		if r.status != 400 || !strings.Contains(string(r.body), "<ErrorCode>600</ErrorCode>") {
			t.Errorf("malformed: %d %s", r.status, r.body)
		}
		r = curl(t, "--data-binary", strings.Replace(outlookRequest, "example.test", "other.example", 1), https+"/autodiscover/autodiscover.xml")
		if r.status != 404 || !strings.Contains(string(r.body), "<ErrorCode>500</ErrorCode>") {
			t.Errorf("unknown domain: %d %s", r.status, r.body)
		}
	})

	t.Run("autodiscover-v2", func(t *testing.T) {
		for _, u := range []string{
			https + "/autodiscover/autodiscover.json?Email=demo@example.test&Protocol=AutodiscoverV1&RedirectCount=1",
			https + "/Autodiscover/Autodiscover.json/v1.0/demo@example.test?Protocol=Autodiscoverv1",
		} {
			r := curl(t, u)
			var v struct{ Protocol, Url string }
			if r.status != 200 || json.Unmarshal(r.body, &v) != nil || v.Url != policy.Web.BaseURL+"/Autodiscover/Autodiscover.xml" {
				t.Errorf("%s: %d %s", u, r.status, r.body)
			}
		}
		r := curl(t, https+"/autodiscover/autodiscover.json?Email=demo@example.test&Protocol=ActiveSync")
		if r.status != 400 || !strings.Contains(string(r.body), "InvalidProtocol") {
			t.Errorf("ActiveSync: %d %s", r.status, r.body)
		}
	})

	t.Run("apple", func(t *testing.T) {
		r := curl(t, https+"/apple/mail.mobileconfig?email=demo@example.test")
		if r.status != 200 || r.contentType != mobileconfig.ContentType || !strings.Contains(r.headers, "attachment; filename=") {
			t.Fatalf("%d %s\n%s", r.status, r.contentType, r.headers)
		}
		openssl := testkit.Tool(t, "openssl", "openssl")
		signed := filepath.Join(t.TempDir(), "profile.der")
		content := signed + ".plist"
		os.WriteFile(signed, r.body, 0o600)
		out, err := exec.Command(openssl, "cms", "-verify", "-inform", "DER", "-in", signed, "-CAfile", cacert, "-purpose", "any", "-out", content).CombinedOutput()
		if err != nil {
			t.Fatalf("openssl cms -verify: %v\n%s", err, out)
		}
		plist, _ := os.ReadFile(content)
		got, err := mobileconfig.Parse(plist)
		if err != nil {
			t.Fatal(err)
		}
		if got.Prefer != autoconfig.IMAP || len(got.IMAP) != 1 || got.IMAP[0] != policy.IMAP[0] || got.Submission[0] != policy.Submission[0] {
			t.Errorf("profile carries %+v", got)
		}
		if r := curl(t, https+"/apple/mail.mobileconfig?email=x"); r.status != 400 {
			t.Errorf("bad address: %d", r.status)
		}
	})

	t.Run("dns", func(t *testing.T) {
		dig := testkit.Tool(t, "dig", "dnsutils")
		for _, proto := range []string{"+notcp", "+tcp"} {
			out, err := exec.Command(dig, "@127.0.0.1", "-p", fmt.Sprint(ports.DNS), proto, "+short", "+time=5", "SRV", "_imaps._tcp.example.test").Output()
			if err != nil {
				t.Fatalf("dig %s: %v", proto, err)
			}
			if want := fmt.Sprintf("0 0 %d localhost.", ports.IMAPS); strings.TrimSpace(string(out)) != want {
				t.Errorf("dig %s SRV _imaps._tcp = %q, want %q", proto, out, want)
			}
		}
	})

	t.Run("ops", func(t *testing.T) {
		if r := curl(t, https+"/healthz"); r.status != 200 {
			t.Errorf("healthz: %d", r.status)
		}
		r := curl(t, svc.urls["admin"]+"/metrics")
		for _, m := range []string{"mailsetup_http_requests_total", "mailsetup_log_dropped_total", `route="/mail/config-v1.1.xml"`} {
			if !strings.Contains(string(r.body), m) {
				t.Errorf("metrics lack %s", m)
			}
		}
		// The start page asks for the address and lists no served domain.
		if r := curl(t, https+"/"); r.status != 200 || !strings.Contains(string(r.body), "Your email address") || strings.Contains(string(r.body), "example.test") {
			t.Errorf("index: %d\n%s", r.status, r.body)
		}
	})
}

// compareEndpoints compares what a document carries with the policy.
func compareEndpoints(want, got autoconfig.Policy) string {
	eq := func(a, b []autoconfig.Endpoint) bool {
		if len(a) != len(b) {
			return false
		}
		for i := range a {
			if a[i] != b[i] {
				return false
			}
		}
		return true
	}
	if !eq(want.IMAP, got.IMAP) || !eq(want.POP3, got.POP3) || !eq(want.Submission, got.Submission) {
		return fmt.Sprintf("endpoints differ:\nwant %v %v %v\ngot  %v %v %v", want.IMAP, want.POP3, want.Submission, got.IMAP, got.POP3, got.Submission)
	}
	return ""
}

// TestServeEmbeddedDefault is the README's first command: serve with no
// config creates the default, prints the demo password once, and reuses
// everything on the next start.
func TestServeEmbeddedDefault(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	svc := startServe(t, "--data", dir)
	first := svc.stdout.String()
	r := curl(t, svc.urls["https"]+"/mail/config-v1.1.xml?emailaddress=demo@example.test")
	if r.status != 200 {
		t.Errorf("autoconfig on the default: %d", r.status)
	}
	svc.stop(t)
	demo, staff := printedPasswords(t, svc.stdout.String())
	if demo == "" || staff == "" {
		t.Errorf("no demo or staff password printed:\n%s", first)
	}
	// The pages a new user opens first.
	for _, want := range []string{"\n  customers    https://localhost:8443/ ", "\n  help page    https://localhost:8443/help/demo@example.test\n"} {
		if !strings.Contains(svc.stdout.String(), want) {
			t.Errorf("start-up output lacks %q:\n%s", want, svc.stdout)
		}
	}
	for _, f := range []string{server.ConfigFile, server.AccountsFile, server.CertFile, server.KeyFile, server.CredentialsFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	svc = startServe(t, "--data", dir)
	defer svc.stop(t)
	out := svc.stdout.String()
	if demo != "" && strings.Contains(out, demo) || staff != "" && strings.Contains(out, staff) {
		t.Errorf("second start printed a password again:\n%s", out)
	}
	// The credentials file is still there: say so, and how to reset.
	for _, want := range []string{
		filepath.Join(dir, server.CredentialsFile) + " still holds the passwords",
		"mailsetup user passwd --data " + dir + " demo@example.test",
		"mailsetup staff hash admin",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("second start does not say %q:\n%s", want, out)
		}
	}
}

// printedPasswords finds the demo and staff passwords in serve's output
// ("" when not printed).
func printedPasswords(t *testing.T, out string) (demo, staff string) {
	t.Helper()
	if m := regexp.MustCompile(`(?m)^  demo account +demo@example\.test +password (\S+)$`).FindStringSubmatch(out); m != nil {
		demo = m[1]
	}
	if m := regexp.MustCompile(`(?m)^  staff console +admin +password (\S+)$`).FindStringSubmatch(out); m != nil {
		staff = m[1]
	}
	return demo, staff
}

// TestServeRefusesInvalidConfig: the service does not start and names the
// key and value.
func TestServeRefusesInvalidConfig(t *testing.T) {
	dir := t.TempDir()
	created, err := server.EnsureDefault(dir, server.DefaultPorts())
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(created.ConfigPath)
	os.WriteFile(created.ConfigPath, bytes.Replace(data, []byte("delete_after_days = 7"), []byte("delete_after_days = 60"), 1), 0o600)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, binary, "serve", "--config", created.ConfigPath).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitError {
		t.Fatalf("exit: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "pop3_policy.delete_after_days = 60") {
		t.Errorf("error does not name the key and value:\n%s", out)
	}
}
