package mozilla

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"slices"
	"strings"

	"mailsetup/autoconfig"
)

// outConfig is the root element Render writes. Render and Parse use
// separate types: these write exactly one schema, Parse's accept what
// third-party files contain.
type outConfig struct {
	XMLName  xml.Name    `xml:"clientConfig"`
	Version  string      `xml:"version,attr"`
	Provider outProvider `xml:"emailProvider"`
}

type outProvider struct {
	ID               string            `xml:"id,attr"`
	Domain           []outDomain       `xml:"domain"`
	DisplayName      string            `xml:"displayName"`
	DisplayShortName string            `xml:"displayShortName"`
	Incoming         []outServer       `xml:"incomingServer"`
	Outgoing         []outServer       `xml:"outgoingServer"`
	Documentation    *outDocumentation `xml:"documentation"`
}

// outDomain is a domain element; Purpose "mx" (autoconfig 1.2) marks
// the hoster's MX domain.
type outDomain struct {
	Purpose string `xml:"purpose,attr,omitempty"`
	Name    string `xml:",chardata"`
}

type outServer struct {
	Type           string  `xml:"type,attr"`
	Hostname       string  `xml:"hostname"`
	Port           int     `xml:"port"`
	SocketType     string  `xml:"socketType"`
	Username       string  `xml:"username"`
	Authentication string  `xml:"authentication"`
	POP3           *outPOP `xml:"pop3"`
}

type outPOP struct {
	LeaveMessagesOnServer bool `xml:"leaveMessagesOnServer"`
	// DaysToLeaveMessagesOnServer is written only when messages are left.
	DaysToLeaveMessagesOnServer *int `xml:"daysToLeaveMessagesOnServer"`
	DownloadOnBiff              bool `xml:"downloadOnBiff"`
}

type outDocumentation struct {
	URL   string   `xml:"url,attr"`
	Descr outDescr `xml:"descr"`
}

type outDescr struct {
	Lang string `xml:"lang,attr"`
	Text string `xml:",chardata"`
}

// Render writes the clientConfig document for p to w: version 1.2 of
// draft-ietf-mailmaint-autoconfig (DraftRevision), which Thunderbird
// reads as it reads 1.1 (it ignores the version and, under the draft's
// must-ignore rule, clients of 1.2 ignore the Thunderbird-only pop3
// block). What 1.2 adds that the policy can say: a domain element with
// purpose="mx" for each MX host's parent domain that is not the mail
// domain itself, and the draft's limits on the names (displayName at
// most 60 characters, displayShortName at most 20).
//
// address is the user's email address (from ?emailaddress=); it becomes
// the username of every server. When it is "", every username is the
// %EMAILADDRESS% placeholder instead. A non-empty address that is not a
// plain name@domain is an error wrapping autoconfig.ErrMalformedAddress.
//
// Incoming servers follow p.Incoming() (preferred protocol first),
// outgoing servers p.Submission; endpoints without TLS (security none) are
// left out, because Android clients reject a whole file that has one;
// every server uses password-cleartext
// authentication, and pop3 servers carry a pop3 block with p.POP. An empty
// ShortName falls back to DisplayName, an empty DisplayName to Domain. A
// documentation link to p.Web.BaseURL is added when it is set.
//
// The output is deterministic, and nothing is written to w when Render
// returns an error.
func Render(w io.Writer, p autoconfig.Policy, address string) error {
	doc, err := build(p, address)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	enc := xml.NewEncoder(&buf)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("mozilla autoconfig for %s: %w", p.Domain, err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("mozilla autoconfig for %s: %w", p.Domain, err)
	}
	buf.WriteByte('\n')
	_, err = w.Write(buf.Bytes())
	return err
}

// build maps the policy onto the document, checking what the document
// needs from it.
func build(p autoconfig.Policy, address string) (outConfig, error) {
	fail := func(format string, args ...any) (outConfig, error) {
		return outConfig{}, fmt.Errorf("mozilla autoconfig for %q: "+format, append([]any{p.Domain}, args...)...)
	}
	if err := autoconfig.ValidDomain(p.Domain); err != nil {
		return fail("emailProvider id: %v", err)
	}
	username := placeholderAddress
	if address != "" {
		a, err := autoconfig.ParseAddress(address)
		if err != nil {
			return fail("username: %w", err)
		}
		username = p.UsernameFor(a.String())
	}

	displayName := p.DisplayName
	if strings.TrimSpace(displayName) == "" {
		displayName = p.Domain
	}
	shortName := p.ShortName
	if strings.TrimSpace(shortName) == "" {
		shortName = displayName
	}
	prov := outProvider{
		ID:               p.Domain,
		Domain:           []outDomain{{Name: p.Domain}},
		DisplayName:      truncateRunes(displayName, maxDisplayName),
		DisplayShortName: truncateRunes(shortName, maxShortName),
	}
	for _, mx := range p.MX {
		_, parent, ok := strings.Cut(strings.TrimSuffix(strings.ToLower(mx.Host), "."), ".")
		if !ok || parent == p.Domain || !strings.Contains(parent, ".") || autoconfig.ValidDomain(parent) != nil {
			continue
		}
		d := outDomain{Purpose: "mx", Name: parent}
		if !slices.Contains(prov.Domain, d) {
			prov.Domain = append(prov.Domain, d)
		}
	}

	for i, e := range p.Incoming() {
		if e.Security == autoconfig.None {
			// K-9 / Thunderbird for Android reject the whole file when
			// any server says socketType plain, and no client should be
			// set up to send a password in the clear.
			continue
		}
		if e.Protocol != autoconfig.IMAP && e.Protocol != autoconfig.POP3 {
			return fail("incoming endpoint %d (%s): protocol %q: want imap or pop3", i+1, e, e.Protocol)
		}
		s, err := server(e, username)
		if err != nil {
			return fail("incoming endpoint %d (%s): %v", i+1, e, err)
		}
		if e.Protocol == autoconfig.POP3 {
			pop := &outPOP{LeaveMessagesOnServer: p.POP.LeaveOnServer, DownloadOnBiff: true}
			if p.POP.LeaveOnServer {
				days := p.POP.DeleteAfterDays
				pop.DaysToLeaveMessagesOnServer = &days
			}
			s.POP3 = pop
		}
		prov.Incoming = append(prov.Incoming, s)
	}
	for i, e := range p.Submission {
		if e.Security == autoconfig.None {
			continue // as above
		}
		if e.Protocol != autoconfig.SMTP {
			return fail("submission endpoint %d (%s): protocol %q: want smtp", i+1, e, e.Protocol)
		}
		s, err := server(e, username)
		if err != nil {
			return fail("submission endpoint %d (%s): %v", i+1, e, err)
		}
		prov.Outgoing = append(prov.Outgoing, s)
	}

	if p.Web.BaseURL != "" {
		prov.Documentation = &outDocumentation{
			URL: strings.TrimSuffix(p.Web.BaseURL, "/") + "/",
			Descr: outDescr{
				Lang: "en",
				Text: "How to set up a mail client for " + p.Domain,
			},
		}
	}
	return outConfig{Version: "1.2", Provider: prov}, nil
}

// The draft's hard limits on the provider's names (characters).
const (
	maxDisplayName = 60
	maxShortName   = 20
)

// DraftRevision is the autoconfig draft the documents follow.
const DraftRevision = "draft-ietf-mailmaint-autoconfig-06"

// truncateRunes cuts s to at most n characters.
func truncateRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}

// server maps one endpoint onto a server element (without the pop3 block).
func server(e autoconfig.Endpoint, username string) (outServer, error) {
	socket, err := socketType(e.Security)
	if err != nil {
		return outServer{}, err
	}
	if e.Host == "" {
		return outServer{}, fmt.Errorf("empty host name")
	}
	if e.Port < 1 || e.Port > 65535 {
		return outServer{}, fmt.Errorf("port %d out of range 1..65535", e.Port)
	}
	return outServer{
		Type:           string(e.Protocol),
		Hostname:       e.Host,
		Port:           e.Port,
		SocketType:     socket,
		Username:       username,
		Authentication: authCleartext,
	}, nil
}

// socketType returns the document's name for a connection security.
func socketType(s autoconfig.Security) (string, error) {
	switch s {
	case autoconfig.TLS:
		return socketSSL, nil
	case autoconfig.STARTTLS:
		return socketSTARTTLS, nil
	case autoconfig.None:
		return socketPlain, nil
	}
	return "", fmt.Errorf("security %q: want tls, starttls or none", s)
}
