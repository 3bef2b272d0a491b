package testkit

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestTools checks every real program the tests drive, before they run:
// .ci/run runs it first with RequireEnv set, so a missing program or one
// that cannot do TLS stops CI with the reason and the packages to install.
// Without RequireEnv a missing program is skipped, a broken one fails.
func TestTools(t *testing.T) {
	names := make([]string, 0, len(Capabilities))
	for name := range Capabilities {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			Tool(t, name, Capabilities[name].Package)
		})
	}
}

// recorder is a testing.TB that records Fatalf and Skip instead of
// stopping the test.
type recorder struct {
	testing.TB
	fatal, skip string
}

func (r *recorder) Fatalf(format string, args ...any) { r.fatal = fmt.Sprintf(format, args...) }
func (r *recorder) Skip(args ...any)                  { r.skip = fmt.Sprint(args...) }

// fakeProgram writes an executable shell script named name that prints
// output, and puts its directory first on PATH for the test.
func fakeProgram(t *testing.T, name, output string) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, name)
	script := "#!/bin/sh\ncat <<'EOF'\n" + output + "\nEOF\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return path
}

// TestToolWithoutTLSFails: a program that is installed but lacks TLS
// fails the test that wants it (even without RequireEnv), naming what is
// missing and what to install; a missing program is skipped.
func TestToolWithoutTLSFails(t *testing.T) {
	t.Setenv(RequireEnv, "")
	// swaks as Debian installs it with --no-install-recommends.
	broken := "=== Basic AUTH supported\n*** TLS not available: requires Net::SSLeay"
	path := fakeProgram(t, "swaks-without-tls", broken)
	Capabilities["swaks-without-tls"] = Capabilities["swaks"]
	defer delete(Capabilities, "swaks-without-tls")

	err := Capabilities["swaks"].Check(path)
	if err == nil || !strings.Contains(err.Error(), "TLS (STARTTLS") || strings.Contains(err.Error(), "AUTH PLAIN") ||
		!strings.Contains(err.Error(), "libnet-ssleay-perl") || !strings.Contains(err.Error(), "requires Net::SSLeay") {
		t.Errorf("Check = %v, want TLS named missing (not AUTH), the packages and the program's output", err)
	}
	r := &recorder{TB: t}
	Tool(r, "swaks-without-tls", "swaks")
	if !strings.Contains(r.fatal, "installed but cannot be used") || !strings.Contains(r.fatal, "libnet-ssleay-perl") || r.skip != "" {
		t.Errorf("Tool: fatal %q, skip %q; want a failure naming the packages", r.fatal, r.skip)
	}

	r = &recorder{TB: t}
	Tool(r, "no-such-program-mailsetup", "nosuch")
	if r.fatal != "" || !strings.Contains(r.skip, "apt-get install nosuch") {
		t.Errorf("missing program: fatal %q, skip %q; want a skip naming the package", r.fatal, r.skip)
	}
	t.Setenv(RequireEnv, "1")
	r = &recorder{TB: t}
	Tool(r, "no-such-program-mailsetup", "nosuch")
	if !strings.Contains(r.fatal, RequireEnv) {
		t.Errorf("missing program with %s: fatal %q, want a failure", RequireEnv, r.fatal)
	}
}

// TestCapabilitiesMatchWorkingTools: each check accepts the output of a
// working Debian build of its program (as printed by the versions CI
// installs), so a passing check is not an accident of an empty pattern.
func TestCapabilitiesMatchWorkingTools(t *testing.T) {
	working := map[string]string{
		"swaks":       "=== Basic AUTH supported\n=== TLS supported\n",
		"curl":        "curl 7.88.1\nProtocols: dict file ftp ftps gopher gophers http https imap imaps ldap ldaps mqtt pop3 pop3s rtmp rtsp scp sftp smb smbs smtp smtps telnet tftp\nFeatures: alt-svc AsynchDNS HTTP2 IPv6 Largefile libz NTLM SSL threadsafe UnixSockets zstd\n",
		"openssl":     "OpenSSL 3.0.17 1 Jul 2025 (Library: OpenSSL 3.0.17 1 Jul 2025)\n",
		"dig":         "DiG 9.18.41-1~deb12u1-Debian\n",
		"fetchmail":   "This is fetchmail release 6.4.37+GSS+NTLM+SDPS+SSL-SSLv2-SSLv3+NLS+KRB5.\n",
		"getmail":     "getmail 6.18.11\n",
		"mpop":        "mpop version 1.4.18\nTLS/SSL library: GnuTLS\nSupported authentication methods:\nuser plain scram-sha-1 login\n",
		"mbsync":      "isync 1.4.4\n",
		"msmtp":       "msmtp version 1.8.23\nPlatform: x86_64-pc-linux-gnu\nTLS/SSL library: GnuTLS\n",
		"thunderbird": "Mozilla Thunderbird 153.8.0esr\n",
		"chromium":    "Chromium 140.0.7339.185 built on Debian GNU/Linux 12 (bookworm)\n",
		"dovecot":     "Build options: ioloop=epoll notify=inotify openssl io_block_size=8192\n",
		"logrotate":   "logrotate 3.21.0\n",
		"rsyslogd":    "rsyslogd  8.2302.0 (aka 2023.02) compiled with:\n",
		"initdb":      "initdb (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n",
		"haproxy":     "HAProxy version 2.6.12-1+deb12u4 2026/10/17 - https://haproxy.org/\n",
	}
	for name, c := range Capabilities {
		out, ok := working[name]
		if !ok {
			t.Errorf("%s: no sample of a working build's output here", name)
			continue
		}
		for _, w := range c.Want {
			if !w.Pattern.MatchString(out) {
				t.Errorf("%s: %s does not match a working build's output", name, w.What)
			}
			if w.Pattern.MatchString("") {
				t.Errorf("%s: %s matches an empty output", name, w.What)
			}
		}
	}
}
