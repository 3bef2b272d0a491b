package mozilla

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"mailsetup/autoconfig"
)

// The elements Parse reads. Every element that third-party files may
// repeat is a slice; like Thunderbird, Parse uses the first occurrence.
// Elements the policy has no field for (webMail, oAuth2, enable,
// inputField, clientConfigUpdate, documentation, ...) are ignored.
type inConfig struct {
	XMLName   xml.Name     `xml:"clientConfig"`
	Providers []inProvider `xml:"emailProvider"`
}

type inProvider struct {
	ID               *string    `xml:"id,attr"`
	Domain           []string   `xml:"domain"`
	DisplayName      []string   `xml:"displayName"`
	DisplayShortName []string   `xml:"displayShortName"`
	Incoming         []inServer `xml:"incomingServer"`
	Outgoing         []inServer `xml:"outgoingServer"`
}

type inServer struct {
	Type           string   `xml:"type,attr"`
	Hostname       []string `xml:"hostname"`
	Port           []string `xml:"port"`
	SocketType     []string `xml:"socketType"`
	Username       []string `xml:"username"`
	Authentication []string `xml:"authentication"`
	POP3           []inPOP  `xml:"pop3"`
}

type inPOP struct {
	LeaveMessagesOnServer       []string `xml:"leaveMessagesOnServer"`
	DaysToLeaveMessagesOnServer []string `xml:"daysToLeaveMessagesOnServer"`
}

// Parse reads a clientConfig document (ours or anyone's) back into the
// policy fields the format carries:
//
//   - Domain: the first emailProvider/domain, lower-cased, which must be a
//     valid host name;
//   - DisplayName and ShortName: displayName and displayShortName;
//   - IMAP, POP3 and Submission: the imap, pop3 and smtp servers in
//     document order, with %EMAILDOMAIN% in a hostname replaced by Domain
//     (nntp and exchange servers are skipped);
//   - Prefer: the protocol of the first imap or pop3 incomingServer;
//   - Username: autoconfig.FullAddress when every server's username is
//     %EMAILADDRESS% or otherwise contains an '@'; autoconfig.LocalPart
//     when any is %EMAILLOCALPART%, has no '@' or is missing;
//   - Auth: [autoconfig.AuthPlain] when a server offers
//     password-cleartext (or its old alias "plain"), otherwise nil;
//   - POP: from the pop3 block of the first pop3 server. A missing block
//     or element means Thunderbird's built-in defaults: leave messages on
//     the server, for 14 days. DeleteAfterDays is 0 when messages are not
//     left. POP stays zero when the document has no pop3 server.
//
// MX, Web and POP.ExpireDays are not in the format and stay zero. Parse
// does not validate the result as a policy; call Validate for that.
//
// Parse reads at most MaxDocumentBytes+1 bytes: longer input is
// ErrTooLarge. A leading byte order mark and surrounding white space are
// accepted. Any DTD (DOCTYPE, ENTITY, ...) is rejected, so no entity is
// ever expanded. Other format errors wrap ErrMalformed and say where the
// problem is, e.g. `incomingServer 2: port "x": not a number`. Errors
// reading r are returned as they are.
func Parse(r io.Reader) (autoconfig.Policy, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxDocumentBytes+1))
	if err != nil {
		return autoconfig.Policy{}, fmt.Errorf("reading autoconfig document: %w", err)
	}
	if len(data) > MaxDocumentBytes {
		return autoconfig.Policy{}, ErrTooLarge
	}
	data = bytes.TrimPrefix(data, []byte("\uFEFF"))
	data = bytes.TrimLeft(data, " \t\r\n")

	if err := scan(data); err != nil {
		return autoconfig.Policy{}, err
	}
	var doc inConfig
	if err := newDecoder(data).Decode(&doc); err != nil {
		return autoconfig.Policy{}, malformed("%v", err)
	}
	return toPolicy(doc)
}

// malformed returns an error wrapping ErrMalformed.
func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

func newDecoder(data []byte) *xml.Decoder {
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	d.CharsetReader = charsetReader
	return d
}

// scan checks the whole token stream before any of it is decoded: well
// formed, no directive (DOCTYPE, ENTITY, ...), exactly one root element,
// named clientConfig, and nothing but white space, comments and
// processing instructions around it.
func scan(data []byte) error {
	d := newDecoder(data)
	depth, roots := 0, 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return malformed("%v", err)
		}
		switch t := tok.(type) {
		case xml.Directive:
			return malformed("line %d: DTD declarations (<!%.20s...>) are not allowed", line(d), t)
		case xml.StartElement:
			if depth == 0 {
				roots++
				if roots > 1 {
					return malformed("line %d: a second root element <%s>", line(d), t.Name.Local)
				}
				if t.Name.Local != "clientConfig" {
					return malformed("root element <%s>: want <clientConfig>", t.Name.Local)
				}
			}
			depth++
		case xml.EndElement:
			depth--
		case xml.CharData:
			if depth == 0 && len(bytes.TrimSpace(t)) > 0 {
				return malformed("line %d: text outside the root element", line(d))
			}
		}
	}
	if roots == 0 {
		return malformed("no <clientConfig> element")
	}
	return nil
}

func line(d *xml.Decoder) int {
	l, _ := d.InputPos()
	return l
}

// charsetReader lets documents declare ISO-8859-1 or US-ASCII besides
// UTF-8 (which encoding/xml reads itself); other encodings are rejected.
func charsetReader(charset string, input io.Reader) (io.Reader, error) {
	switch strings.ToLower(charset) {
	case "iso-8859-1", "iso8859-1", "latin1", "us-ascii", "ascii":
		return &latin1Reader{r: bufio.NewReader(input)}, nil
	}
	return nil, fmt.Errorf("encoding %q is not supported: want UTF-8", charset)
}

// latin1Reader decodes ISO-8859-1 (a superset of US-ASCII) to UTF-8.
type latin1Reader struct {
	r       io.ByteReader
	pending []byte // encoded bytes not yet returned
}

func (l *latin1Reader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(l.pending) > 0 {
			c := copy(p[n:], l.pending)
			l.pending = l.pending[c:]
			n += c
			continue
		}
		b, err := l.r.ReadByte()
		if err != nil {
			if n > 0 && err == io.EOF {
				return n, nil
			}
			return n, err
		}
		if b < utf8.RuneSelf {
			p[n] = b
			n++
			continue
		}
		l.pending = utf8.AppendRune(l.pending[:0], rune(b))
	}
	return n, nil
}

// toPolicy maps the decoded document onto the policy.
func toPolicy(doc inConfig) (autoconfig.Policy, error) {
	var p autoconfig.Policy
	switch len(doc.Providers) {
	case 0:
		return autoconfig.Policy{}, malformed("no <emailProvider> element")
	case 1:
	default:
		return autoconfig.Policy{}, malformed("%d <emailProvider> elements: want one", len(doc.Providers))
	}
	prov := doc.Providers[0]

	if len(prov.Domain) == 0 {
		return autoconfig.Policy{}, malformed("emailProvider has no <domain>")
	}
	p.Domain = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(prov.Domain[0])), ".")
	if err := autoconfig.ValidHost(p.Domain); err != nil {
		return autoconfig.Policy{}, malformed("domain 1: %v", err)
	}
	p.DisplayName = first(prov.DisplayName)
	p.ShortName = first(prov.DisplayShortName)

	// noteUser records a server's username form and authentication.
	usernames := 0
	fullAddress := true
	noteUser := func(s inServer) {
		usernames++
		if u := first(s.Username); u != placeholderAddress && !strings.Contains(u, "@") {
			fullAddress = false // %EMAILLOCALPART%, a bare name or no username
		}
		for _, a := range s.Authentication {
			if a = strings.TrimSpace(a); a == authCleartext || a == authPlainAlias {
				p.Auth = []autoconfig.AuthMethod{autoconfig.AuthPlain}
			}
		}
	}

	popSeen := false
	for i, s := range prov.Incoming {
		where := fmt.Sprintf("incomingServer %d", i+1)
		var proto autoconfig.Protocol
		switch s.Type {
		case "imap":
			proto = autoconfig.IMAP
		case "pop3":
			proto = autoconfig.POP3
		case "nntp", "exchange":
			continue // valid in the format, not part of a mail policy
		default:
			return autoconfig.Policy{}, malformed("%s: type %q: want imap or pop3", where, s.Type)
		}
		e, err := endpoint(proto, s, p.Domain)
		if err != nil {
			return autoconfig.Policy{}, malformed("%s: %v", where, err)
		}
		if p.Prefer == "" {
			p.Prefer = proto
		}
		if proto == autoconfig.IMAP {
			p.IMAP = append(p.IMAP, e)
		} else {
			p.POP3 = append(p.POP3, e)
			if !popSeen {
				popSeen = true
				pop, err := popPolicy(s)
				if err != nil {
					return autoconfig.Policy{}, malformed("%s: %v", where, err)
				}
				p.POP = pop
			}
		}
		noteUser(s)
	}
	for i, s := range prov.Outgoing {
		where := fmt.Sprintf("outgoingServer %d", i+1)
		if s.Type != "smtp" {
			return autoconfig.Policy{}, malformed("%s: type %q: want smtp", where, s.Type)
		}
		e, err := endpoint(autoconfig.SMTP, s, p.Domain)
		if err != nil {
			return autoconfig.Policy{}, malformed("%s: %v", where, err)
		}
		p.Submission = append(p.Submission, e)
		noteUser(s)
	}
	if usernames > 0 {
		p.Username = autoconfig.LocalPart
		if fullAddress {
			p.Username = autoconfig.FullAddress
		}
	}
	return p, nil
}

// endpoint reads a server's hostname, port and socketType.
func endpoint(proto autoconfig.Protocol, s inServer, domain string) (autoconfig.Endpoint, error) {
	e := autoconfig.Endpoint{Protocol: proto}
	// Host names are case-insensitive; lower-casing also turns the
	// %EMAILDOMAIN% placeholder into its lower-case form.
	host := strings.ToLower(first(s.Hostname))
	if host == "" {
		return e, errors.New("no hostname")
	}
	e.Host = strings.ReplaceAll(host, strings.ToLower(placeholderDomain), domain)

	if len(s.Port) == 0 {
		return e, errors.New("no port")
	}
	port := strings.TrimSpace(s.Port[0])
	n, err := strconv.Atoi(port)
	if err != nil {
		return e, fmt.Errorf("port %q: not a number", port)
	}
	if n < 1 || n > 65535 {
		return e, fmt.Errorf("port %q: out of range 1..65535", port)
	}
	e.Port = n

	// Thunderbird takes the first socketType it knows; an unknown one here
	// is an error so that a typo ("ssl", "TLS") is reported, not skipped.
	if len(s.SocketType) == 0 {
		return e, errors.New("no socketType")
	}
	for i, st := range s.SocketType {
		var sec autoconfig.Security
		switch st = strings.TrimSpace(st); st {
		case socketSSL:
			sec = autoconfig.TLS
		case socketSTARTTLS:
			sec = autoconfig.STARTTLS
		case socketPlain:
			sec = autoconfig.None
		default:
			return e, fmt.Errorf("socketType %q: want SSL, STARTTLS or plain (case-sensitive)", st)
		}
		if i == 0 {
			e.Security = sec
		}
	}
	return e, nil
}

// popPolicy reads a pop3 server's pop3 block, applying Thunderbird's
// defaults for what is missing.
func popPolicy(s inServer) (autoconfig.POP3Policy, error) {
	leave, days := defaultLeaveOnServer, defaultDaysOnServer
	if len(s.POP3) > 0 {
		block := s.POP3[0]
		if len(block.LeaveMessagesOnServer) > 0 {
			v := strings.TrimSpace(block.LeaveMessagesOnServer[0])
			switch v {
			case "true":
				leave = true
			case "false":
				leave = false
			default:
				return autoconfig.POP3Policy{}, fmt.Errorf("pop3: leaveMessagesOnServer %q: want true or false", v)
			}
		}
		if len(block.DaysToLeaveMessagesOnServer) > 0 {
			v := strings.TrimSpace(block.DaysToLeaveMessagesOnServer[0])
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return autoconfig.POP3Policy{}, fmt.Errorf("pop3: daysToLeaveMessagesOnServer %q: want a whole number of days", v)
			}
			days = n
		}
	}
	if !leave {
		days = 0
	}
	return autoconfig.POP3Policy{LeaveOnServer: leave, DeleteAfterDays: days}, nil
}

// first returns the first value, trimmed, or "".
func first(values []string) string {
	if len(values) == 0 {
		return ""
	}
	return strings.TrimSpace(values[0])
}
