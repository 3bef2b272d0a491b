package autoconfigtest

import (
	"os"
	"os/exec"
	"testing"
)

// RequireEnv is the environment variable that turns "skip: tool missing"
// into a test failure. CI sets it to 1.
const RequireEnv = "MAILSETUP_REQUIRE_TOOLS"

// Tool returns the path of the external program name (a real client, a
// reference server or a browser) that a test needs. When it is missing the
// test is skipped with a message naming the Debian package to install, or
// fails when RequireEnv is set.
func Tool(t testing.TB, name, debianPackage string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	msg := name + " not found: install the Debian package " + debianPackage + " (apt-get install " + debianPackage + ")"
	if os.Getenv(RequireEnv) != "" {
		t.Fatalf("%s; %s is set, so a missing tool fails the test", msg, RequireEnv)
	}
	t.Skip(msg)
	return ""
}
