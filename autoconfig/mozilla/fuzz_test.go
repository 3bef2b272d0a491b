package mozilla_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"mailsetup/autoconfig"
	"mailsetup/autoconfig/mozilla"
)

// addTestdataSeeds adds every document in testdata to the corpus.
func addTestdataSeeds(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.xml"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seed documents in testdata: %v", err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// FuzzParse checks that Parse never panics, fails only with its own
// errors, and that what it accepts survives Render and Parse again.
func FuzzParse(f *testing.F) {
	addTestdataSeeds(f)
	f.Add([]byte(doc(pop3Server(`<pop3><leaveMessagesOnServer>false</leaveMessagesOnServer></pop3>`) + imapServer + smtpServer)))
	f.Add([]byte(`<!DOCTYPE x [<!ENTITY a "b">]><clientConfig/>`))

	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := mozilla.Parse(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, mozilla.ErrMalformed) && !errors.Is(err, mozilla.ErrTooLarge) {
				t.Fatalf("Parse error %v wraps neither ErrMalformed nor ErrTooLarge", err)
			}
			return
		}
		if autoconfig.ValidDomain(p.Domain) != nil {
			return // Render needs a mail domain; Parse accepts any host name.
		}
		// Render leaves out endpoints without TLS; compare what it keeps.
		p.IMAP, p.POP3, p.Submission = withTLS(p.IMAP), withTLS(p.POP3), withTLS(p.Submission)
		if len(p.Endpoints(p.Prefer)) == 0 {
			return
		}
		if len(p.POP3) == 0 {
			p.POP = autoconfig.POP3Policy{} // carried only by pop3 servers
		}
		var buf bytes.Buffer
		if err := mozilla.Render(&buf, p, ""); err != nil {
			t.Fatalf("Render of a parsed policy %+v: %v", p, err)
		}
		again, err := mozilla.Parse(&buf)
		if err != nil {
			t.Fatalf("Parse(Render(Parse(doc))): %v\n%s", err, buf.Bytes())
		}
		type endpoints struct {
			Domain                 string
			IMAP, POP3, Submission []autoconfig.Endpoint
			Prefer                 autoconfig.Protocol
			POP                    autoconfig.POP3Policy
		}
		first := endpoints{p.Domain, p.IMAP, p.POP3, p.Submission, p.Prefer, p.POP}
		second := endpoints{again.Domain, again.IMAP, again.POP3, again.Submission, again.Prefer, again.POP}
		if !reflect.DeepEqual(first, second) {
			t.Fatalf("round trip changed the policy:\n%+v\n%+v", first, second)
		}
		if again.ShortName != "" && p.ShortName != "" && again.ShortName != p.ShortName {
			t.Fatalf("ShortName %q became %q", p.ShortName, again.ShortName)
		}
		if p.DisplayName != "" && again.DisplayName != p.DisplayName {
			t.Fatalf("DisplayName %q became %q", p.DisplayName, again.DisplayName)
		}
	})
}

func withTLS(list []autoconfig.Endpoint) []autoconfig.Endpoint {
	var out []autoconfig.Endpoint
	for _, e := range list {
		if e.Security != autoconfig.None {
			out = append(out, e)
		}
	}
	return out
}

// FuzzParseAndroid checks that ParseAndroid never panics, fails only
// with its own errors, and that what it accepts has the IMAP and SMTP
// servers Android needs.
func FuzzParseAndroid(f *testing.F) {
	addTestdataSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := mozilla.ParseAndroid(bytes.NewReader(data), "john@example.com")
		if err != nil {
			if !errors.Is(err, mozilla.ErrAndroidRejects) && !errors.Is(err, mozilla.ErrMalformed) && !errors.Is(err, mozilla.ErrTooLarge) {
				t.Fatalf("ParseAndroid error %v wraps none of its errors", err)
			}
			return
		}
		if got.IMAP.Protocol != autoconfig.IMAP || got.SMTP.Protocol != autoconfig.SMTP || got.IMAP.Host == "" || got.SMTP.Host == "" ||
			(got.IMAP.Security != autoconfig.TLS && got.IMAP.Security != autoconfig.STARTTLS) {
			t.Fatalf("accepted settings Android could not use: %+v", got)
		}
	})
}
