package mozilla_test

import (
	"bytes"
	"encoding/xml"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"mailsetup/autoconfig"
	"mailsetup/autoconfig/mozilla"
	"mailsetup/internal/testkit"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// goldenCases are the documents kept in testdata; FuzzParse seeds from
// them too.
var goldenCases = []struct {
	file    string
	policy  func() autoconfig.Policy
	address string
}{
	{"imap-first.golden.xml", testkit.IMAPFirst, "john@example.com"},
	{"pop-first.golden.xml", testkit.POPFirst, "jane.doe@pop-first.test"},
	{"imap-first-placeholder.golden.xml", testkit.IMAPFirst, ""},
}

func render(t testing.TB, p autoconfig.Policy, address string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := mozilla.Render(&buf, p, address); err != nil {
		t.Fatalf("Render(%s, %q): %v", p.Domain, address, err)
	}
	return buf.Bytes()
}

func TestRenderGolden(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.file, func(t *testing.T) {
			got := render(t, tc.policy(), tc.address)
			if again := render(t, tc.policy(), tc.address); !bytes.Equal(got, again) {
				t.Fatal("two renders of the same policy differ")
			}
			path := filepath.Join("testdata", tc.file)
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./autoconfig/mozilla/ -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("Render differs from %s (rerun with -update after checking the change)\ngot:\n%s\nwant:\n%s", path, got, want)
			}
		})
	}
}

// TestRenderShape checks the rendered documents with an XML decoder, not
// by comparing text: what Android and Thunderbird need is there.
func TestRenderShape(t *testing.T) {
	type server struct {
		Type           string   `xml:"type,attr"`
		Hostname       string   `xml:"hostname"`
		Port           string   `xml:"port"`
		SocketType     []string `xml:"socketType"`
		Username       []string `xml:"username"`
		Authentication []string `xml:"authentication"`
		POP3           *struct {
			Children []struct {
				XMLName xml.Name
				Text    string `xml:",chardata"`
			} `xml:",any"`
		} `xml:"pop3"`
	}
	type doc struct {
		XMLName  xml.Name
		Version  string `xml:"version,attr"`
		Provider []struct {
			ID               string   `xml:"id,attr"`
			Domain           []string `xml:"domain"`
			DisplayName      string   `xml:"displayName"`
			DisplayShortName string   `xml:"displayShortName"`
			Incoming         []server `xml:"incomingServer"`
			Outgoing         []server `xml:"outgoingServer"`
			Documentation    []struct {
				URL   string `xml:"url,attr"`
				Descr []struct {
					Lang string `xml:"lang,attr"`
					Text string `xml:",chardata"`
				} `xml:"descr"`
			} `xml:"documentation"`
		} `xml:"emailProvider"`
	}

	for _, tc := range goldenCases {
		t.Run(tc.file, func(t *testing.T) {
			p := tc.policy()
			out := render(t, p, tc.address)
			if !bytes.HasPrefix(out, []byte(`<?xml version="1.0" encoding="UTF-8"?>`+"\n<clientConfig")) {
				t.Errorf("document does not start with the XML header and <clientConfig>:\n%.80s", out)
			}
			if bytes.Contains(out, []byte("xmlns")) {
				t.Error("document has a namespace")
			}
			var d doc
			if err := xml.Unmarshal(out, &d); err != nil {
				t.Fatalf("rendered document is not XML: %v", err)
			}
			if d.XMLName.Local != "clientConfig" || d.XMLName.Space != "" || d.Version != "1.2" {
				t.Errorf("root = %v version %q, want clientConfig version 1.2", d.XMLName, d.Version)
			}
			if len(d.Provider) != 1 {
				t.Fatalf("%d emailProvider elements, want 1", len(d.Provider))
			}
			prov := d.Provider[0]
			if prov.ID != p.Domain || len(prov.Domain) != 1 || prov.Domain[0] != p.Domain {
				t.Errorf("emailProvider id %q, domains %q; want %q", prov.ID, prov.Domain, p.Domain)
			}
			if prov.DisplayName != p.DisplayName || prov.DisplayShortName != p.ShortName {
				t.Errorf("names %q / %q, want %q / %q", prov.DisplayName, prov.DisplayShortName, p.DisplayName, p.ShortName)
			}
			wantUser := tc.address
			if wantUser == "" {
				wantUser = "%EMAILADDRESS%"
			}
			check := func(where string, s server, e autoconfig.Endpoint) {
				t.Helper()
				wantSocket := map[autoconfig.Security]string{autoconfig.TLS: "SSL", autoconfig.STARTTLS: "STARTTLS", autoconfig.None: "plain"}[e.Security]
				if s.Type != string(e.Protocol) || s.Hostname != e.Host || s.Port != strconv.Itoa(e.Port) ||
					len(s.SocketType) != 1 || s.SocketType[0] != wantSocket {
					t.Errorf("%s = %s %s:%s %v, want %s", where, s.Type, s.Hostname, s.Port, s.SocketType, e)
				}
				if len(s.Username) != 1 || s.Username[0] != wantUser {
					t.Errorf("%s: username %q, want exactly one %q", where, s.Username, wantUser)
				}
				if len(s.Authentication) != 1 || s.Authentication[0] != "password-cleartext" {
					t.Errorf("%s: authentication %q, want password-cleartext", where, s.Authentication)
				}
			}
			in := p.Incoming()
			if len(prov.Incoming) != len(in) {
				t.Fatalf("%d incomingServer elements, want %d", len(prov.Incoming), len(in))
			}
			for i, s := range prov.Incoming {
				check("incomingServer "+strconv.Itoa(i+1), s, in[i])
				switch {
				case s.Type != "pop3" && s.POP3 != nil:
					t.Errorf("incomingServer %d (%s) has a pop3 block", i+1, s.Type)
				case s.Type == "pop3" && s.POP3 == nil:
					t.Errorf("incomingServer %d (pop3) has no pop3 block", i+1)
				case s.Type == "pop3":
					var children []string
					for _, c := range s.POP3.Children {
						children = append(children, c.XMLName.Local+"="+c.Text)
					}
					got := strings.Join(children, " ")
					want := "leaveMessagesOnServer=true daysToLeaveMessagesOnServer=" + strconv.Itoa(p.POP.DeleteAfterDays) + " downloadOnBiff=true"
					if got != want {
						t.Errorf("incomingServer %d pop3 block: %s\nwant %s", i+1, got, want)
					}
				}
			}
			if len(prov.Outgoing) != len(p.Submission) {
				t.Fatalf("%d outgoingServer elements, want %d", len(prov.Outgoing), len(p.Submission))
			}
			for i, s := range prov.Outgoing {
				check("outgoingServer "+strconv.Itoa(i+1), s, p.Submission[i])
				if s.POP3 != nil {
					t.Errorf("outgoingServer %d has a pop3 block", i+1)
				}
			}
			if len(prov.Documentation) != 1 || prov.Documentation[0].URL != p.Web.BaseURL+"/" ||
				len(prov.Documentation[0].Descr) != 1 || prov.Documentation[0].Descr[0].Lang != "en" ||
				prov.Documentation[0].Descr[0].Text == "" {
				t.Errorf("documentation = %+v, want one with url %q and an English descr", prov.Documentation, p.Web.BaseURL+"/")
			}
		})
	}
}

func TestRenderEscapes(t *testing.T) {
	out := string(render(t, testkit.IMAPFirst(), ""))
	want := "<displayName>Example Mail &amp; Co &lt;Test&gt;</displayName>"
	if !strings.Contains(out, want) {
		t.Errorf("display name not escaped; want %s in\n%s", want, out)
	}
	// An address is escaped too (it comes from the query string).
	p := testkit.IMAPFirst()
	out = string(render(t, p, "o'neil&co@example.com"))
	if !strings.Contains(out, "<username>o&#39;neil&amp;co@example.com</username>") {
		t.Errorf("address not escaped:\n%s", out)
	}
}

func TestRenderPOPLeaveFalse(t *testing.T) {
	p := testkit.POPFirst()
	p.POP = autoconfig.POP3Policy{LeaveOnServer: false}
	out := string(render(t, p, ""))
	if !strings.Contains(out, "<leaveMessagesOnServer>false</leaveMessagesOnServer>") {
		t.Errorf("no leaveMessagesOnServer false in\n%s", out)
	}
	if strings.Contains(out, "daysToLeaveMessagesOnServer") {
		t.Errorf("daysToLeaveMessagesOnServer written although messages are not left:\n%s", out)
	}
}

func TestRenderFallbacks(t *testing.T) {
	p := testkit.POPFirst()
	p.ShortName = ""
	p.Web.BaseURL = ""
	out := string(render(t, p, ""))
	if !strings.Contains(out, "<displayShortName>POP First ISP</displayShortName>") {
		t.Errorf("empty ShortName does not fall back to DisplayName:\n%s", out)
	}
	if strings.Contains(out, "documentation") {
		t.Errorf("documentation written without a BaseURL:\n%s", out)
	}
	p.DisplayName = " "
	out = string(render(t, p, ""))
	if !strings.Contains(out, "<displayName>pop-first.test</displayName>") {
		t.Errorf("empty DisplayName does not fall back to the domain:\n%s", out)
	}
}

func TestRenderErrors(t *testing.T) {
	cases := []struct {
		name    string
		edit    func(*autoconfig.Policy)
		address string
		want    string
	}{
		{"bad address", nil, "john", "username"},
		{"address with spaces", nil, "john doe@example.com", "username"},
		{"bad domain", func(p *autoconfig.Policy) { p.Domain = "Example.com" }, "", "emailProvider id"},
		{"empty domain", func(p *autoconfig.Policy) { p.Domain = "" }, "", "emailProvider id"},
		{"unknown security", func(p *autoconfig.Policy) { p.IMAP[1].Security = "ssl" }, "", `incoming endpoint 2 (imap imap.example.com:143 ssl): security "ssl"`},
		{"smtp in imap list", func(p *autoconfig.Policy) { p.IMAP[0].Protocol = autoconfig.SMTP }, "", `incoming endpoint 1`},
		{"imap in submission list", func(p *autoconfig.Policy) { p.Submission[1].Protocol = autoconfig.IMAP }, "", `submission endpoint 2`},
		{"port 0", func(p *autoconfig.Policy) { p.Submission[0].Port = 0 }, "", "port 0 out of range"},
		{"port too big", func(p *autoconfig.Policy) { p.POP3[0].Port = 65536 }, "", "port 65536 out of range"},
		{"no host", func(p *autoconfig.Policy) { p.POP3[0].Host = "" }, "", "empty host name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := testkit.IMAPFirst()
			if tc.edit != nil {
				tc.edit(&p)
			}
			var buf bytes.Buffer
			err := mozilla.Render(&buf, p, tc.address)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Render error = %v, want one containing %q", err, tc.want)
			}
			if buf.Len() != 0 {
				t.Errorf("Render wrote %d bytes before failing", buf.Len())
			}
		})
	}
	var buf bytes.Buffer
	err := mozilla.Render(&buf, testkit.IMAPFirst(), "not-an-address")
	if !errors.Is(err, autoconfig.ErrMalformedAddress) {
		t.Errorf("bad address error %v does not wrap autoconfig.ErrMalformedAddress", err)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestRenderWriteError(t *testing.T) {
	if err := mozilla.Render(failWriter{}, testkit.IMAPFirst(), ""); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Render to a failing writer = %v, want the write error", err)
	}
}

// TestRenderLeavesOutPlaintext: K-9 / Thunderbird for Android reject the
// whole document if any server says socketType plain.
func TestRenderLeavesOutPlaintext(t *testing.T) {
	p := testkit.IMAPFirst()
	p.IMAP = append(p.IMAP, autoconfig.Endpoint{Protocol: autoconfig.IMAP, Host: "imap.example.com", Port: 1143, Security: autoconfig.None})
	p.Submission = append(p.Submission, autoconfig.Endpoint{Protocol: autoconfig.SMTP, Host: "smtp.example.com", Port: 2525, Security: autoconfig.None})
	var buf bytes.Buffer
	if err := mozilla.Render(&buf, p, "john@example.com"); err != nil {
		t.Fatal(err)
	}
	if s := buf.String(); strings.Contains(s, "plain") || strings.Contains(s, "1143") || strings.Contains(s, "2525") {
		t.Errorf("plaintext endpoint rendered:\n%s", s)
	}
}
