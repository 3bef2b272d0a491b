// Package layout holds the test of the project's import rules: which
// package may import which. It has no code of its own.
package layout

import (
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "mailsetup"

type pkg struct {
	ImportPath string
	Imports    []string // direct
	Deps       []string // transitive
}

// packages lists the module's packages with their imports (go list).
func packages(t *testing.T) []pkg {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list the packages: %v", err)
	}
	cmd := exec.Command(gobin, "list", "-json", module+"/...")
	cmd.Dir = ".."
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var all []pkg
	dec := json.NewDecoder(out)
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		all = append(all, p)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if len(all) < 10 {
		t.Fatalf("go list found %d packages", len(all))
	}
	return all
}

// under reports whether path is dir or below it (paths relative to the
// module).
func under(path, dir string) bool {
	full := module + "/" + dir
	return path == full || strings.HasPrefix(path, full+"/")
}

// TestImportRules: the rules of the README's package map, checked on
// the real import graph.
func TestImportRules(t *testing.T) {
	for _, v := range violations(packages(t)) {
		t.Error(v)
	}
}

// TestRulesCatchViolations: each rule finds a graph that breaks it.
func TestRulesCatchViolations(t *testing.T) {
	m := func(s string) string { return module + "/" + s }
	bad := []pkg{
		{ImportPath: m("probe"), Deps: []string{m("autoconfig"), m("server/events")}},
		{ImportPath: m("server/pop3d"), Imports: []string{m("server/smtpd")}},
		{ImportPath: m("server/mailstore"), Imports: []string{m("server/imapd")}},
		{ImportPath: m("server/web/selfhelp"), Imports: []string{m("server/web/console")}},
		{ImportPath: m("server/web/console"), Imports: []string{m("server/web/check")}}, // allowed
		{ImportPath: m("server/web/check"), Imports: []string{m("server/smtpd")}},
		{ImportPath: m("templates"), Deps: []string{m("finding"), m("server/observe")}},
	}
	v := violations(bad)
	if len(v) != 6 {
		t.Fatalf("%d violations, want 6:\n%s", len(v), strings.Join(v, "\n"))
	}
}

// violations returns one line per broken rule.
func violations(pkgs []pkg) []string {
	var out []string
	protocols := []string{"server/smtpd", "server/imapd", "server/pop3d", "server/dnsd"}
	webParts := []string{"server/web/check", "server/web/selfhelp", "server/web/console"}
	for _, p := range pkgs {
		// The policy, the findings, the probe and the pages never depend
		// on the running service (server -> templates is one way: the
		// console converts what the server saw into templates' views).
		for _, base := range []string{"autoconfig", "finding", "probe", "templates"} {
			if !under(p.ImportPath, base) {
				continue
			}
			for _, d := range p.Deps {
				if under(d, "server") {
					out = append(out, fmt.Sprintf("%s depends on %s: %s may not depend on anything under server/", p.ImportPath, d, base))
				}
			}
		}
		for _, proto := range protocols {
			if !under(p.ImportPath, proto) {
				continue
			}
			for _, other := range protocols {
				for _, i := range p.Imports {
					if other != proto && under(i, other) {
						out = append(out, fmt.Sprintf("%s imports %s: a protocol server may not import another", p.ImportPath, i))
					}
				}
			}
		}
		if under(p.ImportPath, "server/mailstore") {
			for _, i := range p.Imports {
				for _, proto := range protocols {
					if under(i, proto) {
						out = append(out, fmt.Sprintf("%s imports %s: the mail store may not import a protocol server", p.ImportPath, i))
					}
				}
			}
		}
		if under(p.ImportPath, "server/web") {
			for _, i := range p.Imports {
				for _, proto := range protocols {
					if under(i, proto) {
						out = append(out, fmt.Sprintf("%s imports %s: the web may not import a protocol server", p.ImportPath, i))
					}
				}
			}
		}
		for _, part := range webParts {
			if !under(p.ImportPath, part) {
				continue
			}
			for _, i := range p.Imports {
				for _, other := range webParts {
					if other != part && other != "server/web/check" && under(i, other) {
						out = append(out, fmt.Sprintf("%s imports %s: the web's parts may import only server/web/check", p.ImportPath, i))
					}
				}
			}
		}
	}
	return out
}
