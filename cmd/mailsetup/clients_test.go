package main

import (
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"mailsetup/internal/testkit"
	"mailsetup/probe/clients"
	"mailsetup/server"
)

// clientsDomain is a domain the simulator can check end to end: its web
// names on loopback, POP3 and submission for mpop and msmtp.
func clientsDomain(ip string) string {
	return strings.Replace(paccDomain, "web_url = \"https://autoconfig.pacc.test\"\n",
		"web_url = \"https://autoconfig.pacc.test\"\nweb_addresses = [\""+ip+"\"]\n", 1) + clientsPOP3
}

const clientsPOP3 = `
  [[domain.pop3]]
  host = "mail.pacc.test"
  port = 995
  security = "tls"
`

// TestProbeDomainAndClients runs `probe --domain` and `probe --clients`
// against the running service: its DNS responder as the resolver, its
// web listener as every document host. Then msmtp and mpop --configure
// ask the same DNS server (as the system resolver, in a private mount
// namespace) and must print what the simulator predicted for them.
func TestProbeDomainAndClients(t *testing.T) {
	ports := freePorts(t)
	dir := t.TempDir()
	created, err := server.EnsureDefault(dir, ports)
	if err != nil {
		t.Fatal(err)
	}
	testkit.WriteSelfSigned(t, filepath.Join(dir, "tls", "cert.pem"), filepath.Join(dir, "tls", "key.pem"), time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour),
		"localhost", "autoconfig.pacc.test", "autodiscover.pacc.test", "ua-auto-config.pacc.test", "pacc.test")
	base, err := os.ReadFile(created.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	// The DNS, HTTPS and HTTP listeners on the standard ports of a random
	// loopback address: msmtp and mpop use that DNS as their system
	// resolver, and clients fetch the documents without a port.
	ip := fmt.Sprintf("127.%d.%d.%d", 100+mrand.IntN(100), mrand.IntN(250)+1, mrand.IntN(250)+1)
	dnsAddr := ip + ":53"
	conf := strings.NewReplacer(fmt.Sprintf("dns = \"127.0.0.1:%d\"", ports.DNS), "dns = \""+dnsAddr+"\"",
		fmt.Sprintf("https = \"127.0.0.1:%d\"", ports.HTTPS), "https = \""+ip+":443\"",
		fmt.Sprintf("http = \"127.0.0.1:%d\"", ports.HTTP), "http = \""+ip+":80\"").Replace(string(base)) + clientsDomain(ip)
	if !strings.Contains(conf, dnsAddr) || !strings.Contains(conf, ip+":443") {
		t.Fatalf("could not move the DNS listener:\n%s", conf)
	}
	if err := os.WriteFile(created.ConfigPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	svc := startServe(t, "--config", created.ConfigPath)
	defer svc.stop(t)
	flags := []string{"--config", created.ConfigPath, "--resolver", dnsAddr}

	code, out, stderr := runBinary(t, "", "", append([]string{"probe", "--domain", "pacc.test"}, flags...)...)
	if code != 0 || !strings.Contains(out, "domain pacc.test: OK") || !strings.Contains(out, "PACC: agrees with the policy, byte for byte") ||
		!regexp.MustCompile(`(?m)^  ok +TXT +_ua-auto-config\.pacc\.test\.`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^  ok autoconfig\.pacc\.test https://autoconfig\.pacc\.test/mail/config-v1\.1\.xml`).MatchString(out) {
		t.Errorf("probe --domain: exit %d\n%s%s", code, out, stderr)
	}

	code, out, stderr = runBinary(t, "", "", append([]string{"probe", "john@pacc.test", "--clients", "--json"}, flags...)...)
	var rep clients.ClientsReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 0 {
		t.Fatalf("probe --clients: exit %d, %v\n%s%s", code, err, out, stderr)
	}
	predicted := map[string]*clients.Settings{}
	for _, c := range rep.Clients {
		predicted[strings.Fields(c.Client)[0]] = c.Settings
		if !c.Manual && c.Settings == nil {
			t.Errorf("%s finds nothing: %+v", c.Client, c.Sources)
		}
	}
	if s := predicted["Thunderbird"]; s == nil || s.String() != "incoming IMAP mail.pacc.test port 993 SSL/TLS, outgoing SMTP mail.pacc.test port 465 SSL/TLS, username john@pacc.test" {
		t.Errorf("Thunderbird: %v", s)
	}
	code, out, _ = runBinary(t, "", "", append([]string{"probe", "john@pacc.test", "--clients"}, flags...)...)
	if code != 0 || !strings.Contains(out, "new Outlook and Outlook mobile") || !strings.Contains(out, "cannot be simulated; type by hand: incoming IMAP mail.pacc.test port 993 SSL/TLS") {
		t.Errorf("probe --clients text: exit %d\n%s", code, out)
	}
	// The customer's check page shows the same, on request.
	r := curl(t, "--resolve", "autoconfig.pacc.test:443:"+ip, "https://autoconfig.pacc.test/check/john@pacc.test?clients=1")
	for _, want := range []string{`<div class="client-view" data-client="thunderbird">`, "<h3>Thunderbird desktop</h3>", "Sets up: <span class=\"v\">incoming IMAP mail.pacc.test port 993 SSL/TLS, outgoing SMTP mail.pacc.test port 465 SSL/TLS, username john@pacc.test</span>",
		`data-client="mpop"`, `data-id="clients.local-part-username"`} {
		if r.status != 200 || !strings.Contains(string(r.body), want) {
			t.Errorf("check page ?clients=1: %d, no %q:\n%s", r.status, want, r.body)
			break
		}
	}
	// In German: the same report, its words and findings translated.
	r = curl(t, "-H", "Accept-Language: de", "--resolve", "autoconfig.pacc.test:443:"+ip, "https://autoconfig.pacc.test/check/john@pacc.test?clients=1")
	for _, want := range []string{`<html lang="de"`, "Richtet ein: <span class=\"v\">Posteingang IMAP mail.pacc.test Port 993 SSL/TLS, Postausgang SMTP mail.pacc.test Port 465 SSL/TLS, Benutzername john@pacc.test</span>",
		"<h3>Neues Outlook und Outlook-Apps für Handys</h3>", "Suchreihenfolge mit Stand 2026-12",
		"Dieses E-Mail-Programm trägt als Benutzernamen nur den Teil vor dem @ ein", "(Hinweis)"} {
		if r.status != 200 || !strings.Contains(string(r.body), want) {
			t.Errorf("German check page ?clients=1: %d, no %q:\n%s", r.status, want, r.body)
			break
		}
	}
	if english := englishIn(regexp.MustCompile(`<[^>]*>`).ReplaceAllString(string(r.body), "")); len(english) > 0 {
		t.Errorf("German check page ?clients=1 says in English: %q", english)
	}

	// The real msmtp and mpop, with the service's DNS as the system resolver.
	unshare := testkit.Tool(t, "unshare", "util-linux")
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver "+strings.TrimSuffix(dnsAddr, ":53")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	configure := func(prog, pkg string) string {
		path := testkit.Tool(t, prog, pkg)
		cmd := exec.Command(unshare, "--mount", "sh", "-c", `mount --bind "$1" /etc/resolv.conf && exec "$2" --configure john@pacc.test`, "sh", resolv, path)
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s --configure: %v\n%s", prog, err, b)
		}
		return string(b)
	}
	for _, c := range []struct {
		prog, pkg string
		want      *clients.Settings
	}{
		{"mpop", "mpop", predicted["mpop"]},
		{"msmtp", "msmtp", predicted["msmtp"]},
	} {
		got := configure(c.prog, c.pkg)
		if c.want == nil {
			t.Fatalf("no prediction for %s", c.prog)
		}
		e := c.want.Incoming
		if e == nil {
			e = c.want.Outgoing
		}
		tlsLine := "tls_starttls off"
		if e.Security == "starttls" {
			tlsLine = "tls_starttls on"
		}
		for _, line := range []string{"host " + e.Host, fmt.Sprintf("port %d", e.Port), "tls on", tlsLine, "user " + c.want.Username} {
			if !regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(line) + `\s*$`).MatchString(got) {
				t.Errorf("%s --configure printed no line %q (the simulator's prediction):\n%s", c.prog, line, got)
			}
		}
	}
}
