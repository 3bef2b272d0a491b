package mozilla_test

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"

	"mailsetup/autoconfig"
	"mailsetup/autoconfig/mozilla"
	"mailsetup/internal/testkit"
)

// TestAndroidAcceptsOurDocuments: every document we render, for every
// sample policy, with and without an address, is one Thunderbird for
// Android accepts, and it takes the policy's first IMAP and submission
// endpoint from it (a POP3-first policy still lists IMAP).
func TestAndroidAcceptsOurDocuments(t *testing.T) {
	for _, p := range []autoconfig.Policy{testkit.IMAPFirst(), testkit.POPFirst()} {
		for _, address := range []string{"", "john@" + p.Domain} {
			var buf bytes.Buffer
			if err := mozilla.Render(&buf, p, address); err != nil {
				t.Fatal(err)
			}
			got, err := mozilla.ParseAndroid(bytes.NewReader(buf.Bytes()), "john@"+p.Domain)
			if err != nil {
				t.Fatalf("%s %q: %v\n%s", p.Domain, address, err, buf.Bytes())
			}
			if got.IMAP != p.IMAP[0] || got.SMTP != p.Submission[0] || got.IMAPUsername != "john@"+p.Domain || got.SMTPUsername != "john@"+p.Domain {
				t.Errorf("%s %q: Android takes %+v", p.Domain, address, got)
			}
		}
	}
}

// TestAndroidRejects: the documents Thunderbird for Android refuses
// while desktop Thunderbird reads them.
func TestAndroidRejects(t *testing.T) {
	third, err := os.ReadFile("testdata/thirdparty-plain.xml")
	if err != nil {
		t.Fatal(err)
	}
	good := func() string {
		var buf bytes.Buffer
		if err := mozilla.Render(&buf, testkit.IMAPFirst(), ""); err != nil {
			t.Fatal(err)
		}
		return buf.String()
	}()
	popOnly := testkit.POPFirst()
	popOnly.IMAP = nil
	var popDoc bytes.Buffer
	if err := mozilla.Render(&popDoc, popOnly, ""); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, doc, want string
	}{
		{"socketType plain", string(third), "Unknown 'socketType' value: 'plain'"},
		{"authentication plain only", strings.ReplaceAll(good, "password-cleartext", "plain"), "No usable 'authentication'"},
		{"pop3 only", popDoc.String(), "Missing 'incomingServer'"},
		{"no username", strings.ReplaceAll(good, "<username>%EMAILADDRESS%</username>", ""), "Missing 'username'"},
		{"no emailProvider id", strings.Replace(good, `id="example.com"`, "", 1), "Missing 'emailProvider.id'"},
		{"no domain", strings.Replace(good, "<domain>example.com</domain>", "", 1), "Valid 'domain' element required"},
		{"no smtp", good[:strings.Index(good, "<outgoingServer")] + "</emailProvider></clientConfig>", "Missing 'outgoingServer'"},
	} {
		_, err := mozilla.ParseAndroid(strings.NewReader(c.doc), "john@example.com")
		if !errors.Is(err, mozilla.ErrAndroidRejects) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
		if c.name == "pop3 only" || c.name == "authentication plain only" {
			// Desktop Thunderbird (our Parse) reads these.
			if _, err := mozilla.Parse(strings.NewReader(c.doc)); err != nil {
				t.Errorf("%s: Parse: %v", c.name, err)
			}
		}
	}
}

// TestRender12 checks what autoconfig 1.2 adds: the MX domain of a
// hoster, and the names within the draft's limits.
func TestRender12(t *testing.T) {
	p := testkit.IMAPFirst()
	p.MX = []autoconfig.MX{{Host: "mx1.hoster.example", Preference: 10}, {Host: "mx2.hoster.example", Preference: 20}, {Host: "mx.example.com", Preference: 30}}
	p.DisplayName = strings.Repeat("Long name ", 10)
	p.ShortName = strings.Repeat("s", 30)
	var buf bytes.Buffer
	if err := mozilla.Render(&buf, p, ""); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if strings.Count(out, `<domain purpose="mx">hoster.example</domain>`) != 1 || strings.Count(out, "<domain") != 2 {
		t.Errorf("want one mx-purpose domain for hoster.example:\n%s", out)
	}
	if !strings.Contains(out, "<displayShortName>"+strings.Repeat("s", 20)+"</displayShortName>") ||
		!strings.Contains(out, "<displayName>"+strings.Repeat("Long name ", 6)+"</displayName>") {
		t.Errorf("names not cut to 60 and 20 characters:\n%s", out)
	}
	// Desktop Thunderbird's reading (Parse) still takes the mail domain.
	got, err := mozilla.Parse(strings.NewReader(out))
	if err != nil || got.Domain != "example.com" {
		t.Errorf("Parse: %v, domain %q", err, got.Domain)
	}
	if _, err := mozilla.ParseAndroid(strings.NewReader(out), "a@example.com"); err != nil {
		t.Errorf("Android: %v", err)
	}
}
