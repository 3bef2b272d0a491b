//go:build unix

package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// setLogFile points the config's log.file at name (relative to it).
func setLogFile(t *testing.T, config, name string) {
	t.Helper()
	data, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "[log]\n") {
		t.Fatalf("no [log] section in\n%s", data)
	}
	data = []byte(strings.Replace(string(data), "[log]\n", "[log]\nfile = \""+name+"\"\n", 1))
	if err := os.WriteFile(config, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestServeLogSink: log.file naming a FIFO that nothing reads stops
// serve at once with an error that says so (it used to hang in open(2)
// for ever, before any listener bound); a FIFO with a reader gets the
// log; a log file on a full disk loses records, counted in
// mailsetup_log_dropped_total (it stayed 0) and reported once on stderr.
func TestServeLogSink(t *testing.T) {
	m := startMail(t)
	m.stop(t)
	fifo := filepath.Join(m.dir, "log.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	setLogFile(t, m.config, "log.fifo")

	t.Run("no reader", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		start := time.Now()
		out, err := exec.CommandContext(ctx, binary, "serve", "--config", m.config).CombinedOutput()
		if ctx.Err() != nil {
			t.Fatalf("serve still waiting after 30 s:\n%s", out)
		}
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitError {
			t.Fatalf("exit: %v\n%s", err, out)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("took %v to give up", d)
		}
		msg := string(out)
		if !strings.Contains(msg, "log.file") || !strings.Contains(msg, fifo) || !strings.Contains(msg, "FIFO that no process reads") {
			t.Errorf("the error does not name log.file, the path and the cause:\n%s", out)
		}
		if strings.Contains(msg, "mailsetup is serving") {
			t.Errorf("listeners opened:\n%s", out)
		}
	})

	t.Run("reader", func(t *testing.T) {
		r, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		m.service = startServe(t, "--config", m.config)
		defer m.stop(t)
		_ = r.SetReadDeadline(time.Now().Add(30 * time.Second))
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "msg=serving") {
				return
			}
		}
		t.Fatalf("no \"serving\" line in the FIFO: %v", sc.Err())
	})
	t.Run("full disk", func(t *testing.T) {
		if _, err := os.Stat("/dev/full"); err != nil {
			t.Skipf("no /dev/full here: %v", err)
		}
		// Every write to /dev/full fails with ENOSPC, as on a full disk.
		data, _ := os.ReadFile(m.config)
		os.WriteFile(m.config, []byte(strings.Replace(string(data), `file = "log.fifo"`, `file = "/dev/full"`, 1)), 0o600)
		m.service = startServe(t, "--config", m.config)
		defer m.stop(t)
		https := m.urls["https"]
		for range 20 {
			curl(t, https+"/settings/not-an-address") // each logged at info
		}
		metric := regexp.MustCompile(`(?m)^mailsetup_log_dropped_total (\d+)`)
		var dropped int
		for deadline := time.Now().Add(10 * time.Second); dropped < 20 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if mm := metric.FindSubmatch(curl(t, m.urls["admin"]+"/metrics").body); mm != nil {
				dropped, _ = strconv.Atoi(string(mm[1]))
			}
		}
		if dropped < 20 {
			t.Errorf("mailsetup_log_dropped_total = %d after 20 logged requests to a full disk", dropped)
		}
		if n := strings.Count(m.stderr.String(), "log sink: writing failed"); n != 1 || !strings.Contains(m.stderr.String(), "no space left on device") {
			t.Errorf("stderr reports the failure %d times, want once:\n%s", n, m.stderr)
		}
	})
}
