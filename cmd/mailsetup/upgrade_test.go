package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"mailsetup/server"
)

// TestGracefulUpgrade: a new binary is installed over the running one and
// SIGUSR2 starts it with the listening sockets; the old process finishes
// and exits. Clients that connect all along (HTTP requests and POP3
// greetings, one after another, on loopback) are never refused, and the
// new process answers after the old one is gone (the POP3 listener once
// it has the data directory).
func TestGracefulUpgrade(t *testing.T) {
	dir := t.TempDir()
	ports := freePorts(t)
	created, err := server.EnsureDefault(filepath.Join(dir, "data"), ports)
	if err != nil {
		t.Fatal(err)
	}
	installed := filepath.Join(dir, "mailsetup")
	install := func() {
		t.Helper()
		src, err := os.ReadFile(binary)
		if err != nil {
			t.Fatal(err)
		}
		tmp := installed + ".new"
		if err := os.WriteFile(tmp, src, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, installed); err != nil { // as a package manager does
			t.Fatal(err)
		}
	}
	install()
	logPath := filepath.Join(dir, "out.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	old := exec.Command(installed, "serve", "--config", created.ConfigPath)
	old.Stdout, old.Stderr = logFile, logFile // the new process writes here too
	if err := old.Start(); err != nil {
		t.Fatal(err)
	}
	oldDone := make(chan error, 1)
	go func() { oldDone <- old.Wait() }()
	t.Cleanup(func() { _ = old.Process.Kill() })
	readLog := func() string { b, _ := os.ReadFile(logPath); return string(b) }
	waitFor := func(what string, re *regexp.Regexp, d time.Duration) []string {
		t.Helper()
		deadline := time.Now().Add(d)
		for {
			if m := re.FindStringSubmatch(readLog()); m != nil {
				return m
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %s within %s:\n%s", what, d, readLog())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitFor("start-up report", regexp.MustCompile(`(?m)^domain `), 30*time.Second)

	// The clients: one after another, each must be answered.
	var okHTTP, okPOP3, afterOld atomic.Int64
	var oldGone atomic.Bool
	var mu sync.Mutex
	var failures []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	url := fmt.Sprintf("http://127.0.0.1:%d/mail/config-v1.1.xml?emailaddress=demo@example.test", ports.HTTP)
	loop := func(name string, ok *atomic.Int64, try func() error) {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := try(); err != nil {
				mu.Lock()
				failures = append(failures, fmt.Sprintf("%s at %s: %v", name, time.Now().Format("15:04:05.000"), err))
				mu.Unlock()
			} else {
				ok.Add(1)
				if oldGone.Load() {
					afterOld.Add(1)
				}
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	wg.Add(2)
	go loop("http", &okHTTP, func() error {
		resp, err := client.Get(url)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
	go loop("pop3", &okPOP3, func() error {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", ports.POP3), 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(25 * time.Second)) // the wait for the data directory included
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return err
		}
		if !strings.HasPrefix(line, "+OK") {
			return fmt.Errorf("greeting %q", line)
		}
		_, err = c.Write([]byte("QUIT\r\n"))
		return err
	})
	time.Sleep(300 * time.Millisecond)

	install()
	if err := old.Process.Signal(syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	m := waitFor("upgrade log line", regexp.MustCompile(`upgrade: the new process serves on the same sockets; this one stops" new_pid=(\d+)`), 10*time.Second)
	newPID, _ := strconv.Atoi(m[1])
	t.Cleanup(func() {
		// Ends only the process this test's service started.
		_ = syscall.Kill(newPID, syscall.SIGTERM)
		for range 200 {
			if syscall.Kill(newPID, 0) != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		_ = syscall.Kill(newPID, syscall.SIGKILL)
	})
	select {
	case err := <-oldDone:
		if err != nil {
			t.Errorf("the old process exited with %v", err)
		}
	case <-time.After(server.ShutdownGrace + 10*time.Second):
		t.Fatalf("the old process did not exit:\n%s", readLog())
	}
	oldGone.Store(true)
	before := afterOld.Load()
	deadline := time.Now().Add(15 * time.Second)
	for afterOld.Load() < before+20 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(failures) > 0 {
		t.Errorf("%d requests failed across the upgrade, first: %s", len(failures), strings.Join(failures[:min(5, len(failures))], "\n"))
	}
	t.Logf("answered across the upgrade: %d HTTP, %d POP3; %d after the old process exited", okHTTP.Load(), okPOP3.Load(), afterOld.Load())
	if afterOld.Load() < 20 {
		t.Errorf("only %d answers after the old process exited:\n%s", afterOld.Load(), readLog())
	}
	if syscall.Kill(newPID, 0) != nil {
		t.Errorf("the new process %d is not running:\n%s", newPID, readLog())
	}
}
