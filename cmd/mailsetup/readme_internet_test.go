package main

import (
	"context"
	"fmt"
	"net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"mailsetup/server"
)

// runReadmeBlock runs a README block in one shell (sh -e) in dir, with
// /etc/mailsetup and /var/lib/mailsetup replaced by etc and lib and the
// binary under test first on PATH; it returns the output.
func runReadmeBlock(t *testing.T, heading, dir, etc, lib string) string {
	t.Helper()
	paths := strings.NewReplacer("/etc/mailsetup", etc, "/var/lib/mailsetup", lib)
	script := "exec 2>&1\n"
	for _, c := range readmeBlock(t, heading) {
		script += paths.Replace(c) + "\n"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-e", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(binary)+string(os.PathListSeparator)+os.Getenv("PATH"))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("the README's %q block failed: %v\n%s\nscript:\n%s", heading, err, out, script)
	}
	return string(out)
}

// TestReadmeInternetSetup runs the "First setup" block as written.
func TestReadmeInternetSetup(t *testing.T) {
	dir := t.TempDir()
	etc, lib := filepath.Join(dir, "etc", "mailsetup"), filepath.Join(dir, "var", "lib", "mailsetup")
	out := runReadmeBlock(t, "### First setup", dir, etc, lib)
	for _, want := range []string{
		"wrote " + etc + "/mailsetup.toml",
		"config OK: 2 domain(s)",
		"_imaps._tcp.example.net. 3600 IN SRV 0 0 993 mail.example.com.",
		"autoconfig.example.com. 3600 IN CNAME mail.example.com.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(filepath.Join(lib, server.AccountsFile)); err != nil {
		t.Errorf("the account was not stored in the data directory: %v", err)
	}
}

// TestReadmeBackup runs the backup block against a running service with
// mail, moves everything away, runs the restore block and starts the
// restored copy: the same account logs in and a POP3 client sees the same
// messages with the same UIDLs.
func TestReadmeBackup(t *testing.T) {
	dir := t.TempDir()
	etc, lib := filepath.Join(dir, "etc", "mailsetup"), filepath.Join(dir, "var", "lib", "mailsetup")
	ports := freePorts(t)
	created, err := server.EnsureDefault(lib, ports)
	if err != nil {
		t.Fatal(err)
	}
	// The config in /etc, the data in /var/lib, as init writes them.
	conf, err := os.ReadFile(created.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	conf = []byte(strings.NewReplacer(`data_dir = "."`, `data_dir = "`+lib+`"`, `"tls/`, `"`+lib+`/tls/`).Replace(string(conf)))
	if err := os.MkdirAll(etc, 0o750); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(etc, server.ConfigFile)
	if err := os.WriteFile(config, conf, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(created.ConfigPath); err != nil {
		t.Fatal(err)
	}

	s := startServe(t, "--config", config)
	for i := range 3 {
		deliver(t, fmt.Sprintf("127.0.0.1:%d", ports.SMTP), server.DemoAddress, fmt.Sprintf("Subject: backup %d\r\n\r\nmessage %d\r\n", i, i))
	}
	before := uidls(t, fmt.Sprintf("127.0.0.1:%d", ports.POP3S), created.DemoPassword)
	if len(before) != 3 {
		t.Fatalf("UIDL before the backup: %v", before)
	}
	runReadmeBlock(t, "### Backups and restoring", dir, etc, lib) // while it serves
	s.stop(t)
	for _, d := range []string{etc, lib} {
		if err := os.Rename(d, d+".lost"); err != nil {
			t.Fatal(err)
		}
	}

	out := runReadmeBlock(t, "#### Restoring", dir, etc, lib)
	if !strings.Contains(out, "config OK: 1 domain(s)") {
		t.Errorf("restore block:\n%s", out)
	}
	s2 := startServe(t, "--config", config)
	after := uidls(t, fmt.Sprintf("127.0.0.1:%d", ports.POP3S), created.DemoPassword)
	if !slices.Equal(before, after) {
		t.Errorf("UIDL after the restore %v, before %v", after, before)
	}
	s2.stop(t)
}

// deliver sends one message over SMTP (port 25, a local recipient).
func deliver(t *testing.T, addr, to, msg string) {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, step := range []func() error{
		func() error { return c.Hello("sender.example") },
		func() error { return c.Mail("someone@sender.example") },
		func() error { return c.Rcpt(to) },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("From: someone@sender.example\r\nTo: " + to + "\r\n" + msg)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	_ = c.Quit()
}

// uidls logs in to the demo account over POP3S and returns its UIDLs.
func uidls(t *testing.T, addr, password string) []string {
	t.Helper()
	pop, _ := dialLines(t, addr)
	pop.cmd("", "+OK")
	pop.cmd("USER "+server.DemoAddress, "+OK")
	if got := pop.cmd("PASS "+password, "+OK"); !strings.HasPrefix(got, "+OK") {
		t.Fatalf("PASS: %s", got)
	}
	if got := pop.cmd("UIDL", "+OK"); !strings.HasPrefix(got, "+OK") {
		t.Fatalf("UIDL: %s", got)
	}
	var out []string
	for {
		line := pop.cmd("", "")
		if line == "." {
			break
		}
		out = append(out, line)
	}
	pop.cmd("QUIT", "+OK")
	return out
}
