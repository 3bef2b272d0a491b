package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailsetup/internal/testkit"
)

// TestReloadQueueRouting: the queue's remote servers change on SIGHUP
// for the deliveries that start after it, while one under way finishes
// with its own. A message is on its way to the MX (a real Postfix,
// answering DATA after a second) when a reload sends everything to a
// smarthost on a closed port: that message still arrives, the next one
// waits in the queue; a second reload names the Postfix's submission
// port as smarthost (STARTTLS verified, AUTH PLAIN), and the waiting
// message goes through it.
func TestReloadQueueRouting(t *testing.T) {
	mx := testkit.StartPostfixMX(t, testkit.PostfixOptions{Users: []string{"bob"}, SlowData: true,
		SASLUsers: map[string]string{"relay@remote.test": "relay-secret"}})
	pwfile := filepath.Join(t.TempDir(), "smarthost.password")
	if err := os.WriteFile(pwfile, []byte("relay-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m := startOutbound(t, mx, "")
	defer m.stop(t)
	base, err := os.ReadFile(m.config)
	if err != nil {
		t.Fatal(err)
	}
	reload := func(queueKeys string, n int) {
		t.Helper()
		conf := strings.Replace(string(base), "\n[queue]\n", "\n[queue]\n"+queueKeys, 1)
		if err := os.WriteFile(m.config, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := m.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "the reload", func() bool {
			return strings.Count(m.stderr.String(), "config reloaded: connection, login and check limits applied") == n
		})
		if strings.Contains(m.stderr.String(), "config changes that need a restart") || strings.Contains(m.stderr.String(), "the queue's routing stays") {
			t.Fatalf("the queue's routing should apply:\n%s", m.stderr)
		}
	}
	sub := fmt.Sprintf("127.0.0.1:%d", m.ports.Submission)
	connects := strings.Count(mx.Log(), "connect from") // the start's probes
	if err := submitTo(sub, m.password, "under way", "bob@remote.test"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the delivery under way at the MX", func() bool { return strings.Count(mx.Log(), "connect from") > connects })
	closed := freePort(t)
	reload(fmt.Sprintf("smarthost = \"127.0.0.1:%d\"\n", closed), 1)
	if n := len(mx.Messages("bob")); n != 0 {
		t.Fatalf("the first message arrived before the reload (%d): the test did not reload during a delivery", n)
	}
	waitFor(t, 20*time.Second, "the message under way, finished with the old route", func() bool { return len(mx.Messages("bob")) == 1 })
	if err := submitTo(sub, m.password, "after reload", "bob@remote.test"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second) // attempts every second, at the closed port
	if n, q := len(mx.Messages("bob")), queuedFiles(t, m); n != 1 || q != 1 {
		t.Fatalf("with the smarthost on a closed port: %d at the MX, %d queued; want 1 and 1", n, q)
	}
	reload(fmt.Sprintf("smarthost = \"127.0.0.1:%d\"\nsmarthost_username = \"relay@remote.test\"\nsmarthost_password_file = %q\nsmarthost_ca_file = %q\n",
		mx.SubmissionPort, pwfile, mx.CertFile), 2)
	waitFor(t, 20*time.Second, "the waiting message through the new smarthost", func() bool { return len(mx.Messages("bob")) == 2 })
	if log := mx.Log(); !strings.Contains(log, "sasl_username=relay@remote.test") {
		t.Errorf("the second message did not come through the smarthost's AUTH:\n%s", log)
	}
	if got := strings.Join(mx.Messages("bob"), "\n"); !strings.Contains(got, "Subject: crash under way") || !strings.Contains(got, "Subject: crash after reload") {
		t.Errorf("the messages at the MX:\n%s", got)
	}
}
