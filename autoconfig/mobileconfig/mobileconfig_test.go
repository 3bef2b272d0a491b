package mobileconfig_test

import (
	"bytes"
	"encoding/xml"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"mailsetup/autoconfig"
	"mailsetup/autoconfig/mobileconfig"
	"mailsetup/internal/testkit"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

type goldenCase struct {
	file    string
	policy  func() autoconfig.Policy
	address string
}

// goldenCases are the profiles kept in testdata.
func goldenCases() []goldenCase {
	return []goldenCase{
		{"imap-first.golden.mobileconfig", testkit.IMAPFirst, "john.doe@example.com"},
		{"pop-first.golden.mobileconfig", testkit.POPFirst, "jane@pop-first.test"},
	}
}

func TestGolden(t *testing.T) {
	for _, tc := range goldenCases() {
		t.Run(tc.file, func(t *testing.T) {
			got, err := mobileconfig.Render(tc.policy(), tc.address)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", tc.file)
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("Render differs from %s (run go test -update after checking the diff):\n%s", path, got)
			}
			again, err := mobileconfig.Render(tc.policy(), tc.address)
			if err != nil || !bytes.Equal(again, got) {
				t.Errorf("Render is not deterministic (err %v)", err)
			}
		})
	}
}

// plistValues walks a plist with encoding/xml only (independently of the
// package's reader), checks that it is well-formed and shaped as Apple's
// PLIST 1.0 documents are, and returns every dict key with the texts of
// the string or integer values that follow it.
func plistValues(t *testing.T, data []byte) map[string][]string {
	t.Helper()
	if !bytes.HasPrefix(data, []byte(`<?xml version="1.0" encoding="UTF-8"?>`+"\n")) {
		t.Errorf("no XML declaration at the start")
	}
	if !bytes.Contains(data, []byte(`<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">`)) {
		t.Errorf("no Apple PLIST 1.0 DOCTYPE")
	}
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	values := map[string][]string{}
	var (
		stack   []string
		text    strings.Builder
		lastKey string
		sawRoot bool
	)
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if len(stack) == 0 {
				if tok.Name.Local != "plist" || len(tok.Attr) != 1 || tok.Attr[0].Name.Local != "version" || tok.Attr[0].Value != "1.0" {
					t.Errorf("root element %v, want <plist version=\"1.0\">", tok)
				}
				sawRoot = true
			}
			stack = append(stack, tok.Name.Local)
			text.Reset()
		case xml.CharData:
			text.Write(tok)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
			switch tok.Name.Local {
			case "key":
				lastKey = text.String()
			case "string", "integer":
				if lastKey != "" {
					values[lastKey] = append(values[lastKey], text.String())
				}
				lastKey = ""
			default:
				lastKey = ""
			}
		}
	}
	if !sawRoot || len(stack) != 0 {
		t.Fatalf("no complete <plist> element")
	}
	return values
}

func TestRenderWellFormedAndEscaped(t *testing.T) {
	p := testkit.IMAPFirst()
	if !strings.ContainsAny(p.DisplayName, "&<") {
		t.Fatalf("sample display name %q no longer tests escaping", p.DisplayName)
	}
	for _, address := range []string{"john.doe@example.com", "o'neil&co@example.com"} {
		out, err := mobileconfig.Render(p, address)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(out, []byte(p.DisplayName)) || bytes.Contains(out, []byte("& ")) {
			t.Errorf("display name %q appears unescaped", p.DisplayName)
		}
		if !bytes.Contains(out, []byte("Example Mail &amp; Co &lt;Test&gt;")) {
			t.Errorf("escaped display name missing")
		}
		v := plistValues(t, out)
		if got := v["PayloadOrganization"]; len(got) != 1 || got[0] != p.DisplayName {
			t.Errorf("PayloadOrganization decodes to %q, want %q", got, p.DisplayName)
		}
		if got := v["EmailAddress"]; len(got) != 1 || got[0] != address {
			t.Errorf("EmailAddress decodes to %q, want %q", got, address)
		}
		for _, key := range []string{"IncomingMailServerUsername", "OutgoingMailServerUsername"} {
			if got := v[key]; len(got) != 1 || got[0] != address {
				t.Errorf("%s = %q, want the full address %q", key, got, address)
			}
		}
		if got := v["PayloadType"]; !reflect.DeepEqual(got, []string{"com.apple.mail.managed", "Configuration"}) {
			t.Errorf("PayloadType values %q", got)
		}
		if got := v["PayloadVersion"]; !reflect.DeepEqual(got, []string{"1", "1"}) {
			t.Errorf("PayloadVersion values %q", got)
		}
		for _, key := range []string{"PayloadDisplayName", "PayloadDescription", "PayloadOrganization", "EmailAccountDescription"} {
			if len(v[key]) == 0 {
				t.Errorf("%s missing", key)
			}
		}
		for _, key := range []string{"IncomingPassword", "OutgoingPassword", "EmailAccountName"} {
			if _, ok := v[key]; ok || bytes.Contains(out, []byte("<key>"+key+"</key>")) {
				t.Errorf("profile contains %s", key)
			}
		}
	}
}

func TestRenderHostileStrings(t *testing.T) {
	p := testkit.POPFirst()
	p.DisplayName = `]]></string><key>IncomingPassword</key><string>x</string> "quoted" 'single' tab	end` + "\nline\x00nul\x1besc"
	out, err := mobileconfig.Render(p, "jane@pop-first.test")
	if err != nil {
		t.Fatal(err)
	}
	v := plistValues(t, out)
	if _, ok := v["IncomingPassword"]; ok {
		t.Fatalf("display name injected a key:\n%s", out)
	}
	got := v["PayloadOrganization"]
	want := strings.NewReplacer("\x00", "\uFFFD", "\x1b", "\uFFFD").Replace(p.DisplayName)
	if len(got) != 1 || got[0] != want {
		t.Errorf("PayloadOrganization = %q, want %q", got, want)
	}
	parsed, err := mobileconfig.Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	if parsed.DisplayName != want {
		t.Errorf("Parse DisplayName = %q, want %q", parsed.DisplayName, want)
	}
}

func TestRoundTrip(t *testing.T) {
	startTLSOnly := testkit.IMAPFirst()
	startTLSOnly.IMAP = startTLSOnly.IMAP[1:]
	startTLSOnly.Submission = []autoconfig.Endpoint{
		{Protocol: autoconfig.SMTP, Host: "smtp.example.com", Port: 587, Security: autoconfig.STARTTLS},
		{Protocol: autoconfig.SMTP, Host: "smtp2.example.com", Port: 465, Security: autoconfig.TLS},
	}
	plain := testkit.POPFirst()
	plain.POP3 = []autoconfig.Endpoint{{Protocol: autoconfig.POP3, Host: "localhost", Port: 1110, Security: autoconfig.None}}
	plain.DisplayName = ""
	cases := []struct {
		name    string
		policy  autoconfig.Policy
		address string
	}{
		{"imap-first", testkit.IMAPFirst(), "john.doe@example.com"},
		{"imap-first-odd-local-part", testkit.IMAPFirst(), "o'neil&co+tag@example.com"},
		{"imap-first-upper-case-domain", testkit.IMAPFirst(), "John@EXAMPLE.COM"},
		{"pop-first", testkit.POPFirst(), "jane@pop-first.test"},
		{"starttls-first", startTLSOnly, "john@example.com"},
		{"no-tls-no-name", plain, "jane@pop-first.test"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := mobileconfig.Render(tc.policy, tc.address)
			if err != nil {
				t.Fatal(err)
			}
			plistValues(t, out)
			got, err := mobileconfig.Parse(out)
			if err != nil {
				t.Fatal(err)
			}
			want := mobileconfig.Project(tc.policy)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Parse(Render(p)) =\n%+v\nwant Project(p) =\n%+v", got, want)
			}
		})
	}
}

func TestProject(t *testing.T) {
	p := testkit.IMAPFirst()
	got := mobileconfig.Project(p)
	want := autoconfig.Policy{
		Domain:      "example.com",
		DisplayName: p.DisplayName,
		IMAP:        []autoconfig.Endpoint{{Protocol: autoconfig.IMAP, Host: "imap.example.com", Port: 993, Security: autoconfig.TLS}},
		Submission:  []autoconfig.Endpoint{{Protocol: autoconfig.SMTP, Host: "smtp.example.com", Port: 465, Security: autoconfig.TLS}},
		Prefer:      autoconfig.IMAP,
		Username:    autoconfig.FullAddress,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Project(IMAPFirst) =\n%+v\nwant\n%+v", got, want)
	}
	pop := mobileconfig.Project(testkit.POPFirst())
	if len(pop.IMAP) != 0 || len(pop.POP3) != 1 || pop.POP3[0].Port != 995 || pop.POP3[0].Security != autoconfig.TLS ||
		pop.Submission[0].Port != 587 || pop.Submission[0].Security != autoconfig.STARTTLS || pop.POP != (autoconfig.POP3Policy{}) {
		t.Errorf("Project(POPFirst) = %+v", pop)
	}
}

func TestPayloadUUIDs(t *testing.T) {
	uuidRE := regexp.MustCompile(`^[0-9A-F]{8}-[0-9A-F]{4}-8[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$`)
	p := testkit.IMAPFirst()
	uuidsOf := func(address string) []string {
		t.Helper()
		out, err := mobileconfig.Render(p, address)
		if err != nil {
			t.Fatal(err)
		}
		// The mail payload's dict comes first (PayloadContent sorts first).
		return plistValues(t, out)["PayloadUUID"]
	}
	a := uuidsOf("john.doe@example.com")
	if len(a) != 2 {
		t.Fatalf("want 2 PayloadUUIDs, got %q", a)
	}
	mail, profile := a[0], a[1]
	for _, u := range a {
		if !uuidRE.MatchString(u) {
			t.Errorf("PayloadUUID %q is not an upper-case RFC 4122 layout UUID with version 8 and variant 10", u)
		}
	}
	if mail == profile {
		t.Errorf("profile and mail payload share UUID %s", mail)
	}
	wantProfile, wantMail := mobileconfig.PayloadUUIDs("john.doe@example.com")
	if profile != wantProfile || mail != wantMail {
		t.Errorf("rendered UUIDs %s/%s, PayloadUUIDs says %s/%s", profile, mail, wantProfile, wantMail)
	}
	if again := uuidsOf("john.doe@example.com"); !reflect.DeepEqual(again, a) {
		t.Errorf("same address, different UUIDs: %q then %q", a, again)
	}
	if upper := uuidsOf("John.Doe@Example.COM"); !reflect.DeepEqual(upper, a) {
		t.Errorf("address case changes UUIDs: %q vs %q", a, upper)
	}
	seen := map[string]string{profile: "john.doe", mail: "john.doe"}
	for _, other := range []string{"jane.doe@example.com", "john.doe2@example.com", "john@example.com"} {
		for _, u := range uuidsOf(other) {
			if prev, dup := seen[u]; dup {
				t.Errorf("UUID %s of %s repeats the one of %s", u, other, prev)
			}
			seen[u] = other
		}
	}
	// The identifier follows the profile UUID, so a re-download replaces
	// the installed profile and another account of the domain does not.
	out, _ := mobileconfig.Render(p, "john.doe@example.com")
	ids := plistValues(t, out)["PayloadIdentifier"]
	if len(ids) != 2 || ids[1] != "com.example.mailsetup."+profile || ids[0] != ids[1]+".mail" {
		t.Errorf("PayloadIdentifiers %q", ids)
	}
}

func TestRenderErrors(t *testing.T) {
	noSubmission := testkit.IMAPFirst()
	noSubmission.Submission = nil
	noPOP := testkit.IMAPFirst()
	noPOP.Prefer = autoconfig.POP3
	noPOP.POP3 = nil
	noPrefer := testkit.IMAPFirst()
	noPrefer.Prefer = ""
	badPort := testkit.IMAPFirst()
	badPort.IMAP = []autoconfig.Endpoint{{Protocol: autoconfig.IMAP, Host: "imap.example.com", Port: 0, Security: autoconfig.TLS}}
	badHost := testkit.IMAPFirst()
	badHost.Submission = []autoconfig.Endpoint{{Protocol: autoconfig.SMTP, Host: "smtp.example.com</string>", Port: 465, Security: autoconfig.TLS}}
	badDomain := testkit.IMAPFirst()
	badDomain.Domain = "Example.com"
	cases := []struct {
		name    string
		policy  autoconfig.Policy
		address string
		is      error
	}{
		{"empty address", testkit.IMAPFirst(), "", autoconfig.ErrEmptyAddress},
		{"blank address", testkit.IMAPFirst(), "  ", autoconfig.ErrEmptyAddress},
		{"no at", testkit.IMAPFirst(), "john.example.com", autoconfig.ErrMalformedAddress},
		{"markup in address", testkit.IMAPFirst(), "<john>@example.com", autoconfig.ErrMalformedAddress},
		{"other domain", testkit.IMAPFirst(), "john@example.org", mobileconfig.ErrWrongDomain},
		{"subdomain", testkit.IMAPFirst(), "john@mail.example.com", mobileconfig.ErrWrongDomain},
		{"no submission", noSubmission, "john@example.com", nil},
		{"prefer pop without pop", noPOP, "john@example.com", nil},
		{"no preference", noPrefer, "john@example.com", nil},
		{"port 0", badPort, "john@example.com", nil},
		{"bad host", badHost, "john@example.com", nil},
		{"bad domain", badDomain, "john@example.com", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := mobileconfig.Render(tc.policy, tc.address)
			if err == nil {
				t.Fatalf("no error; rendered\n%s", out)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v does not wrap %v", err, tc.is)
			}
		})
	}
}

func TestPOPRetentionHint(t *testing.T) {
	out, err := mobileconfig.Render(testkit.POPFirst(), "jane@pop-first.test")
	if err != nil {
		t.Fatal(err)
	}
	desc := plistValues(t, out)["PayloadDescription"]
	if len(desc) != 1 || !strings.Contains(desc[0], "after at most 2 days") {
		t.Errorf("POP profile description does not tell the retention the profile cannot set: %q", desc)
	}
	if bytes.Contains(out, []byte("LeaveOnServer")) || bytes.Contains(out, []byte("DeleteAfter")) {
		t.Errorf("profile carries a retention key Apple does not define")
	}
}

func TestFilename(t *testing.T) {
	cases := map[string]string{
		"example.com":    "example.com-mail.mobileconfig",
		"pop-first.test": "pop-first.test-mail.mobileconfig",
		"Example.COM":    "example.com-mail.mobileconfig",
		`ev"il/../x.com`: "ev-il-..-x.com-mail.mobileconfig",
		"":               "mail.mobileconfig",
		"...":            "mail.mobileconfig",
	}
	for domain, want := range cases {
		p := testkit.IMAPFirst()
		p.Domain = domain
		if got := mobileconfig.Filename(p); got != want {
			t.Errorf("Filename(%q) = %q, want %q", domain, got, want)
		}
	}
	if got := mobileconfig.Filename(testkit.IMAPFirst()); !regexp.MustCompile(`^[a-z0-9.-]+\.mobileconfig$`).MatchString(got) {
		t.Errorf("Filename = %q", got)
	}
}

// handWritten is a profile in the style of Apple's documentation example,
// not made by Render: different key order, comments, a password, no ports
// on the outgoing side, UseSSL absent, a second unrelated payload first.
const handWritten = `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<!-- written by hand -->
<dict>
    <key>PayloadType</key>
    <string>Configuration</string>
    <key>PayloadVersion</key>
    <integer>1</integer>
    <key>PayloadUUID</key>
    <string>8e1961d8-898e-4d79-986f-c7a61af4103c</string>
    <key>PayloadIdentifier</key>
    <string>org.example.profile</string>
    <key>PayloadContent</key>
    <array>
        <dict>
            <key>PayloadType</key>
            <string>com.apple.wifi.managed</string>
            <key>Data</key>
            <data>
              aGVsbG8=
            </data>
            <key>Weight</key>
            <real>1.5</real>
            <key>Since</key>
            <date>2024-01-02T03:04:05Z</date>
        </dict>
        <dict>
            <key>PayloadType</key>
            <string>com.apple.mail.managed</string>
            <key>EmailAccountType</key>
            <string>EmailTypePOP</string>
            <key>EmailAccountDescription</key>
            <string>Org &amp; Friends</string>
            <key>EmailAddress</key>
            <string>juan@Example.ORG</string>
            <key>IncomingMailServerHostName</key>
            <string>pop.example.org</string>
            <key>IncomingMailServerUseSSL</key>
            <false/>
            <key>IncomingMailServerUsername</key>
            <string>juan</string>
            <key>IncomingPassword</key>
            <string>secret</string>
            <key>OutgoingMailServerHostName</key>
            <string><![CDATA[smtp.example.org]]></string>
            <key>OutgoingMailServerUseSSL</key>
            <true/>
            <key>OutgoingMailServerUsername</key>
            <string>juan</string>
        </dict>
    </array>
</dict>
</plist>
`

func TestParseHandWritten(t *testing.T) {
	got, err := mobileconfig.Parse([]byte(handWritten))
	if err != nil {
		t.Fatal(err)
	}
	want := autoconfig.Policy{
		Domain:      "example.org",
		DisplayName: "Org & Friends",
		POP3:        []autoconfig.Endpoint{{Protocol: autoconfig.POP3, Host: "pop.example.org", Port: 110, Security: autoconfig.STARTTLS}},
		Submission:  []autoconfig.Endpoint{{Protocol: autoconfig.SMTP, Host: "smtp.example.org", Port: 465, Security: autoconfig.TLS}},
		Prefer:      autoconfig.POP3,
		Username:    autoconfig.LocalPart,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Parse =\n%+v\nwant\n%+v", got, want)
	}
	content, signed, err := mobileconfig.Content([]byte(handWritten))
	if err != nil || signed || string(content) != handWritten {
		t.Errorf("Content of a plain plist: signed %v, err %v", signed, err)
	}
}

func TestParseMalformed(t *testing.T) {
	good, err := mobileconfig.Render(testkit.IMAPFirst(), "john@example.com")
	if err != nil {
		t.Fatal(err)
	}
	replace := func(old, new string) []byte {
		if !bytes.Contains(good, []byte(old)) {
			t.Fatalf("golden profile lacks %q", old)
		}
		return bytes.Replace(good, []byte(old), []byte(new), 1)
	}
	cases := map[string][]byte{
		"empty":              nil,
		"whitespace":         []byte(" \n\t"),
		"text":               []byte("hello"),
		"binary plist":       []byte("bplist00\xd1\x01\x02"),
		"html":               []byte("<html><body>not found</body></html>"),
		"truncated":          good[:len(good)/2],
		"not a dict":         []byte(`<plist version="1.0"><array/></plist>`),
		"trailing element":   append(bytes.Clone(good), "<dict/>"...),
		"wrong payload type": replace("<string>Configuration</string>", "<string>Other</string>"),
		"no mail payload":    replace("<string>com.apple.mail.managed</string>", "<string>com.apple.wifi.managed</string>"),
		"bad account type":   replace("EmailTypeIMAP", "EmailTypeEAS"),
		"no incoming host":   replace("<key>IncomingMailServerHostName</key>", "<key>IncomingMailServerHostNam</key>"),
		"port out of range":  replace("<integer>993</integer>", "<integer>99300</integer>"),
		"port not a number":  replace("<integer>993</integer>", "<integer>nine</integer>"),
		"port as string":     replace("<integer>993</integer>", "<string>993</string>"),
		"ssl as string":      replace("<key>IncomingMailServerUseSSL</key>\n\t\t\t<true/>", "<key>IncomingMailServerUseSSL</key><string>yes</string>"),
		"bad address":        replace("<string>john@example.com</string>", "<string>john</string>"),
		"duplicate key":      replace("<key>EmailAddress</key>", "<key>EmailAccountType</key><string>EmailTypeIMAP</string><key>EmailAddress</key>"),
		"key without value":  replace("<key>PayloadVersion</key>\n\t\t\t<integer>1</integer>\n", "<key>PayloadVersion</key>\n"),
		"unknown element":    replace("<true/>", "<yes/>"),
		"markup in string":   replace("<string>imap.example.com</string>", "<string>imap.<b>example</b>.com</string>"),
		"text in true":       replace("<true/>", "<true>1</true>"),
		"undefined entity":   replace("imap.example.com", "imap.&example;.com"),
		"deep nesting":       []byte(`<plist version="1.0">` + strings.Repeat("<array>", 100) + strings.Repeat("</array>", 100) + `</plist>`),
		"der garbage":        {0x30, 0x03, 0x02, 0x01, 0x01},
		"der truncated":      {0x30, 0x82, 0x10, 0x00, 0x06},
		"too large":          append(bytes.Clone(good), bytes.Repeat([]byte(" "), mobileconfig.MaxSize)...),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			p, err := mobileconfig.Parse(data)
			if err == nil {
				t.Fatalf("no error; parsed %+v", p)
			}
			if !errors.Is(err, mobileconfig.ErrMalformed) {
				t.Errorf("error %v does not wrap ErrMalformed", err)
			}
		})
	}
}
