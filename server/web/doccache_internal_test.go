package web

import (
	"encoding/xml"
	"strings"
	"testing"
)

// FuzzNeedsEscape: an address that needsEscape lets through unescaped is
// one xml.EscapeText leaves as it is.
func FuzzNeedsEscape(f *testing.F) {
	for _, s := range []string{"john@example.test", `a"b@x`, "a'b@x", "a&b@x", "<@>", "tab\t@x", "é@x", "\x7f@x", "~{}|@x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if needsEscape(s) {
			return
		}
		var b strings.Builder
		_ = xml.EscapeText(&b, []byte(s))
		if b.String() != s {
			t.Fatalf("needsEscape(%q) = false, but EscapeText gives %q", s, b.String())
		}
	})
}
