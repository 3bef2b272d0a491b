package server

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"mailsetup/server/events"
)

// TestLogSourcesApply: a reload's list of sources keeps an unchanged
// source running (the same reader, no line read twice or lost), starts a
// new syslog listener, and stops a removed one: its socket is closed and
// its goroutines end.
func TestLogSourcesApply(t *testing.T) {
	dir := t.TempDir()
	s := &Server{cfg: &Config{dir: dir}, log: slog.New(slog.DiscardHandler), bus: events.NewBus(64)}
	s.live.now = time.Now
	s.live.replace(nil)
	lines := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lines"}, []string{"source", "result"})
	ls := &logSources{s: s, lines: lines, running: map[string]*logSource{}, errs: make(chan error, 4)}
	defer ls.stopAll()
	logFile := filepath.Join(dir, "dovecot.log")
	if err := os.WriteFile(logFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	file := ObserveSource{Name: "file", Kind: "dovecot", File: logFile}
	write := func() {
		f, err := os.OpenFile(logFile, os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(f, "%s imap-login: Info: Login: user=<demo@example.test>, method=PLAIN, rip=127.0.0.1, lip=127.0.0.1, mpid=1, TLS, session=<x>\n", time.Now().Format("Jan 02 15:04:05"))
		f.Close()
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(lines)
	events := func() float64 {
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				if len(m.GetLabel()) == 2 && m.GetLabel()[0].GetValue() == "event" && m.GetLabel()[1].GetValue() == "file" {
					return m.GetCounter().GetValue()
				}
			}
		}
		return 0
	}
	waitCount := func(want float64) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for events() != want {
			if time.Now().After(deadline) {
				t.Fatalf("events read: %v, want %v", events(), want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if _, err := ls.apply([]ObserveSource{file}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // opened at its end
	write()
	waitCount(1)
	reader := ls.running["file"]
	baseline := runtime.NumGoroutine()

	// A syslog listener added; the file source untouched.
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := free.Addr().String()
	free.Close()
	syslog := ObserveSource{Name: "syslog", Kind: "postfix", Syslog: "tcp://" + addr}
	opened, err := ls.apply([]ObserveSource{file, syslog})
	if err != nil || len(opened) != 1 {
		t.Fatalf("apply: %v %v", opened, err)
	}
	if ls.running["file"] != reader {
		t.Fatal("the unchanged file source was restarted")
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("the added syslog listener: %v", err)
	}
	write()
	waitCount(2)

	// The syslog source removed: its connection and socket closed, its
	// goroutines gone.
	if _, err := ls.apply([]ObserveSource{file}); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("the removed source's connection is still open")
	}
	c.Close()
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Error("the removed source's listener still accepts")
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > baseline && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > baseline {
		t.Errorf("goroutines after removing the source: %d, before adding it %d", n, baseline)
	}
	if ls.running["file"] != reader {
		t.Fatal("the unchanged file source was restarted")
	}
}
