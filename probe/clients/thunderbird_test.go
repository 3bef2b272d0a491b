package clients_test

import (
	"bufio"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailsetup/autoconfig"
	"mailsetup/internal/testkit"
	"mailsetup/probe/clients"
)

// marionette is a minimal client of Thunderbird's remote protocol
// (length-prefixed JSON: [0, id, command, params] -> [1, id, error, result]).
type marionette struct {
	conn net.Conn
	r    *bufio.Reader
	id   int
}

func dialMarionette(t *testing.T, addr string, deadline time.Time) *marionette {
	t.Helper()
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			m := &marionette{conn: c, r: bufio.NewReader(c)}
			c.SetDeadline(time.Now().Add(60 * time.Second))
			if _, err := m.read(); err != nil {
				t.Fatalf("marionette greeting: %v", err)
			}
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("Thunderbird's marionette port %s never opened: %v", addr, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (m *marionette) read() (json.RawMessage, error) {
	n, err := m.r.ReadString(':')
	if err != nil {
		return nil, err
	}
	size, err := strconv.Atoi(strings.TrimSuffix(n, ":"))
	if err != nil || size > 16<<20 {
		return nil, fmt.Errorf("bad marionette length %q", n)
	}
	buf := make([]byte, size)
	if _, err := io.ReadFull(m.r, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

func (m *marionette) call(t *testing.T, command string, params any) json.RawMessage {
	t.Helper()
	m.id++
	b, _ := json.Marshal([]any{0, m.id, command, params})
	if _, err := fmt.Fprintf(m.conn, "%d:%s", len(b), b); err != nil {
		t.Fatalf("marionette %s: %v", command, err)
	}
	raw, err := m.read()
	if err != nil {
		t.Fatalf("marionette %s: %v", command, err)
	}
	var resp []json.RawMessage
	if err := json.Unmarshal(raw, &resp); err != nil || len(resp) != 4 {
		t.Fatalf("marionette %s: %s", command, raw)
	}
	if string(resp[2]) != "null" {
		t.Fatalf("marionette %s: %s", command, resp[2])
	}
	return resp[3]
}

// discoverScript runs Thunderbird's own account discovery
// (FindConfig.parallelAutoDiscovery, what the account hub calls) and
// returns the configuration it would set up, as JSON.
const discoverScript = `
const done = arguments[arguments.length - 1];
const { FindConfig } = ChromeUtils.importESModule("resource:///modules/accountcreation/FindConfig.sys.mjs");
const [domain, email] = arguments;
const server = s => s && { type: s.type, hostname: s.hostname, port: s.port, socketType: s.socketType, username: s.username };
FindConfig.parallelAutoDiscovery(domain, email, new AbortController().signal, "", "").next().then(
  r => done(JSON.stringify(r.value ? { incoming: server(r.value.incoming), outgoing: server(r.value.outgoing) } : null)),
  e => done(JSON.stringify({ error: String(e) })));
`

type tbServer struct {
	Type, Hostname, Username string
	Port, SocketType         int
}

// endpoint maps Thunderbird's server to ours (nsMsgSocketType: 0 plain,
// 2 alwaysSTARTTLS, 3 SSL).
func (s tbServer) endpoint() autoconfig.Endpoint {
	sec := map[int]autoconfig.Security{0: autoconfig.None, 1: autoconfig.STARTTLS, 2: autoconfig.STARTTLS, 3: autoconfig.TLS}[s.SocketType]
	proto := autoconfig.Protocol(s.Type)
	return autoconfig.Endpoint{Protocol: proto, Host: s.Hostname, Port: s.Port, Security: sec}
}

// TestThunderbirdAgreesWithSimulator runs the real Thunderbird (Debian's
// package, headless, driven over marionette) through its own account
// discovery for domains whose sources conflict, with a loopback DNS
// server as its system resolver (a private mount namespace) and the
// document hosts on the standard ports, and checks that it ends up with
// what the simulator predicts:
//
//   - a.test: the autoconfig host gives the policy, the domain's
//     .well-known an old provider's servers: the autoconfig host wins;
//   - b.test: the same, but the autoconfig host's certificate has
//     expired: Thunderbird skips it without a word and takes the old one;
//   - c.test: HTTPS gives nothing, the autoconfig host over HTTP the old
//     provider's: Thunderbird takes the unencrypted document.
func TestThunderbirdAgreesWithSimulator(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Thunderbird")
	}
	tb := testkit.Tool(t, "thunderbird", "thunderbird")
	certutil := testkit.Tool(t, "certutil", "libnss3-tools")
	unshare := testkit.Tool(t, "unshare", "util-linux")
	if os.Geteuid() != 0 {
		t.Skip("needs root: a private mount namespace gives Thunderbird the test's resolver, and the document hosts need ports 443 and 80")
	}
	ip := fmt.Sprintf("127.%d.%d.%d", 100+rand.IntN(100), 1+rand.IntN(250), 1+rand.IntN(250))
	w := newWorldAt(t, ip, true)
	type scenario struct {
		domain string
		// want is the imap host Thunderbird must take.
		want string
	}
	scenarios := []scenario{{"a.test", "imap.a.test"}, {"b.test", "imap.old-provider.test"}, {"c.test", "imap.old-provider.test"}}
	pols := map[string]autoconfig.Policy{}
	for _, sc := range scenarios {
		p := loopPolicy()
		p.Domain = sc.domain
		p.IMAP = []autoconfig.Endpoint{{Protocol: autoconfig.IMAP, Host: "imap." + sc.domain, Port: 993, Security: autoconfig.TLS}}
		p.POP3 = nil
		p.Submission = []autoconfig.Endpoint{{Protocol: autoconfig.SMTP, Host: "smtp." + sc.domain, Port: 465, Security: autoconfig.TLS}}
		old := p
		old.IMAP = []autoconfig.Endpoint{{Protocol: autoconfig.IMAP, Host: "imap.old-provider.test", Port: 143, Security: autoconfig.STARTTLS}}
		old.Submission = []autoconfig.Endpoint{{Protocol: autoconfig.SMTP, Host: "smtp.old-provider.test", Port: 587, Security: autoconfig.STARTTLS}}
		w.add(t, "autoconfig."+sc.domain+". 300 IN A "+ip, sc.domain+". 300 IN A "+ip)
		w.docs["autoconfig."+sc.domain] = p
		w.docs[sc.domain] = old
		pols[sc.domain] = p
		switch sc.domain {
		case "b.test":
			w.expired["autoconfig.b.test"] = true
		case "c.test":
			w.noHTTPS["autoconfig.c.test"], w.noHTTPS["c.test"] = true, true
			w.docs["autoconfig.c.test"] = old
			w.httpOK["autoconfig.c.test"] = true
		}
	}

	// A profile that trusts the test CA and asks no third party.
	profile := t.TempDir()
	port := 20000 + rand.IntN(9000)
	prefs := fmt.Sprintf(`user_pref("marionette.port", %d);
user_pref("mailnews.auto_config_url", "https://ispdb.invalid/v1.1/");
user_pref("network.trr.mode", 5);
user_pref("app.update.enabled", false);
user_pref("mail.setup.loglevel", "All");
user_pref("browser.dom.window.dump.enabled", true);
user_pref("devtools.console.stdout.chrome", true);
`, port)
	if err := os.WriteFile(filepath.Join(profile, "user.js"), []byte(prefs), 0o600); err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: w.caCert.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"-N", "--empty-password", "-d", "sql:" + profile}, {"-A", "-n", "mailsetup-test", "-t", "C,,", "-i", ca, "-d", "sql:" + profile}} {
		if out, err := exec.Command(certutil, args...).CombinedOutput(); err != nil {
			t.Fatalf("certutil %v: %v\n%s", args, err, out)
		}
	}
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver "+ip+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, unshare, "--mount", "sh", "-c", `mount --bind "$1" /etc/resolv.conf && exec "$2" --headless --marionette -remote-allow-system-access -no-remote -profile "$3"`,
		"sh", resolv, tb, profile)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var log strings.Builder
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Ends the Thunderbird this test started and its child processes
	// (its own process group), nothing else.
	defer func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	}()
	m := dialMarionette(t, fmt.Sprintf("127.0.0.1:%d", port), time.Now().Add(60*time.Second))
	var session struct {
		Capabilities struct {
			BrowserVersion string `json:"browserVersion"`
		} `json:"capabilities"`
	}
	json.Unmarshal(m.call(t, "WebDriver:NewSession", map[string]any{"capabilities": map[string]any{}}), &session)
	t.Logf("Thunderbird %s", session.Capabilities.BrowserVersion)
	m.call(t, "Marionette:SetContext", map[string]string{"value": "chrome"})
	m.call(t, "WebDriver:SetTimeouts", map[string]int{"script": 60000})

	for _, sc := range scenarios {
		address := "john@" + sc.domain
		var res struct {
			Value string `json:"value"`
		}
		json.Unmarshal(m.call(t, "WebDriver:ExecuteAsyncScript", map[string]any{"script": discoverScript, "args": []string{sc.domain, address}}), &res)
		var got struct {
			Incoming, Outgoing *tbServer
			Error              string
		}
		if err := json.Unmarshal([]byte(res.Value), &got); err != nil || got.Incoming == nil || got.Outgoing == nil {
			t.Errorf("%s: Thunderbird found %q (%v)\nlog:\n%s", sc.domain, res.Value, err, log.String())
			continue
		}
		rep, err := clients.Simulate(context.Background(), address, pols[sc.domain], clients.Options{Resolver: ip + ":53", RootCAs: w.roots, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		predicted := view(t, rep, "Thunderbird desktop").Settings
		in, out := got.Incoming.endpoint(), got.Outgoing.endpoint()
		if predicted == nil || predicted.Incoming == nil || predicted.Outgoing == nil {
			t.Errorf("%s: the simulator predicts nothing; Thunderbird took %s and %s", sc.domain, in, out)
			continue
		}
		if *predicted.Incoming != in || *predicted.Outgoing != out || !strings.EqualFold(predicted.Username, got.Incoming.Username) {
			t.Errorf("%s: Thunderbird took %s, %s, user %s; the simulator predicts %s", sc.domain, in, out, got.Incoming.Username, predicted)
		}
		if in.Host != sc.want {
			t.Errorf("%s: Thunderbird took %s, the scenario expects host %s", sc.domain, in, sc.want)
		}
	}
}
