package mozilla_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"mailsetup/autoconfig"
	"mailsetup/autoconfig/mozilla"
	"mailsetup/internal/testkit"
)

// project keeps the policy fields the document carries, in the form Parse
// returns them.
func project(p autoconfig.Policy) autoconfig.Policy {
	out := autoconfig.Policy{
		Domain:      p.Domain,
		DisplayName: p.DisplayName,
		ShortName:   p.ShortName,
		IMAP:        p.IMAP,
		POP3:        p.POP3,
		Submission:  p.Submission,
		Prefer:      p.Prefer,
		Username:    p.Username,
		Auth:        []autoconfig.AuthMethod{autoconfig.AuthPlain},
	}
	if len(p.POP3) > 0 {
		out.POP = autoconfig.POP3Policy{LeaveOnServer: p.POP.LeaveOnServer, DeleteAfterDays: p.POP.DeleteAfterDays}
	}
	return out
}

func mustParse(t testing.TB, doc []byte) autoconfig.Policy {
	t.Helper()
	p, err := mozilla.Parse(bytes.NewReader(doc))
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, doc)
	}
	return p
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.file, func(t *testing.T) {
			p := tc.policy()
			got := mustParse(t, render(t, p, tc.address))
			if want := project(p); !reflect.DeepEqual(got, want) {
				t.Errorf("Parse(Render(p)) =\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

func TestParseGoldenFiles(t *testing.T) {
	for _, tc := range goldenCases {
		doc, err := os.ReadFile(filepath.Join("testdata", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := mustParse(t, doc), project(tc.policy()); !reflect.DeepEqual(got, want) {
			t.Errorf("%s parses to\n%+v\nwant\n%+v", tc.file, got, want)
		}
	}
}

func TestParseThirdParty(t *testing.T) {
	cases := []struct {
		file string
		want autoconfig.Policy
	}{
		{"thirdparty-ispdb.xml", autoconfig.Policy{
			Domain:      "provider.example",
			DisplayName: "Provider Mail",
			ShortName:   "Provider",
			IMAP:        []autoconfig.Endpoint{{Protocol: autoconfig.IMAP, Host: "imap.provider.example", Port: 993, Security: autoconfig.TLS}},
			POP3:        []autoconfig.Endpoint{{Protocol: autoconfig.POP3, Host: "pop.provider.example", Port: 995, Security: autoconfig.TLS}},
			Submission:  []autoconfig.Endpoint{{Protocol: autoconfig.SMTP, Host: "smtp.provider.example", Port: 587, Security: autoconfig.STARTTLS}},
			Prefer:      autoconfig.IMAP,
			Username:    autoconfig.LocalPart,
			Auth:        []autoconfig.AuthMethod{autoconfig.AuthPlain},
			// No pop3 block: Thunderbird's defaults.
			POP: autoconfig.POP3Policy{LeaveOnServer: true, DeleteAfterDays: 14},
		}},
		{"thirdparty-plain.xml", autoconfig.Policy{
			Domain:      "small.example",
			DisplayName: "Small & Plain",
			IMAP:        []autoconfig.Endpoint{{Protocol: autoconfig.IMAP, Host: "mail.small.example", Port: 143, Security: autoconfig.STARTTLS}},
			POP3:        []autoconfig.Endpoint{{Protocol: autoconfig.POP3, Host: "mail.small.example", Port: 110, Security: autoconfig.None}},
			Submission:  []autoconfig.Endpoint{{Protocol: autoconfig.SMTP, Host: "mail.small.example", Port: 25, Security: autoconfig.None}},
			Prefer:      autoconfig.POP3,
			// %EMAILLOCALPART%@%EMAILDOMAIN%, a literal address and
			// %EMAILADDRESS% are all the full address.
			Username: autoconfig.FullAddress,
			Auth:     []autoconfig.AuthMethod{autoconfig.AuthPlain},
			POP:      autoconfig.POP3Policy{LeaveOnServer: false},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			doc, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if got := mustParse(t, doc); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Parse =\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

// doc builds a minimal document around the emailProvider's servers.
func doc(servers string) string {
	return `<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1"><emailProvider id="example.com"><domain>example.com</domain><displayName>Example</displayName>` +
		servers + `</emailProvider></clientConfig>`
}

const (
	imapServer = `<incomingServer type="imap"><hostname>imap.example.com</hostname><port>993</port><socketType>SSL</socketType><username>%EMAILADDRESS%</username><authentication>password-cleartext</authentication></incomingServer>`
	smtpServer = `<outgoingServer type="smtp"><hostname>smtp.example.com</hostname><port>465</port><socketType>SSL</socketType><username>%EMAILADDRESS%</username><authentication>password-cleartext</authentication></outgoingServer>`
)

func pop3Server(block string) string {
	return `<incomingServer type="pop3"><hostname>pop.example.com</hostname><port>995</port><socketType>SSL</socketType><username>%EMAILADDRESS%</username><authentication>password-cleartext</authentication>` + block + `</incomingServer>`
}

func TestParseDetails(t *testing.T) {
	cases := []struct {
		name  string
		doc   string
		check func(t *testing.T, p autoconfig.Policy)
	}{
		{"pop3 block without days", doc(pop3Server(`<pop3><leaveMessagesOnServer>true</leaveMessagesOnServer></pop3>`) + smtpServer),
			func(t *testing.T, p autoconfig.Policy) {
				if p.POP != (autoconfig.POP3Policy{LeaveOnServer: true, DeleteAfterDays: 14}) {
					t.Errorf("POP = %+v, want leave, 14 days", p.POP)
				}
			}},
		{"empty pop3 block", doc(pop3Server(`<pop3/>`)),
			func(t *testing.T, p autoconfig.Policy) {
				if p.POP != (autoconfig.POP3Policy{LeaveOnServer: true, DeleteAfterDays: 14}) {
					t.Errorf("POP = %+v, want leave, 14 days", p.POP)
				}
			}},
		{"first pop3 server's block wins", doc(pop3Server(`<pop3><daysToLeaveMessagesOnServer>3</daysToLeaveMessagesOnServer></pop3>`) + pop3Server(`<pop3><leaveMessagesOnServer>false</leaveMessagesOnServer></pop3>`)),
			func(t *testing.T, p autoconfig.Policy) {
				if p.POP != (autoconfig.POP3Policy{LeaveOnServer: true, DeleteAfterDays: 3}) || len(p.POP3) != 2 {
					t.Errorf("POP = %+v with %d servers, want leave, 3 days, 2 servers", p.POP, len(p.POP3))
				}
			}},
		{"no pop3 server", doc(imapServer + smtpServer),
			func(t *testing.T, p autoconfig.Policy) {
				if p.POP != (autoconfig.POP3Policy{}) {
					t.Errorf("POP = %+v without a pop3 server, want zero", p.POP)
				}
				if p.Prefer != autoconfig.IMAP || p.Username != autoconfig.FullAddress {
					t.Errorf("Prefer %q Username %q", p.Prefer, p.Username)
				}
			}},
		{"local part in one server", doc(imapServer + strings.Replace(smtpServer, "%EMAILADDRESS%", "%EMAILLOCALPART%", 1)),
			func(t *testing.T, p autoconfig.Policy) {
				if p.Username != autoconfig.LocalPart {
					t.Errorf("Username = %q, want local-part", p.Username)
				}
			}},
		{"missing username", doc(imapServer + strings.Replace(smtpServer, "<username>%EMAILADDRESS%</username>", "", 1)),
			func(t *testing.T, p autoconfig.Policy) {
				if p.Username != autoconfig.LocalPart {
					t.Errorf("Username = %q, want local-part", p.Username)
				}
			}},
		{"literal address", doc(strings.ReplaceAll(imapServer+smtpServer, "%EMAILADDRESS%", "john@example.com")),
			func(t *testing.T, p autoconfig.Policy) {
				if p.Username != autoconfig.FullAddress {
					t.Errorf("Username = %q, want full-address", p.Username)
				}
			}},
		{"no cleartext password", doc(strings.ReplaceAll(imapServer+smtpServer, "password-cleartext", "password-encrypted")),
			func(t *testing.T, p autoconfig.Policy) {
				if p.Auth != nil {
					t.Errorf("Auth = %v, want nil", p.Auth)
				}
			}},
		{"no servers", doc(""),
			func(t *testing.T, p autoconfig.Policy) {
				if p.Prefer != "" || p.Username != "" || p.IMAP != nil || p.Submission != nil {
					t.Errorf("policy without servers: %+v", p)
				}
			}},
		{"exchange only", doc(`<incomingServer type="exchange"><hostname>outlook.office365.com</hostname><port>443</port><socketType>SSL</socketType></incomingServer>`),
			func(t *testing.T, p autoconfig.Policy) {
				if p.Prefer != "" || p.IMAP != nil || p.POP3 != nil {
					t.Errorf("exchange server was not skipped: %+v", p)
				}
			}},
		{"namespace and comments", strings.Replace(doc(imapServer), "<clientConfig ", `<!-- a comment --><?pi data?><clientConfig xmlns="urn:x" `, 1),
			func(t *testing.T, p autoconfig.Policy) {
				if p.Domain != "example.com" || len(p.IMAP) != 1 {
					t.Errorf("policy = %+v", p)
				}
			}},
		{"latin-1", strings.Replace(strings.Replace(doc(imapServer), `encoding="UTF-8"`, `encoding="ISO-8859-1"`, 1), "Example", "Soci\xe9t\xe9", 1),
			func(t *testing.T, p autoconfig.Policy) {
				if p.DisplayName != "Société" {
					t.Errorf("DisplayName = %q, want Société", p.DisplayName)
				}
			}},
		{"CDATA and whitespace", strings.Replace(doc(imapServer), "<displayName>Example</displayName>", "<displayName>\n  <![CDATA[A & <B>]]>\n</displayName>", 1) + "\n\n",
			func(t *testing.T, p autoconfig.Policy) {
				if p.DisplayName != "A & <B>" {
					t.Errorf("DisplayName = %q", p.DisplayName)
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.check(t, mustParse(t, []byte(tc.doc)))
		})
	}
}

func TestParseMalformed(t *testing.T) {
	cases := []struct {
		name, doc, want string
	}{
		{"empty", "", "no <clientConfig> element"},
		{"not XML", "hello, world", "text outside the root element"},
		{"HTML", "<html><body>Not found</body></html>", "root element <html>"},
		{"unclosed", `<clientConfig version="1.1"><emailProvider id="x">`, "unexpected EOF"},
		{"mismatched", `<clientConfig><emailProvider></clientConfig>`, "closed by"},
		{"second root", doc(imapServer) + "<clientConfig/>", "second root element"},
		{"trailing text", doc(imapServer) + "garbage", "text outside the root element"},
		{"unknown entity", strings.Replace(doc(imapServer), "Example", "&nbsp;", 1), "nbsp"},
		{"unsupported encoding", strings.Replace(doc(imapServer), "UTF-8", "windows-1252", 1), "windows-1252"},
		{"no emailProvider", `<clientConfig version="1.1"/>`, "no <emailProvider>"},
		{"two emailProviders", `<clientConfig><emailProvider id="a.example"><domain>a.example</domain></emailProvider><emailProvider id="b.example"><domain>b.example</domain></emailProvider></clientConfig>`, "2 <emailProvider> elements"},
		{"no domain", `<clientConfig><emailProvider id="a.example"></emailProvider></clientConfig>`, "no <domain>"},
		{"bad domain", strings.Replace(doc(imapServer), "<domain>example.com", "<domain>exa mple.com", 1), "domain 1"},
		{"incoming type", doc(strings.Replace(imapServer, `type="imap"`, `type="imap4"`, 1)), `incomingServer 1: type "imap4"`},
		{"outgoing type", doc(imapServer + strings.Replace(smtpServer, `type="smtp"`, `type="submission"`, 1)), `outgoingServer 1: type "submission"`},
		{"port not a number", doc(imapServer + strings.Replace(imapServer, "<port>993", "<port>x", 1)), `incomingServer 2: port "x": not a number`},
		{"port out of range", doc(imapServer + strings.Replace(smtpServer, "<port>465", "<port>70000", 1)), `outgoingServer 1: port "70000": out of range`},
		{"no port", doc(strings.Replace(imapServer, "<port>993</port>", "", 1)), "incomingServer 1: no port"},
		{"no hostname", doc(strings.Replace(imapServer, "<hostname>imap.example.com</hostname>", "<hostname> </hostname>", 1)), "incomingServer 1: no hostname"},
		{"lower-case ssl", doc(strings.Replace(imapServer, "<socketType>SSL", "<socketType>ssl", 1)), `incomingServer 1: socketType "ssl"`},
		{"TLS", doc(imapServer + strings.Replace(smtpServer, "<socketType>SSL", "<socketType>TLS", 1)), `outgoingServer 1: socketType "TLS"`},
		{"unknown second socketType", doc(strings.Replace(imapServer, "<socketType>SSL</socketType>", "<socketType>SSL</socketType><socketType>starttls</socketType>", 1)), `socketType "starttls"`},
		{"no socketType", doc(strings.Replace(imapServer, "<socketType>SSL</socketType>", "", 1)), "incomingServer 1: no socketType"},
		{"leave yes", doc(pop3Server(`<pop3><leaveMessagesOnServer>yes</leaveMessagesOnServer></pop3>`)), `incomingServer 1: pop3: leaveMessagesOnServer "yes"`},
		{"negative days", doc(pop3Server(`<pop3><daysToLeaveMessagesOnServer>-1</daysToLeaveMessagesOnServer></pop3>`)), `daysToLeaveMessagesOnServer "-1"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := mozilla.Parse(strings.NewReader(tc.doc))
			if !errors.Is(err, mozilla.ErrMalformed) {
				t.Fatalf("Parse = %+v, %v; want an ErrMalformed error", p, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if testing.Verbose() {
				t.Log(err)
			}
		})
	}
}

func TestParseRejectsDTD(t *testing.T) {
	cases := map[string]string{
		"external entity": `<?xml version="1.0"?>
<!DOCTYPE clientConfig [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<clientConfig version="1.1"><emailProvider id="example.com"><domain>example.com</domain><displayName>&xxe;</displayName></emailProvider></clientConfig>`,
		"entity expansion": `<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<clientConfig><emailProvider id="example.com"><domain>example.com</domain><displayName>&lol2;</displayName></emailProvider></clientConfig>`,
		"external DTD":       `<!DOCTYPE clientConfig SYSTEM "http://attacker.example/x.dtd"><clientConfig/>`,
		"lower-case doctype": `<!doctype clientConfig><clientConfig/>`,
		"DOCTYPE inside":     `<clientConfig><!DOCTYPE x><emailProvider/></clientConfig>`,
	}
	for name, d := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := mozilla.Parse(strings.NewReader(d))
			if !errors.Is(err, mozilla.ErrMalformed) || !strings.Contains(err.Error(), "DTD") {
				t.Errorf("Parse error = %v, want an ErrMalformed error about the DTD", err)
			}
		})
	}
}

// countingReader counts what Parse reads.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// endless yields the same byte forever.
type endless byte

func (e endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(e)
	}
	return len(p), nil
}

func TestParseSizeLimit(t *testing.T) {
	small := []byte(doc(imapServer + smtpServer))
	pad := func(total int) []byte {
		// White space after the root element is allowed.
		return append(append([]byte{}, small...), bytes.Repeat([]byte{' '}, total-len(small))...)
	}
	if _, err := mozilla.Parse(bytes.NewReader(pad(mozilla.MaxDocumentBytes))); err != nil {
		t.Errorf("document of exactly MaxDocumentBytes: %v", err)
	}
	if _, err := mozilla.Parse(bytes.NewReader(pad(mozilla.MaxDocumentBytes + 1))); !errors.Is(err, mozilla.ErrTooLarge) {
		t.Errorf("document one byte over the limit: %v, want ErrTooLarge", err)
	}
	cr := &countingReader{r: endless('<')}
	if _, err := mozilla.Parse(cr); !errors.Is(err, mozilla.ErrTooLarge) {
		t.Errorf("endless input: %v, want ErrTooLarge", err)
	}
	if cr.n > mozilla.MaxDocumentBytes+1 {
		t.Errorf("Parse read %d bytes of an endless input, want at most %d", cr.n, mozilla.MaxDocumentBytes+1)
	}
}

func TestParseReadError(t *testing.T) {
	boom := errors.New("connection reset")
	_, err := mozilla.Parse(io.MultiReader(strings.NewReader("<clientConfig>"), iotest.ErrReader(boom)))
	if !errors.Is(err, boom) || errors.Is(err, mozilla.ErrMalformed) {
		t.Errorf("Parse error = %v, want the read error, not ErrMalformed", err)
	}
}

// TestParsedPolicyValidates: a parsed sample policy, completed with what
// the format does not carry, is a valid policy again.
func TestParsedPolicyValidates(t *testing.T) {
	for _, src := range []autoconfig.Policy{testkit.IMAPFirst(), testkit.POPFirst()} {
		p := mustParse(t, render(t, src, ""))
		p.MX, p.Web, p.Auth = src.MX, src.Web, src.Auth
		if err := p.Validate(); err != nil {
			t.Errorf("%s: %v", src.Domain, err)
		}
	}
}
