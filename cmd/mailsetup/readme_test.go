package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"mailsetup/internal/testkit"
	"mailsetup/server"
)

// readmeBlock returns the commands of the first sh code block after the
// heading in the README, one string per command (a here-document stays
// with its command).
func readmeBlock(t *testing.T, heading string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(data), "\n"+heading+"\n")
	if !ok {
		t.Fatalf("the README has no %q", heading)
	}
	_, block, ok := strings.Cut(after, "```sh\n")
	if !ok {
		t.Fatalf("no sh block after %q", heading)
	}
	block, _, _ = strings.Cut(block, "```\n")
	var cmds []string
	lines := strings.Split(strings.TrimSuffix(block, "\n"), "\n")
	heredoc := regexp.MustCompile(`<<-?'?(\w+)'?`)
	for i := 0; i < len(lines); i++ {
		cmd := lines[i]
		if m := heredoc.FindStringSubmatch(cmd); m != nil {
			for i++; i < len(lines); i++ {
				cmd += "\n" + lines[i]
				if lines[i] == m[1] {
					break
				}
			}
		}
		cmds = append(cmds, cmd)
	}
	return cmds
}

// TestReadmeTryIt runs the README's "Try it" block as written, command by
// command in one shell (sh -e: the first failing command stops it),
// against a real serve in a fresh directory. Only the port numbers and the
// go build's module directory differ: the service runs on free ports, and
// go build runs in this repository (go build -C) but writes ./mailsetup in
// the test's directory, as the README's does in the reader's.
func TestReadmeTryIt(t *testing.T) {
	testkit.Tool(t, "curl", "curl")
	testkit.Tool(t, "dig", "dnsutils")
	cmds := readmeBlock(t, "### Try it")
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	ports := freePorts(t)
	created, err := server.EnsureDefault(filepath.Join(work, "mailsetup-data"), ports)
	if err != nil {
		t.Fatal(err)
	}
	svc := startServe(t, "--data", filepath.Join(work, "mailsetup-data"))
	defer svc.stop(t)

	d := server.DefaultPorts()
	renumber := strings.NewReplacer(
		strconv.Itoa(d.HTTPS), strconv.Itoa(ports.HTTPS), strconv.Itoa(d.DNS), strconv.Itoa(ports.DNS),
		strconv.Itoa(d.HTTP), strconv.Itoa(ports.HTTP), strconv.Itoa(d.Admin), strconv.Itoa(ports.Admin))
	const build = "go build -o mailsetup ./cmd/mailsetup"
	script := "exec 2>&1\n"
	built := false
	for i, c := range cmds {
		if strings.Contains(c, "go run") {
			t.Errorf("command %d uses go run (its exit status would be lost): %s", i, c)
		}
		if c == build {
			c, built = fmt.Sprintf("go build -C '%s' -o '%s' ./cmd/mailsetup", root, filepath.Join(work, "mailsetup")), true
		}
		script += fmt.Sprintf("echo '@@ %d'\n%s\n", i, renumber.Replace(c))
	}
	if !built {
		t.Errorf("the block does not build the binary with %q", build)
	}
	script += "echo '@@ end'\n"

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-e", "-c", script)
	cmd.Dir = work
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "MAILSETUP_PROBE_PASSWORD=") && !strings.HasPrefix(e, "DEMO_PASSWORD=") {
			cmd.Env = append(cmd.Env, e)
		}
	}
	raw, err := cmd.Output()
	out := map[int]string{}
	last := -1
	for _, part := range strings.Split("\n"+string(raw), "\n@@ ")[1:] {
		head, body, _ := strings.Cut(part, "\n")
		if head == "end" {
			last = len(cmds)
			break
		}
		n, _ := strconv.Atoi(head)
		out[n], last = body, n
	}
	if err != nil || last != len(cmds) {
		failed := "?"
		if last >= 0 && last < len(cmds) {
			failed = cmds[last]
		}
		t.Fatalf("the README's block stopped (%v) at:\n%s\noutput:\n%s", err, failed, raw)
	}

	// What each command must show, found by what it runs.
	checks := []struct {
		cmd  string
		want []string
	}{
		{"config-v1.1.xml", []string{"<username>" + server.DemoAddress + "</username>", fmt.Sprintf("<port>%d</port>", ports.IMAPS)}},
		{"Autodiscover.xml", []string{"<LoginName>" + server.DemoAddress + "</LoginName>", fmt.Sprintf("<Port>%d</Port>", ports.IMAPS)}},
		{"mail.mobileconfig", nil},
		{"dig ", []string{fmt.Sprintf("0 0 %d localhost.", ports.IMAPS)}},
		{"--password-stdin", []string{server.DemoAddress + ": OK", "login imap", "login smtp", "dns records"}},
		{"exmaple.com", []string{"mailsetup probe: exmaple.com: domain not configured\nexit status 3"}},
		{"--clients", []string{"demo@example.test: what each mail program would set up: INFO",
			fmt.Sprintf("ends up with: incoming IMAP localhost port %d SSL/TLS, outgoing SMTP localhost port %d SSL/TLS, username demo@example.test", ports.IMAPS, ports.Submissions),
			"cannot be simulated; type by hand"}},
		{"--domain example.test", []string{"domain example.test: OK", "Thunderbird autoconfig: agrees with the policy", "Outlook Autodiscover: agrees with the policy"}},
	}
	for _, c := range checks {
		found := false
		for i, cmd := range cmds {
			if !strings.Contains(cmd, c.cmd) {
				continue
			}
			found = true
			for _, w := range c.want {
				if !strings.Contains(out[i], w) {
					t.Errorf("%s\nprinted:\n%s\nwithout %q", cmd, out[i], w)
				}
			}
		}
		if !found {
			t.Errorf("no command in the block runs %q", c.cmd)
		}
	}
	if _, err := os.Stat(filepath.Join(work, "mailsetup")); err != nil {
		t.Errorf("the binary was not built where the README says: %v", err)
	}
	profiles, _ := filepath.Glob(filepath.Join(work, "*.mobileconfig"))
	if len(profiles) != 1 {
		t.Errorf("curl -OJ saved %v, want one .mobileconfig", profiles)
	}
	if strings.Contains(string(raw), created.StaffPassword) || strings.Contains(string(raw), created.DemoPassword) {
		t.Errorf("a password was printed:\n%s", raw)
	}
}
