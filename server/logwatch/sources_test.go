package logwatch

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"mailsetup/server/events"
)

// collect is a sink and a counter.
type collect struct {
	mu     sync.Mutex
	evs    []events.Event
	counts map[Result]int
}

func (c *collect) Emit(e events.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.evs = append(c.evs, e)
}

func (c *collect) count(_ string, r Result) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil {
		c.counts = map[Result]int{}
	}
	c.counts[r]++
}

func (c *collect) users() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, e := range c.evs {
		out = append(out, e.Username)
	}
	return out
}

func (c *collect) get(r Result) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[r]
}

// waitUsers waits until the events' usernames are want.
func (c *collect) waitUsers(t *testing.T, want ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := strings.Join(c.users(), " ")
		if got == strings.Join(want, " ") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("events of %q, want %q", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func newTestWatcher(c *collect) *Watcher {
	return New(Options{Name: "test", Kind: Dovecot, Sink: c, Count: c.count,
		Parser: ParserOptions{IsLocal: func(d string) bool { return d == "example.test" }, Location: time.UTC}})
}

func login(user string) string {
	return time.Now().UTC().Format("Jan _2 15:04:05") + " pop3-login: Info: Login: user=<" + user +
		">, method=PLAIN, rip=192.0.2.7, lip=192.0.2.1, mpid=1, TLS, session=<s" + user + ">\n"
}

func appendTo(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

func TestFileRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "dovecot.log")
	appendTo(t, path, login("before@example.test")) // history: not replayed
	c := &collect{}
	w := newTestWatcher(c)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.File(ctx, path, 10*time.Millisecond) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	time.Sleep(50 * time.Millisecond)
	appendTo(t, path, login("a@example.test"))
	c.waitUsers(t, "a@example.test")

	// logrotate's rename: the old file gets a last line after the
	// rename (the daemon has not reopened yet), then a new file.
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	appendTo(t, path+".1", login("b@example.test"))
	time.Sleep(50 * time.Millisecond)
	appendTo(t, path, login("c@example.test"))
	c.waitUsers(t, "a@example.test", "b@example.test", "c@example.test")

	// copytruncate.
	data, _ := os.ReadFile(path)
	if err := os.WriteFile(path+".2", data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	appendTo(t, path, login("d@example.test"))
	c.waitUsers(t, "a@example.test", "b@example.test", "c@example.test", "d@example.test")

	// Removed, then replaced; bad lines in between are counted.
	os.Remove(path)
	time.Sleep(50 * time.Millisecond)
	appendTo(t, path, "binary \x00\x01\nnot a line of dovecot\n"+strings.Repeat("y", 3*MaxLine)+"\n"+login("e@example.test"))
	c.waitUsers(t, "a@example.test", "b@example.test", "c@example.test", "d@example.test", "e@example.test")
	if c.get(ResultBinary) != 1 || c.get(ResultBadTime) != 1 || c.get(ResultTooLong) != 1 {
		t.Errorf("counts %v", c.counts)
	}
}

func TestSyslogListeners(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "log.sock")
	for _, listen := range []string{"udp://127.0.0.1:0", "tcp://127.0.0.1:0", "unix://" + sock, "unix-stream://" + sock + "s"} {
		t.Run(strings.Split(listen, ":")[0], func(t *testing.T) {
			network, _, err := ParseListen(listen)
			if err != nil {
				t.Fatal(err)
			}
			c, l := serveSyslog(t, listen)
			conn, err := net.Dial(network, l.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			now := time.Now().UTC()
			msgs := []string{
				// RFC 3164 as syslog(3) sends it (no host).
				"<22>" + now.Format("Jan _2 15:04:05") + " dovecot: pop3-login: Login: user=<a@example.test>, method=PLAIN, rip=192.0.2.7, lip=192.0.2.1, TLS, session=<x1>",
				// RFC 5424 with structured data.
				"<22>1 " + now.Format(time.RFC3339Nano) + ` mail dovecot 77 - [meta x="a]b"] imap-login: Login: user=<b@example.test>, method=PLAIN, rip=192.0.2.7, lip=192.0.2.1, TLS, session=<x2>`,
				"<22>1 " + now.Format(time.RFC3339) + " mail dovecot - - - \ufeffimap-login: Login: user=<c@example.test>, method=PLAIN, rip=192.0.2.7, lip=192.0.2.1, session=<x3>",
				"<999999>garbage",
			}
			for i, m := range msgs {
				var frame string
				switch {
				case network == "udp" || network == "unixgram":
					frame = m
				case i%2 == 0:
					frame = fmt.Sprintf("%d %s", len(m), m) // octet counting
				default:
					frame = m + "\n"
				}
				if _, err := conn.Write([]byte(frame)); err != nil {
					t.Fatal(err)
				}
			}
			c.waitUsers(t, "a@example.test", "b@example.test", "c@example.test")
		})
	}
}

func TestParseListenRefusesNonLoopback(t *testing.T) {
	for _, s := range []string{"udp://0.0.0.0:514", "tcp://192.0.2.1:514", "http://127.0.0.1:1", "udp://localhost:514"} {
		if _, _, err := ParseListen(s); err == nil {
			t.Errorf("%s accepted", s)
		}
	}
}

// TestSyslogStreamLimits: over TCP a line over MaxLine is counted and
// skipped, the next line still read; an octet count over MaxLine ends
// the connection (its framing is lost), counted.
func TestSyslogStreamLimits(t *testing.T) {
	c, l := serveSyslog(t, "tcp://127.0.0.1:0")
	conn, err := net.Dial("tcp", l.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	now := time.Now().UTC().Format("Jan _2 15:04:05")
	fmt.Fprintf(conn, "<22>%s dovecot: %s\n", now, strings.Repeat("z", 2*MaxLine))
	fmt.Fprintf(conn, "<22>%s dovecot: pop3-login: Login: user=<a@example.test>, method=PLAIN, rip=192.0.2.7, lip=192.0.2.1, session=<q>\n", now)
	fmt.Fprintf(conn, "%d <22>", MaxLine+1)
	c.waitUsers(t, "a@example.test")
	for deadline := time.Now().Add(5 * time.Second); c.get(ResultTooLong) != 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("counts %v", c.counts)
		}
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err == nil {
		t.Error("the connection stays open after an octet count over the limit")
	}
}

// serveSyslog runs a syslog listener on listen until the test ends.
func serveSyslog(t *testing.T, listen string) (*collect, *Listener) {
	t.Helper()
	l, err := Listen(listen)
	if err != nil {
		t.Fatal(err)
	}
	c := &collect{}
	w := newTestWatcher(c)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return c, l
}
