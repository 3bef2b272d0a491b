package testkit

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// RequireEnv is the environment variable that turns "skip: tool missing"
// into a test failure. CI sets it to 1.
const RequireEnv = "MAILSETUP_REQUIRE_TOOLS"

// Tool returns the path of the external program name (a real client, a
// reference server or a browser) that a test needs. When it is missing the
// test is skipped with a message naming the Debian package to install, or
// fails when RequireEnv is set.
//
// A program that is present must also be able to do what the tests ask
// of it (see Capabilities: TLS, AUTH): when it cannot, the test fails,
// with or without RequireEnv, naming what is missing and the packages
// that add it. The check runs once per test process.
func Tool(t testing.TB, name, debianPackage string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		msg := name + " not found: install the Debian package " + debianPackage + " (apt-get install " + debianPackage + ")"
		if os.Getenv(RequireEnv) != "" {
			t.Fatalf("%s; %s is set, so a missing tool fails the test", msg, RequireEnv)
		}
		t.Skip(msg)
		return ""
	}
	if err := checkCapability(name, path); err != nil {
		t.Fatalf("%s is installed but cannot be used by the tests: %v", name, err)
	}
	return path
}

// Capability is what a program must show before a test uses it: the
// output of running it with Args must match every pattern in Want.
type Capability struct {
	// Package is the Debian package that installs the program.
	Package string
	Args    []string
	// Want are the patterns the output (stdout and stderr) must match,
	// each with the reason it is needed.
	Want []Want
	// Fix says what to install when a pattern does not match.
	Fix string
}

// Want is one thing a program's output must show.
type Want struct {
	Pattern *regexp.Regexp
	What    string
}

// Capabilities lists every real program the tests drive and how each is
// checked. A program used through Tool but not listed here is only looked
// up.
var Capabilities = map[string]Capability{
	// swaks without Perl's TLS modules fails every STARTTLS/TLS
	// session with "*** TLS not available: requires Net::SSLeay";
	// Debian's swaks only recommends them.
	"swaks": {Package: "swaks", Args: []string{"--support"},
		Want: []Want{{regexp.MustCompile(`(?m)^=== TLS supported`), "TLS (STARTTLS, --tls-on-connect)"},
			{regexp.MustCompile(`(?m)^=== Basic AUTH supported`), "AUTH PLAIN and LOGIN"}},
		Fix: "apt-get install --no-install-recommends libnet-ssleay-perl libio-socket-ssl-perl libauthen-sasl-perl"},
	"curl": {Package: "curl", Args: []string{"-V"},
		Want: []Want{{regexp.MustCompile(`(?m)^Protocols:.* https\b.* imaps\b.* pop3s\b.* smtps\b`), "https, imaps, pop3s and smtps"},
			{regexp.MustCompile(`(?m)^Features:.* SSL\b`), "TLS"}},
		Fix: "apt-get install curl (Debian's curl is built with OpenSSL)"},
	// PostgreSQL, started privately by the tests of database.url
	// (StartPostgres); Debian keeps its programs in
	// /usr/lib/postgresql/N/bin, which .ci/run puts on PATH.
	"initdb": {Package: "postgresql", Args: []string{"--version"},
		Want: []Want{{regexp.MustCompile(`initdb \(PostgreSQL\) (1[3-9]|[2-9][0-9])`), "PostgreSQL 13 or later"}},
		Fix:  "apt-get install --no-install-recommends postgresql"},
	// HAProxy in front of two replicas, configured from the README's
	// block (health checks on /healthz, TLS passed through).
	"haproxy": {Package: "haproxy", Args: []string{"-v"},
		Want: []Want{{regexp.MustCompile(`HAProxy version (2\.[4-9]|2\.[1-9][0-9]|[3-9]\.)`), "HAProxy 2.4 or later (default-server in defaults, http-check expect)"}},
		Fix:  "apt-get install --no-install-recommends haproxy"},
	"openssl": {Package: "openssl", Args: []string{"version"},
		Want: []Want{{regexp.MustCompile(`^OpenSSL [3-9]\.`), "OpenSSL 3 or later (cms -verify)"}},
		Fix:  "apt-get install openssl"},
	"dig": {Package: "dnsutils", Args: []string{"-v"},
		Want: []Want{{regexp.MustCompile(`DiG 9\.`), "BIND's dig"}},
		Fix:  "apt-get install dnsutils"},
	"fetchmail": {Package: "fetchmail", Args: []string{"-V"},
		Want: []Want{{regexp.MustCompile(`release [0-9.]+[^\n]*\+SSL`), "TLS (+SSL)"}},
		Fix:  "apt-get install fetchmail (Debian's is built with OpenSSL)"},
	"getmail": {Package: "getmail6", Args: []string{"--version"},
		Want: []Want{{regexp.MustCompile(`(?m)^getmail 6\.`), "getmail6 (Python 3 with its ssl module)"}},
		Fix:  "apt-get install getmail6"},
	"mpop": {Package: "mpop", Args: []string{"--version"},
		Want: []Want{{regexp.MustCompile(`TLS/SSL library: (GnuTLS|OpenSSL|LibreSSL|libtls)`), "TLS"},
			{regexp.MustCompile(`(?m)^Supported authentication methods:\s[^\n]*\bplain\b`), "AUTH PLAIN"}},
		Fix: "apt-get install mpop (Debian's is built with GnuTLS and GNU SASL)"},
	"msmtp": {Package: "msmtp", Args: []string{"--version"},
		Want: []Want{{regexp.MustCompile(`TLS/SSL library: (GnuTLS|OpenSSL|LibreSSL|libtls)`), "TLS"}},
		Fix:  "apt-get install msmtp (Debian's is built with GnuTLS)"},
	// The simulator's Thunderbird test drives its own account discovery
	// (FindConfig.parallelAutoDiscovery) over marionette with
	// -remote-allow-system-access: a current ESR.
	"thunderbird": {Package: "thunderbird", Args: []string{"--version"},
		Want: []Want{{regexp.MustCompile(`Thunderbird 1[4-9][0-9]\.`), "Thunderbird 140 or later"}},
		Fix:  "apt-get install --no-install-recommends thunderbird libnss3-tools"},
	"mbsync": {Package: "isync", Args: []string{"--version"},
		Want: []Want{{regexp.MustCompile(`^isync 1\.`), "isync 1.x (Debian's is built with OpenSSL)"}},
		Fix:  "apt-get install isync"},
	"chromium": {Package: "chromium", Args: []string{"--version"},
		Want: []Want{{regexp.MustCompile(`Chromium [0-9]+\.`), "a Chromium that starts"}},
		Fix:  "apt-get install chromium"},
	"rsyslogd": {Package: "rsyslog", Args: []string{"-v"},
		Want: []Want{{regexp.MustCompile(`^rsyslogd\s+8\.`), "rsyslog 8 (imfile, omfwd, omuxsock)"}},
		Fix:  "apt-get install --no-install-recommends rsyslog"},
	"logrotate": {Package: "logrotate", Args: []string{"--version"},
		Want: []Want{{regexp.MustCompile(`^logrotate 3\.`), "logrotate 3"}},
		Fix:  "apt-get install --no-install-recommends logrotate"},
	"dovecot": {Package: "dovecot-imapd", Args: []string{"--build-options"},
		Want: []Want{{regexp.MustCompile(`(?m)^Build options:.*\bopenssl\b`), "TLS (openssl)"}},
		Fix:  "apt-get install dovecot-core dovecot-imapd dovecot-pop3d dovecot-lmtpd"},
}

// capabilityResults holds each program's check result, run once.
var capabilityResults sync.Map // name -> func() error (sync.OnceValue)

func checkCapability(name, path string) error {
	c, ok := Capabilities[name]
	if !ok {
		return nil
	}
	f, _ := capabilityResults.LoadOrStore(name, sync.OnceValue(func() error { return c.Check(path) }))
	return f.(func() error)()
}

// Check runs the program at path and reports every Want its output does
// not show.
func (c Capability) Check(path string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, c.Args...).CombinedOutput()
	var missing []string
	for _, w := range c.Want {
		if !w.Pattern.Match(out) {
			missing = append(missing, w.What)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	cmd := strings.Join(append([]string{path}, c.Args...), " ")
	if err != nil {
		cmd += " (" + err.Error() + ")"
	}
	return fmt.Errorf("`%s` does not show %s; fix: %s\n%s", cmd, strings.Join(missing, ", "), c.Fix, strings.TrimSpace(string(out)))
}
