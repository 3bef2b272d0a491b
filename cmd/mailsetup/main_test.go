package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"mailsetup/server"
)

func runCLI(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{nil, {"frobnicate"}, {"serve", "--bogus"}, {"records", "extra"}, {"user"}, {"user", "rename", "x@example.test"}} {
		code, _, stderr := runCLI(t, "", args...)
		if code != exitUsage || !strings.Contains(stderr, "usage:") {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr)
		}
	}
}

func TestNoConfigYet(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "none")
	code, _, stderr := runCLI(t, "", "records", "--data", dir)
	if code != exitError || !strings.Contains(stderr, "pass the --data DIR (or --config FILE) that `mailsetup serve` was started with") {
		t.Errorf("exit %d: %s", code, stderr)
	}
}

func TestUserAndRecordsCommands(t *testing.T) {
	dir := t.TempDir()
	if _, err := server.EnsureDefault(dir, server.DefaultPorts()); err != nil {
		t.Fatal(err)
	}
	d := []string{"--data", dir}
	if code, _, stderr := runCLI(t, "s3cret-pass\n", append([]string{"user", "add"}, append(d, "john@example.test")...)...); code != 0 {
		t.Fatalf("add: %d %s", code, stderr)
	}
	if code, _, stderr := runCLI(t, "s3cret-pass\n", append([]string{"user", "add"}, append(d, "john@example.test")...)...); code != exitError || !strings.Contains(stderr, "already exists") {
		t.Errorf("duplicate add: %d %s", code, stderr)
	}
	if code, _, stderr := runCLI(t, "s3cret-pass\n", append([]string{"user", "add"}, append(d, "john@other.example")...)...); code != exitError || !strings.Contains(stderr, "not configured") {
		t.Errorf("other domain: %d %s", code, stderr)
	}
	if code, _, stderr := runCLI(t, "s3cret-pass\n", append([]string{"user", "add"}, append(d, "john")...)...); code != exitError || !strings.Contains(stderr, `"john"`) {
		t.Errorf("bare local part: %d %s", code, stderr)
	}
	if code, _, stderr := runCLI(t, "", append([]string{"user", "passwd"}, append(d, "john@example.test")...)...); code != exitError || !strings.Contains(stderr, "no password on stdin") {
		t.Errorf("empty stdin: %d %s", code, stderr)
	}
	if code, out, stderr := runCLI(t, "", append([]string{"user", "quota"}, append(d, "john@example.test", "500M")...)...); code != 0 || !strings.Contains(out, "524288000 bytes") {
		t.Errorf("quota: %d %s %s", code, out, stderr)
	}
	if code, _, stderr := runCLI(t, "", append([]string{"user", "quota"}, append(d, "john@example.test", "lots")...)...); code != exitError || !strings.Contains(stderr, `"lots"`) {
		t.Errorf("bad quota: %d %s", code, stderr)
	}
	code, out, _ := runCLI(t, "", append([]string{"user", "list"}, d...)...)
	if code != 0 || !strings.Contains(out, "demo@example.test") || !strings.Contains(out, "john@example.test") {
		t.Errorf("list: %d %s", code, out)
	}
	if code, out, _ := runCLI(t, "", append([]string{"user", "remove"}, append(d, "john@example.test")...)...); code != 0 || !strings.Contains(out, "removed") {
		t.Errorf("remove: %d %s", code, out)
	}
	code, out, _ = runCLI(t, "", append([]string{"records"}, d...)...)
	if code != 0 || !strings.Contains(out, "_submissions._tcp.example.test. 3600 IN SRV 0 0 10465 localhost.") {
		t.Errorf("records: %d %s", code, out)
	}
	if code, out, _ := runCLI(t, "", append([]string{"checkconfig"}, d...)...); code != 0 || !strings.Contains(out, "config OK") {
		t.Errorf("checkconfig: %d %s", code, out)
	}
}

// TestProbeErrorsSayProbeOnce: the probe's errors carry one "mailsetup
// probe:" prefix, exit 3, and a missing config does not tell the user to
// start the service again (it may run from another directory).
func TestProbeErrorsSayProbeOnce(t *testing.T) {
	dir := t.TempDir()
	if _, err := server.EnsureDefault(dir, server.DefaultPorts()); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"probe", "john@exmaple.com", "--data", dir}, "mailsetup probe: exmaple.com: domain not configured\n"},
		{[]string{"probe", "--data", dir}, "mailsetup probe: no EMAIL given\n"},
		{[]string{"probe", server.DemoAddress, "--data", filepath.Join(dir, "elsewhere")},
			"mailsetup probe: no config at " + filepath.Join(dir, "elsewhere", server.ConfigFile) + ": pass the --data DIR (or --config FILE) that `mailsetup serve` was started with"},
	} {
		code, _, stderr := runCLI(t, "", c.args...)
		if code != probeExitUnknown || !strings.HasPrefix(stderr, c.want) || strings.Contains(stderr, "probe: probe:") {
			t.Errorf("%v: exit %d, stderr %q; want 3 and %q first", c.args, code, stderr, c.want)
		}
	}
}
