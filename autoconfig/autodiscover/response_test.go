package autodiscover_test

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"mailsetup/autoconfig"
	"mailsetup/autoconfig/autodiscover"
	"mailsetup/internal/testkit"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.xml from the current output")

// errorTime is the fixed time of the golden error document.
var errorTime = time.Date(2024, 5, 17, 16, 56, 32, 616402700, time.UTC)

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden.xml")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (run go test -update and review the diff)\ngot:\n%s", path, got)
	}
}

func samplePolicies() map[string]autoconfig.Policy {
	return map[string]autoconfig.Policy{
		"imapfirst": testkit.IMAPFirst(),
		"popfirst":  testkit.POPFirst(),
	}
}

func TestWriteResponseGolden(t *testing.T) {
	for name, p := range samplePolicies() {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := autodiscover.WriteResponse(&buf, p, "john@"+p.Domain); err != nil {
				t.Fatal(err)
			}
			golden(t, name, buf.Bytes())
			checkResponseShape(t, buf.String(), p)
		})
	}
}

// checkResponseShape checks by text what the golden files show: the two
// default namespaces, no prefixes, the fixed settings of every block.
func checkResponseShape(t *testing.T, out string, p autoconfig.Policy) {
	t.Helper()
	mustContain := []string{
		`<?xml version="1.0" encoding="UTF-8"?>`,
		`<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">`,
		`<Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a">`,
		"<AccountType>email</AccountType>",
		"<Action>settings</Action>",
	}
	for _, s := range mustContain {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %s", s)
		}
	}
	if n := strings.Count(out, "xmlns"); n != 2 {
		t.Errorf("output has %d xmlns attributes, want 2", n)
	}
	if strings.Contains(out, "xmlns:") || strings.Contains(out, "<ns") {
		t.Error("output has a namespace prefix")
	}
	blocks := len(p.IMAP) + len(p.POP3) + len(p.Submission)
	for _, s := range []string{"<SPA>off</SPA>", "<DomainRequired>off</DomainRequired>", "<AuthRequired>on</AuthRequired>", "<LoginName>john@" + p.Domain + "</LoginName>"} {
		if n := strings.Count(out, s); n != blocks {
			t.Errorf("%s appears %d times, want once per Protocol (%d)", s, n, blocks)
		}
	}
	for _, s := range []string{"<UsePOPAuth>on</UsePOPAuth>", "<SMTPLast>off</SMTPLast>"} {
		if n := strings.Count(out, s); n != len(p.Submission) {
			t.Errorf("%s appears %d times, want once per SMTP block (%d)", s, n, len(p.Submission))
		}
	}
}

func TestWriteResponseDeterministic(t *testing.T) {
	p := testkit.IMAPFirst()
	var a, b bytes.Buffer
	if err := autodiscover.WriteResponse(&a, p, "john@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := autodiscover.WriteResponse(&b, p, "john@example.com"); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("two renderings differ")
	}
}

func TestWriteResponseEscapes(t *testing.T) {
	p := testkit.IMAPFirst() // DisplayName "Example Mail & Co <Test>"
	var buf bytes.Buffer
	if err := autodiscover.WriteResponse(&buf, p, "o'hara&co@example.com"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "<DisplayName>Example Mail &amp; Co &lt;Test&gt;</DisplayName>") {
		t.Errorf("display name not escaped:\n%s", buf.String())
	}
	doc, err := autodiscover.ParseDocument(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if doc.DisplayName != p.DisplayName || doc.Protocols[0].LoginName != "o'hara&co@example.com" {
		t.Errorf("escaped values did not round-trip: %+v", doc)
	}
}

func TestWriteResponseRejects(t *testing.T) {
	p := testkit.IMAPFirst()
	var buf bytes.Buffer
	if err := autodiscover.WriteResponse(&buf, p, ""); err == nil {
		t.Error("empty address accepted")
	}
	bad := testkit.IMAPFirst()
	bad.IMAP[0].Security = "ssl"
	if err := autodiscover.WriteResponse(&buf, bad, "john@example.com"); err == nil {
		t.Error("unknown security accepted")
	}
	bad = testkit.IMAPFirst()
	bad.Submission[0].Protocol = "lmtp"
	if err := autodiscover.WriteResponse(&buf, bad, "john@example.com"); err == nil {
		t.Error("unknown protocol accepted")
	}
	if buf.Len() != 0 {
		t.Errorf("failed renderings wrote %d bytes", buf.Len())
	}
}

// project is what a POX response can carry of a policy.
func project(p autoconfig.Policy) autoconfig.Policy {
	return autoconfig.Policy{
		DisplayName: p.DisplayName,
		IMAP:        p.IMAP,
		POP3:        p.POP3,
		Submission:  p.Submission,
		Prefer:      p.Prefer,
		Username:    autoconfig.FullAddress,
	}
}

func TestRoundTrip(t *testing.T) {
	policies := samplePolicies()
	plain := testkit.IMAPFirst()
	plain.IMAP = []autoconfig.Endpoint{{Protocol: autoconfig.IMAP, Host: "localhost", Port: 1143, Security: autoconfig.None}}
	plain.POP3 = nil
	policies["plain"] = plain
	for name, p := range policies {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := autodiscover.WriteResponse(&buf, p, "john@"+p.Domain); err != nil {
				t.Fatal(err)
			}
			got, err := autodiscover.ParseResponse(&buf)
			if err != nil {
				t.Fatal(err)
			}
			if want := project(p); !reflect.DeepEqual(got, want) {
				t.Errorf("round trip:\ngot  %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestParseResponseOthers(t *testing.T) {
	const head = `<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"><Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a">`
	const tail = `</Response></Autodiscover>`
	tests := []struct {
		name, body string
		want       []autoconfig.Endpoint
		username   autoconfig.UsernameForm
		errText    string
	}{
		{
			name: "mox style: Encryption TLS on 993, none for STARTTLS; EXCH skipped",
			body: head + `<Account><AccountType>email</AccountType><Action>settings</Action>
				<Protocol><Type>EXCH</Type><Server>ex.example.com</Server></Protocol>
				<Protocol><Type>IMAP</Type><Server>mail.example.com</Server><Port>993</Port><Encryption>TLS</Encryption></Protocol>
				<Protocol><Type>smtp</Type><Server> mail.example.com </Server><Port>587</Port><SSL>on</SSL></Protocol>
				<Protocol><Type>SMTP</Type><Server>mail.example.com</Server><Port>465</Port></Protocol>
				<Protocol><Type>POP3</Type><Server>mail.example.com</Server><Port>110</Port><SSL>off</SSL></Protocol>
				<Protocol><Type>POP3</Type><Server>mail.example.com</Server><Port>995</Port><Encryption>Auto</Encryption></Protocol>
				</Account>` + tail,
			want: []autoconfig.Endpoint{
				{Protocol: autoconfig.IMAP, Host: "mail.example.com", Port: 993, Security: autoconfig.STARTTLS},
				{Protocol: autoconfig.POP3, Host: "mail.example.com", Port: 110, Security: autoconfig.None},
				{Protocol: autoconfig.POP3, Host: "mail.example.com", Port: 995, Security: autoconfig.TLS},
				{Protocol: autoconfig.SMTP, Host: "mail.example.com", Port: 587, Security: autoconfig.STARTTLS},
				{Protocol: autoconfig.SMTP, Host: "mail.example.com", Port: 465, Security: autoconfig.TLS},
			},
			username: autoconfig.FullAddress,
		},
		{
			name: "local-part login name",
			body: head + `<Account><Action>settings</Action><Protocol><Type>IMAP</Type><Server>m.example.com</Server><Port>993</Port><LoginName>john</LoginName></Protocol></Account>` + tail,
			want: []autoconfig.Endpoint{
				{Protocol: autoconfig.IMAP, Host: "m.example.com", Port: 993, Security: autoconfig.TLS},
			},
			username: autoconfig.LocalPart,
		},
		{name: "redirect", body: head + `<Account><Action>redirectAddr</Action><RedirectAddr>john@other.example</RedirectAddr></Account>` + tail, errText: "redirectAddr"},
		{name: "no settings", body: head + `<Account><Action>settings</Action></Account>` + tail, errText: "no IMAP"},
		{name: "bad port", body: head + `<Account><Protocol><Type>IMAP</Type><Server>m.example.com</Server><Port>imap</Port></Protocol></Account>` + tail, errText: "bad Port"},
		{name: "no account", body: head + tail, errText: "malformed"},
		{name: "DTD", body: `<!DOCTYPE Autodiscover>` + head + tail, errText: "DTD"},
		{name: "not XML", body: `{"Protocol":"AutodiscoverV1"}`, errText: "malformed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := autodiscover.ParseResponse(strings.NewReader(tc.body))
			if tc.errText != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errText) {
					t.Fatalf("err = %v, want one mentioning %q", err, tc.errText)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := append(p.Incoming(), p.Submission...)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("endpoints:\ngot  %v\nwant %v", got, tc.want)
			}
			if p.Username != tc.username {
				t.Errorf("username = %q, want %q", p.Username, tc.username)
			}
		})
	}
}

func TestWriteErrorGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := autodiscover.WriteError(&buf, autodiscover.CodeInvalidRequest, "", errorTime); err != nil {
		t.Fatal(err)
	}
	golden(t, "error600", buf.Bytes())
	out := buf.String()
	if !strings.Contains(out, `Time="16:56:32.6164027"`) {
		t.Errorf("Time attribute not in Exchange's form:\n%s", out)
	}
	if strings.Count(out, "xmlns") != 1 {
		t.Errorf("want exactly one xmlns:\n%s", out)
	}

	var again bytes.Buffer
	if err := autodiscover.WriteError(&again, autodiscover.CodeInvalidRequest, "", errorTime.In(time.FixedZone("CEST", 7200))); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), again.Bytes()) {
		t.Error("same instant in another zone renders differently")
	}
}

func TestErrorRoundTrip(t *testing.T) {
	codes := []int{autodiscover.CodeAddressNotFound, autodiscover.CodeNoSettings, autodiscover.CodeInvalidRequest,
		autodiscover.CodeSchemaNotSupported, autodiscover.CodeConfiguration, autodiscover.CodeInternal}
	for _, code := range codes {
		var buf bytes.Buffer
		if err := autodiscover.WriteError(&buf, code, "no <mail> for you & yours", errorTime); err != nil {
			t.Fatal(err)
		}
		_, err := autodiscover.ParseResponse(&buf)
		var re *autodiscover.ResponseError
		if !errors.As(err, &re) {
			t.Fatalf("code %d: err = %v, want *ResponseError", code, err)
		}
		if re.Code != code || re.Message != "no <mail> for you & yours" {
			t.Errorf("got %+v, want code %d", re, code)
		}
	}
}

func TestParseResponseErrorPlacements(t *testing.T) {
	const e = `<Error Time="1" Id="2"><ErrorCode> 500 </ErrorCode><Message>not found</Message><DebugData/></Error>`
	for name, body := range map[string]string{
		"under Autodiscover": `<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">` + e + `</Autodiscover>`,
		"2006a Response":     `<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"><Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a">` + e + `</Response></Autodiscover>`,
		"under Account":      `<Autodiscover><Response><Account>` + e + `</Account></Response></Autodiscover>`,
	} {
		_, err := autodiscover.ParseResponse(strings.NewReader(body))
		var re *autodiscover.ResponseError
		if !errors.As(err, &re) || re.Code != 500 || re.Message != "not found" {
			t.Errorf("%s: err = %v, want ResponseError 500", name, err)
		}
	}
}
