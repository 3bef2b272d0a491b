package templates_test

import (
	"strings"
	"testing"

	"mailsetup/autoconfig"
	"mailsetup/autoconfig/autoconfigtest"
	"mailsetup/templates"
)

func TestIndexRendersEveryPolicyEscaped(t *testing.T) {
	set, err := templates.Parse()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := set.Index(&b, []autoconfig.Policy{autoconfigtest.IMAPFirst(), autoconfigtest.POPFirst()}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"Example Mail &amp; Co &lt;Test&gt;", // escaped by html/template
		"imap.example.com", "993", "pop.example.com", "smtp.example.com",
		"delete from server after 2 days",
		`<meta name="viewport"`, `<html lang="en">`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("index lacks %q", want)
		}
	}
	if strings.Contains(out, "<Test>") || strings.Contains(out, "http://") || strings.Contains(out, "https://") {
		t.Error("unescaped text or an external asset in the page")
	}
}
