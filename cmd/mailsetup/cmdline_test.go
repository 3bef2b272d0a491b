package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"mailsetup/server"
)

// runBinary runs the real binary in dir (when not empty) with stdin.
func runBinary(t *testing.T, dir, stdin string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(stdin)
	return runCmd(t, cmd)
}

// runCmd runs cmd and returns its exit status, standard output and
// standard error.
func runCmd(t *testing.T, cmd *exec.Cmd) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, out.String(), errb.String()
}

// TestParseArgs: flags before, between and after the positional
// arguments, "--", the flag package's spellings, and the mistakes, each
// named as the README spells flags.
func TestParseArgs(t *testing.T) {
	type result struct {
		data, timeout string
		json          bool
	}
	parse := func(args ...string) (result, []string, error) {
		var r result
		fs := newFlagSet("test")
		fs.StringVar(&r.data, "data", "mailsetup-data", "")
		fs.StringVar(&r.timeout, "timeout", "", "")
		fs.BoolVar(&r.json, "json", false, "")
		pos, err := parseArgs(fs, args)
		return r, pos, err
	}
	for _, c := range []struct {
		args []string
		want result
		pos  []string
	}{
		{[]string{"add", "a@b", "--data", "D"}, result{data: "D"}, []string{"add", "a@b"}},
		{[]string{"--data", "D", "add", "a@b"}, result{data: "D"}, []string{"add", "a@b"}},
		{[]string{"add", "-data=D", "a@b", "--json"}, result{data: "D", json: true}, []string{"add", "a@b"}},
		{[]string{"--json=false", "x", "--timeout", "-5s"}, result{data: "mailsetup-data", timeout: "-5s"}, []string{"x"}},
		{[]string{"x", "--", "--data", "D", "-"}, result{data: "mailsetup-data"}, []string{"x", "--data", "D", "-"}},
		{[]string{"--data", "--", "x", "--json"}, result{data: "--", json: true}, []string{"x"}},
		{[]string{"-", "x"}, result{data: "mailsetup-data"}, []string{"-", "x"}},
	} {
		got, pos, err := parse(c.args...)
		if err != nil || got != c.want || !slices.Equal(pos, c.pos) {
			t.Errorf("%q: %+v %q %v, want %+v %q", c.args, got, pos, err, c.want, c.pos)
		}
	}
	for _, args := range [][]string{{"--help"}, {"x", "-h"}, {"--dta", "D", "-help"}, {"--json=maybe", "--help", "x"}} {
		if _, _, err := parse(args...); !errors.Is(err, errHelp) {
			t.Errorf("%q: %v, want the help", args, err)
		}
	}
	if _, pos, err := parse("x", "--", "--help"); err != nil || !slices.Equal(pos, []string{"x", "--help"}) {
		t.Errorf("--help after --: %q %v", pos, err)
	}
	// A typo of a flag with a value is taken to have one, so that the
	// caller finds its sub-command to name in the error.
	if _, pos, err := parse("--dta", "D", "list"); err == nil || !slices.Equal(pos, []string{"list"}) {
		t.Errorf("--dta D list: %q %v", pos, err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"x", "--dta", "D"}, "unknown flag --dta; did you mean --data?"},
		{[]string{"-jsno"}, "unknown flag --jsno; did you mean --json?"},
		{[]string{"--time", "5s"}, "unknown flag --time; did you mean --timeout?"},
		{[]string{"--verbose"}, "unknown flag --verbose"},
		{[]string{"x", "--data"}, "flag --data needs a value"},
		{[]string{"--json=maybe"}, `invalid value "maybe" for --json: parse error`},
		{[]string{"---data", "D"}, `bad flag syntax "---data"`},
	} {
		if _, _, err := parse(c.args...); err == nil || err.Error() != c.want {
			t.Errorf("%q: %v, want %q", c.args, err, c.want)
		}
	}
}

func TestOneEditApart(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"dta", "data", true}, {"data", "dta", true}, {"datas", "data", true}, {"dara", "data", true},
		{"jsno", "json", true}, {"sjon", "json", true}, {"data", "data", true},
		{"dt", "data", false}, {"config", "data", false}, {"nsoj", "json", false}, {"", "ab", false},
	} {
		if got := server.EditDistance(c.a, c.b) <= 1; got != c.want {
			t.Errorf("EditDistance(%q, %q) <= 1 = %v", c.a, c.b, got)
		}
	}
}

// TestFlagsAnywhere runs the real binary: --data after the address and
// before the action is used (no ./mailsetup-data appears in the working
// directory), --help prints each command's usage and exits 0, and an
// unknown flag is a usage error that names it.
func TestFlagsAnywhere(t *testing.T) {
	work := t.TempDir()
	dir := filepath.Join(t.TempDir(), "data")
	if _, err := server.EnsureDefault(dir, server.DefaultPorts()); err != nil {
		t.Fatal(err)
	}
	if code, out, stderr := runBinary(t, work, "s3cret-pass\n", "user", "add", "john@example.test", "--data", dir); code != 0 || !strings.Contains(out, "john@example.test: password set") {
		t.Fatalf("user add ADDR --data DIR: exit %d\n%s%s", code, out, stderr)
	}
	if _, err := os.Stat(filepath.Join(work, "mailsetup-data")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("user add ADDR --data DIR wrote to ./mailsetup-data (%v)", err)
	}
	code, out, stderr := runBinary(t, work, "", "user", "--data", dir, "list")
	if code != 0 || !strings.Contains(out, "john@example.test\t") || !strings.Contains(out, server.DemoAddress+"\t") {
		t.Errorf("user --data DIR list: exit %d\n%s%s", code, out, stderr)
	}
	if code, out, stderr := runBinary(t, work, "", "user", "quota", "--data="+dir, "john@example.test", "-config", filepath.Join(dir, server.ConfigFile), "2G"); code != 0 || !strings.Contains(out, "2147483648 bytes") {
		t.Errorf("user quota with flags between: exit %d\n%s%s", code, out, stderr)
	}
	if code, out, stderr := runBinary(t, work, "", "records", "--data", dir); code != 0 || !strings.Contains(out, "_imaps._tcp.example.test.") {
		t.Errorf("records --data DIR: exit %d\n%s%s", code, out, stderr)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--help"}, "usage:\n  mailsetup serve"},
		{[]string{"-h"}, "usage:\n  mailsetup serve"},
		{[]string{"serve", "--help"}, "usage: mailsetup serve [--config FILE] [--data DIR]\n"},
		{[]string{"serve", "-h", "--data", dir}, "usage: mailsetup serve"},
		{[]string{"records", "--help"}, "usage: mailsetup records"},
		{[]string{"checkconfig", "-help"}, "usage: mailsetup checkconfig"},
		{[]string{"user", "--help"}, "usage: mailsetup user add|passwd|remove|list"},
		{[]string{"user", "add", "--help"}, "usage: mailsetup user add ADDRESS [--config FILE] [--data DIR]\n"},
		{[]string{"user", "--help", "passwd"}, "usage: mailsetup user passwd ADDRESS"},
		{[]string{"user", "remove", "x@example.test", "--help"}, "usage: mailsetup user remove ADDRESS"},
		{[]string{"user", "list", "--help"}, "usage: mailsetup user list"},
		{[]string{"user", "alias", "--help"}, "usage: mailsetup user alias ADDRESS ALIAS"},
		{[]string{"user", "unalias", "--help"}, "usage: mailsetup user unalias ADDRESS ALIAS"},
		{[]string{"user", "quota", "--help"}, "usage: mailsetup user quota ADDRESS BYTES"},
		{[]string{"staff", "--help"}, "usage: mailsetup staff hash|token NAME"},
		{[]string{"staff", "hash", "--help"}, "usage: mailsetup staff hash NAME\n"},
		{[]string{"staff", "token", "admin", "-h"}, "usage: mailsetup staff token NAME\n"},
		{[]string{"probe", "--help"}, "usage: mailsetup probe EMAIL [flags]"},
		{[]string{"probe", "demo@example.test", "--jsno", "--help"}, "usage: mailsetup probe EMAIL [flags]"},
		{[]string{"expire", "--dry-run", "--help"}, "usage: mailsetup expire"},
		{[]string{"help", "user", "add"}, "usage: mailsetup user add ADDRESS"},
	} {
		code, out, stderr := runBinary(t, work, "pw\n", c.args...)
		if code != 0 || !strings.HasPrefix(out, c.want) || stderr != "" {
			t.Errorf("%q: exit %d, stdout:\n%s\nstderr:\n%s\nwant exit 0 and %q", c.args, code, out, stderr, c.want)
		}
		if strings.Contains(out, "name = ") {
			t.Errorf("%q ran the command:\n%s", c.args, out)
		}
	}

	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"user", "add", "john@example.test", "--dta", dir}, exitUsage,
			"mailsetup user add: unknown flag --dta; did you mean --data?\nusage: mailsetup user add ADDRESS"},
		{[]string{"user", "--dat", dir, "list"}, exitUsage, "mailsetup user list: unknown flag --dat; did you mean --data?\n"},
		{[]string{"serve", "--bogus"}, exitUsage, "mailsetup serve: unknown flag --bogus\nusage: mailsetup serve"},
		{[]string{"records", "--data"}, exitUsage, "mailsetup records: flag --data needs a value\n"},
		{[]string{"expire", "--data", dir, "--dryrun"}, exitUsage, "mailsetup expire: unknown flag --dryrun; did you mean --dry-run?\n"},
		{[]string{"staff", "hash", "--json", "admin"}, exitUsage, "mailsetup staff hash: unknown flag --json\n"},
		{[]string{"user", "rename", "--data", dir}, exitUsage, `mailsetup user: unknown action "rename"`},
		{[]string{"probe", "demo@example.test", "--data", dir, "--jsno"}, probeExitUnknown, "mailsetup probe: unknown flag --jsno; did you mean --json?\nusage: mailsetup probe"},
	} {
		code, out, stderr := runBinary(t, work, "", c.args...)
		if code != c.code || !strings.HasPrefix(stderr, c.want) {
			t.Errorf("%q: exit %d, stdout %q, stderr:\n%s\nwant exit %d and first %q", c.args, code, out, stderr, c.code, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(work, "mailsetup-data")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a command wrote to ./mailsetup-data (%v)", err)
	}
}

// TestStaffHashFlagsAnywhere: `staff hash` takes its NAME wherever the
// help flag is not, and "--" makes "--help" a name (refused as one).
func TestStaffHashFlagsAnywhere(t *testing.T) {
	code, out, stderr := runCLI(t, "s3cret-pass\n", "staff", "hash", "alice")
	if code != 0 || !strings.Contains(out, "name = \"alice\"") {
		t.Errorf("staff hash alice: exit %d\n%s%s", code, out, stderr)
	}
	code, out, stderr = runCLI(t, "s3cret-pass\n", "staff", "hash", "--", "--help")
	if code != exitError || out != "" || !strings.Contains(stderr, `name "--help"`) {
		t.Errorf("staff hash -- --help: exit %d\n%s%s", code, out, stderr)
	}
}
