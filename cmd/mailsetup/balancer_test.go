package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailsetup/internal/testkit"
	"mailsetup/server"
)

// listenAs is a config with its [listen] addresses moved from the
// ports from to the ports to (the replicas' configs differ only there).
func listenAs(t *testing.T, config string, from, to server.Ports) string {
	t.Helper()
	head, listen, ok := strings.Cut(config, "\n[listen]\n")
	if !ok {
		t.Fatalf("no [listen] in the config:\n%s", config)
	}
	listen, tail, _ := strings.Cut(listen, "\n[")
	pairs := [][2]int{{from.HTTP, to.HTTP}, {from.HTTPS, to.HTTPS}, {from.DNS, to.DNS}, {from.Admin, to.Admin},
		{from.SMTP, to.SMTP}, {from.Submission, to.Submission}, {from.Submissions, to.Submissions},
		{from.IMAP, to.IMAP}, {from.IMAPS, to.IMAPS}, {from.POP3, to.POP3}, {from.POP3S, to.POP3S}}
	for _, p := range pairs {
		listen = strings.Replace(listen, fmt.Sprintf("127.0.0.1:%d\"", p[0]), fmt.Sprintf("127.0.0.1:%d\"", p[1]), 1)
	}
	return head + "\n[listen]\n" + listen + "\n[" + tail
}

// haproxyFromReadme runs the README's "Behind a load balancer" block
// with the replicas' and the balancer's loopback addresses in place of
// the example's: it writes HAProxy's config (checked with haproxy -c)
// and adds [load_balancer] to A's config (checked with mailsetup
// checkconfig). It returns the config's path and the balancer's ports.
func haproxyFromReadme(t *testing.T, a, b *mailService) (cfg string, httpPort, httpsPort int) {
	t.Helper()
	testkit.Tool(t, "haproxy", "haproxy")
	script := strings.Join(readmeBlock(t, "### Behind a load balancer"), "\n")
	httpPort, httpsPort = freePort(t), freePort(t)
	replace := []string{
		"bind :80\n", fmt.Sprintf("bind 127.0.0.1:%d\n", httpPort),
		"bind :443\n", fmt.Sprintf("bind 127.0.0.1:%d\n", httpsPort),
		"10.0.0.11:80 check\n", fmt.Sprintf("127.0.0.1:%d check\n", a.ports.HTTP),
		"10.0.0.12:80 check\n", fmt.Sprintf("127.0.0.1:%d check\n", b.ports.HTTP),
		"10.0.0.11:443 check port 80\n", fmt.Sprintf("127.0.0.1:%d check port %d\n", a.ports.HTTPS, a.ports.HTTP),
		"10.0.0.12:443 check port 80\n", fmt.Sprintf("127.0.0.1:%d check port %d\n", b.ports.HTTPS, b.ports.HTTP),
		`proxy_protocol_from = ["10.0.0.10"]`, `proxy_protocol_from = ["127.0.0.1"]`,
	}
	for i := 0; i < len(replace); i += 2 {
		if strings.Count(script, replace[i]) != 1 {
			t.Fatalf("the README's HAProxy block no longer has one %q:\n%s", replace[i], script)
		}
	}
	script = strings.NewReplacer(replace...).Replace(script)
	dir := t.TempDir()
	for name, target := range map[string]string{"mailsetup-data": a.dir, "mailsetup": binary} {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-e", "-c", script)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the README's HAProxy block failed: %v\n%s", err, out)
	}
	return filepath.Join(dir, "haproxy.cfg"), httpPort, httpsPort
}

// startHAProxy runs HAProxy on cfg in the foreground and stops it (by
// its PID) when the test ends.
func startHAProxy(t *testing.T, cfg string, httpsPort int) {
	t.Helper()
	haproxy := testkit.Tool(t, "haproxy", "haproxy")
	var logs syncBuffer
	proxy := exec.Command(haproxy, "-db", "-f", cfg)
	proxy.Stdout, proxy.Stderr = stderrWriter{&logs}, stderrWriter{&logs}
	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { proxy.Wait(); close(done) }()
	t.Cleanup(func() {
		proxy.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			proxy.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("HAProxy's log:\n%s", logs.String())
		}
	})
	waitFor(t, 10*time.Second, "HAProxy listening", func() bool {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", httpsPort), time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// TestReplicasBehindHAProxy runs the README's deployment: HAProxy, from
// the README's block, in front of two replicas of the real binary on one
// private PostgreSQL (the demo account moved in with db import). Through
// the balancer with curl: autoconfig over HTTP and HTTPS, a staff
// sign-in whose form and post go to different replicas and whose session
// works on both (each replica's access log shows it served the console),
// a self-help check. Replica A killed by its PID: every request goes on
// succeeding, through B. PostgreSQL stopped: /healthz through the
// balancer says degraded, and B stays in (autoconfig still answers).
func TestReplicasBehindHAProxy(t *testing.T) {
	testkit.Tool(t, "curl", "curl")
	pg := testkit.StartPostgres(t)
	// One self-help check per client address and hour: the balancer
	// must not make all customers one.
	access := func(t *testing.T, m *mailService, config string) string {
		return strings.Replace(config, "access = false", "access = true", 1) + "\n[self_help]\nchecks_per_ip_per_hour = 1\n" + databaseSection(pg)
	}
	a := prepareMail(t, access)
	b := prepareMail(t, access)
	haproxyCfg, httpPort, httpsPort := haproxyFromReadme(t, a, b)
	aText, err := os.ReadFile(a.config)
	if err != nil {
		t.Fatal(err)
	}
	// The same config on both, but for [listen]; the domain's mail
	// servers are A's machine (its loopback address here, not
	// "localhost", which would be each replica itself).
	one := strings.ReplaceAll(string(aText), `host = "localhost"`, `host = "127.0.0.1"`)
	if one == string(aText) {
		t.Fatal(`the generated config has no host = "localhost"`)
	}
	if err := os.WriteFile(a.config, []byte(one), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(b.config, []byte(listenAs(t, one, a.ports, b.ports)), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, stderr := runCLI(t, "", "db", "import", "--config", a.config); code != 0 || !strings.Contains(out, "accounts: 1 copied") {
		t.Fatalf("db import: %d %s %s", code, out, stderr)
	}
	a.service = startServe(t, "--config", a.config)
	b.service = startServe(t, "--config", b.config)
	startHAProxy(t, haproxyCfg, httpsPort)
	lbHTTP, lbHTTPS := fmt.Sprintf("http://127.0.0.1:%d", httpPort), fmt.Sprintf("https://127.0.0.1:%d", httpsPort)

	autoconfig := "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=" + server.DemoAddress
	checkAll := func(what, jar string) {
		t.Helper()
		// Twice each: round robin gives both replicas a turn.
		for range 2 {
			for _, base := range []string{lbHTTP, lbHTTPS} {
				if r := curl(t, base+autoconfig); r.status != http.StatusOK || !bytes.Contains(r.body, []byte("<clientConfig")) {
					t.Fatalf("%s: autoconfig through %s: %d\n%s", what, base, r.status, r.body)
				}
			}
			if r := curlStaff(t, jar, lbHTTPS+"/staff/"); r.status != http.StatusOK || !bytes.Contains(r.body, []byte("Find an account")) {
				t.Fatalf("%s: the console through the balancer: %d\n%s", what, r.status, r.headers)
			}
			if r := curl(t, lbHTTPS+"/help/"+server.DemoAddress); r.status != http.StatusOK {
				t.Fatalf("%s: the self-help page through the balancer: %d", what, r.status)
			}
		}
	}

	// A staff sign-in through the balancer: the form from one replica,
	// the post to the other (one connection each, round robin).
	// The staff member's own address (127.0.0.2; HAProxy's is
	// 127.0.0.1) reaches the replicas and the audit log.
	jar := signInStaff(t, lbHTTPS, a.staffPassword, "--interface", "127.0.0.2")
	checkAll("both replicas up", jar)
	waitFor(t, 5*time.Second, "the sign-in from 127.0.0.2 in the audit log", func() bool {
		r := curlStaff(t, jar, lbHTTPS+"/staff/audit")
		return bytes.Contains(r.body, []byte("<td>sign-in</td><td></td><td>127.0.0.2</td>"))
	})
	for _, m := range []*mailService{a, b} {
		if !strings.Contains(m.stderr.String(), "path=/staff/") {
			t.Errorf("replica on %d served no console page: round robin did not reach it\n%s", m.ports.HTTPS, m.stderr)
		}
	}
	// Self-help checks through the balancer, one per client address:
	// two customers both get theirs, the first one's second is refused
	// (on whichever replica).
	check := "/check/" + server.DemoAddress + "?clients=1"
	for _, from := range []string{"127.0.0.2", "127.0.0.3"} {
		if r := curl(t, "--interface", from, lbHTTPS+check); r.status != http.StatusOK {
			t.Fatalf("self-help check from %s through the balancer: %d\n%s", from, r.status, r.body)
		}
	}
	time.Sleep(2500 * time.Millisecond) // the other replica's poll of the feed
	for range 2 {
		if r := curl(t, "--interface", "127.0.0.2", lbHTTPS+check); r.status != http.StatusTooManyRequests {
			t.Fatalf("a second self-help check from 127.0.0.2 within the hour: %d", r.status)
		}
	}

	// Replica A killed: the balancer retries on B until its health
	// check takes A out; no request fails.
	if err := a.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-a.done
	checkAll("A killed", jar)
	time.Sleep(5 * time.Second) // A marked down by the health check
	checkAll("A out", jar)

	// PostgreSQL stopped: B answers degraded (200), stays in.
	pg.Stop()
	waitFor(t, 15*time.Second, "/healthz degraded through the balancer", func() bool {
		r := curl(t, lbHTTP+"/healthz")
		return r.status == http.StatusOK && bytes.HasPrefix(r.body, []byte("degraded: database unreachable"))
	})
	time.Sleep(5 * time.Second) // two health checks
	for _, base := range []string{lbHTTP, lbHTTPS} {
		if r := curl(t, base+autoconfig); r.status != http.StatusOK {
			t.Fatalf("autoconfig through %s with the database down: %d (HAProxy took B out?)", base, r.status)
		}
	}
	pg.Start()
	b.stop(t)
}
