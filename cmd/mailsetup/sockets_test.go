package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailsetup/internal/testkit"
	"mailsetup/server"
)

// TestSocketActivation: the real systemd-socket-activate binds the
// sockets and hands them to `mailsetup serve` by name (LISTEN_FDS,
// LISTEN_FDNAMES), as systemd's socket units do; the service serves on
// them (binding those ports itself would fail: they are taken), curl and
// openssl reach it there, and a socket whose name is no listen.* key is
// refused at start.
func TestSocketActivation(t *testing.T) {
	activate := testkit.Tool(t, "systemd-socket-activate", "systemd")
	dir := t.TempDir()
	ports := freePorts(t)
	created, err := server.EnsureDefault(dir, ports)
	if err != nil {
		t.Fatal(err)
	}
	addr := func(p int) string { return fmt.Sprintf("127.0.0.1:%d", p) }
	go firstConnection(addr(ports.HTTPS))
	s := startServeUnder(t, []string{activate, "-l", addr(ports.HTTPS), "-l", addr(ports.IMAPS), "-l", addr(ports.Submission),
		"--fdname=https:imaps:submission"}, "--config", created.ConfigPath)
	for _, key := range []string{"https", "imaps", "submission"} {
		// The log is asynchronous: it may follow the start-up report.
		waitLog(t, s, `msg="listening on a socket handed over" listen=`+key, 10*time.Second)
	}
	if r := curl(t, fmt.Sprintf("https://localhost:%d/mail/config-v1.1.xml?emailaddress=demo@example.test", ports.HTTPS)); r.status != 200 {
		t.Errorf("https on the handed-over socket: %d", r.status)
	}
	openssl := testkit.Tool(t, "openssl", "openssl")
	for _, a := range [][]string{{addr(ports.IMAPS)}, {addr(ports.Submission), "-starttls", "smtp"}} {
		cmd := exec.Command(openssl, append([]string{"s_client", "-connect", a[0], "-brief"}, a[1:]...)...)
		cmd.Stdin = strings.NewReader("")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "CONNECTION ESTABLISHED") {
			t.Errorf("openssl s_client %v on the handed-over socket: %v\n%s", a, err, out)
		}
	}
	s.stop(t)

	// A socket named after no listen.* key: refused, naming it.
	go firstConnection(addr(ports.HTTPS))
	other := freePort(t)
	cmd := exec.Command(activate, "-l", addr(ports.HTTPS), "-l", addr(other), "--fdname=https:imapz", binary, "serve", "--config", created.ConfigPath)
	out, _ := runBounded(t, cmd, 30*time.Second)
	if !strings.Contains(string(out), "no listen.* key takes: imapz") {
		t.Errorf("want the unknown socket named:\n%s", out)
	}
}

// firstConnection connects once to addr, where systemd-socket-activate
// starts the service at the first connection (bounded: 10 s).
func firstConnection(addr string) {
	for range 100 {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestPrivilegedPortWithCapability: without systemd, a copy of the binary
// with the file capability CAP_NET_BIND_SERVICE (setcap), run as the
// unprivileged user nobody, binds a port below 1024 (on loopback) and
// serves there; the same binary without the capability is refused with
// the key and the address named. Needs root to set the capability and
// change user; skipped otherwise.
func TestPrivilegedPortWithCapability(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: setcap and running as nobody")
	}
	setcap := testkit.Tool(t, "setcap", "libcap2-bin")
	setpriv := testkit.Tool(t, "setpriv", "util-linux")
	dir, err := os.MkdirTemp("", "mailsetup-cap")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil { // nobody must reach the binary and the data
		t.Fatal(err)
	}
	ports := freePorts(t)
	ports.HTTP = privilegedPort(t)
	data := filepath.Join(dir, "data")
	created, err := server.EnsureDefault(data, ports)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("chown", "-R", "65534:65534", data).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v %s", err, out)
	}
	src, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	plain, capable := filepath.Join(dir, "mailsetup-plain"), filepath.Join(dir, "mailsetup")
	for _, f := range []string{plain, capable} {
		if err := os.WriteFile(f, src, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command(setcap, "cap_net_bind_service=+ep", capable).CombinedOutput(); err != nil {
		t.Fatalf("setcap: %v %s", err, out)
	}
	asNobody := []string{setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"}

	out, err := exec.Command(asNobody[0], append(asNobody[1:], plain, "serve", "--config", created.ConfigPath)...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), fmt.Sprintf("listen.http = \"127.0.0.1:%d\"", ports.HTTP)) || !strings.Contains(string(out), "permission denied") {
		t.Fatalf("without the capability: want a refusal naming listen.http, got %v:\n%s", err, out)
	}

	s := startBinaryUnder(t, capable, asNobody, "--config", created.ConfigPath)
	if r := curl(t, fmt.Sprintf("http://127.0.0.1:%d/mail/config-v1.1.xml?emailaddress=demo@example.test", ports.HTTP)); r.status != 200 {
		t.Errorf("http on port %d: %d", ports.HTTP, r.status)
	}
	s.stop(t)
}

// privilegedPort returns a loopback port below 1024 that was free a
// moment ago.
func privilegedPort(t *testing.T) int {
	t.Helper()
	start := int(nextPort.Add(1)%300) + 700
	for i := range 300 {
		p := 700 + (start-700+i)%300
		if ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p)); err == nil {
			ln.Close()
			return p
		}
	}
	t.Fatal("no free port in 700-999")
	return 0
}
