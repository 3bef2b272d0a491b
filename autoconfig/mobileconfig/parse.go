package mobileconfig

import (
	"bytes"
	"encoding/asn1"
	"fmt"
	"strings"

	"github.com/smallstep/pkcs7"

	"mailsetup/autoconfig"
)

// MaxSize is the largest profile, plain or signed, that Parse and Content
// accept. A mail profile is a few kilobytes, its signature with a
// certificate chain a few more.
const MaxSize = 1 << 20

// Content returns the XML property list of a profile: data itself when it
// is a plain XML plist, or the attached content of a CMS SignedData in DER
// (or BER) form, with signed true. It does not verify the signature; use
// github.com/smallstep/pkcs7 (Parse, then VerifyWithChain) for that.
// Binary property lists, encrypted profiles and detached signatures are
// rejected. Errors wrap ErrMalformed.
func Content(data []byte) (plist []byte, signed bool, err error) {
	if len(data) > MaxSize {
		return nil, false, fmt.Errorf("%w: %d bytes, more than %d", ErrMalformed, len(data), MaxSize)
	}
	trimmed := bytes.TrimLeft(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")), " \t\r\n")
	switch {
	case len(trimmed) == 0:
		return nil, false, fmt.Errorf("%w: empty", ErrMalformed)
	case trimmed[0] == '<':
		return data, false, nil
	case bytes.HasPrefix(data, []byte("bplist")):
		return nil, false, fmt.Errorf("%w: binary property lists are not supported", ErrMalformed)
	case data[0] == 0x30: // ASN.1 SEQUENCE: a CMS ContentInfo
		content, err := signedContent(data)
		if err != nil {
			return nil, false, err
		}
		return content, true, nil
	}
	return nil, false, fmt.Errorf("%w: neither an XML property list nor a CMS signed profile", ErrMalformed)
}

// signedContent extracts the attached content of a CMS SignedData.
func signedContent(data []byte) (content []byte, err error) {
	// The CMS decoder is a third-party BER/DER parser reading untrusted
	// bytes; turn a panic in it into an error rather than a crash.
	defer func() {
		if r := recover(); r != nil {
			content, err = nil, fmt.Errorf("%w: invalid CMS structure", ErrMalformed)
		}
	}()
	// A DER encoding must end where the outer SEQUENCE ends. (BER with
	// indefinite lengths, which some signers stream, fails this quick DER
	// check and is left to the CMS decoder.)
	var outer asn1.RawValue
	if rest, err := asn1.Unmarshal(data, &outer); err == nil && len(rest) > 0 {
		return nil, fmt.Errorf("%w: %d bytes after the CMS structure", ErrMalformed, len(rest))
	}
	p7, err := pkcs7.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%w: CMS: %v", ErrMalformed, err)
	}
	if len(p7.Signers) == 0 {
		return nil, fmt.Errorf("%w: CMS structure is not a SignedData with a signer", ErrMalformed)
	}
	if len(p7.Content) == 0 {
		return nil, fmt.Errorf("%w: CMS SignedData carries no content (detached signature?)", ErrMalformed)
	}
	trimmed := bytes.TrimLeft(bytes.TrimPrefix(p7.Content, []byte("\xef\xbb\xbf")), " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '<' {
		return nil, fmt.Errorf("%w: signed content is not an XML property list", ErrMalformed)
	}
	return p7.Content, nil
}

// Parse reads a configuration profile, a plain XML plist or one wrapped
// in a CMS SignedData (see Content; the signature is not verified), and
// returns the policy fields its first com.apple.mail.managed payload
// carries:
//
//   - Domain: the domain of EmailAddress (empty when the payload has none);
//   - DisplayName: PayloadOrganization, else EmailAccountDescription;
//   - Prefer and one endpoint in IMAP or POP3 after EmailAccountType,
//     and one Submission endpoint, each with Security TLS when UseSSL is
//     true and STARTTLS when it is false or absent (UseSSL=false is Apple
//     Mail's opportunistic STARTTLS), and the port the payload names or,
//     when it names none, the protocol's standard port for that security
//     (993/143, 995/110, 465/587);
//   - Username: FullAddress when both usernames are the email address,
//     LocalPart when both are its local part, empty otherwise (also when
//     the usernames are left for the device to prompt for).
//
// Auth, POP, MX and Web have no counterpart in a profile and stay zero.
// For a profile made by Render, Parse returns Project(p). Every error
// wraps ErrMalformed.
func Parse(data []byte) (autoconfig.Policy, error) {
	content, _, err := Content(data)
	if err != nil {
		return autoconfig.Policy{}, err
	}
	root, err := decodePlist(content)
	if err != nil {
		return autoconfig.Policy{}, err
	}
	profile, ok := root.(map[string]any)
	if !ok {
		return autoconfig.Policy{}, fmt.Errorf("%w: the plist root is not a dict", ErrMalformed)
	}
	if t, _ := profile["PayloadType"].(string); t != profilePayloadType {
		return autoconfig.Policy{}, fmt.Errorf("%w: PayloadType %.40q, want %q", ErrMalformed, t, profilePayloadType)
	}
	payloads, ok := profile["PayloadContent"].([]any)
	if !ok {
		return autoconfig.Policy{}, fmt.Errorf("%w: PayloadContent is missing or not an array", ErrMalformed)
	}
	var mail map[string]any
	for _, pl := range payloads {
		if d, ok := pl.(map[string]any); ok {
			if t, _ := d["PayloadType"].(string); t == mailPayloadType {
				mail = d
				break
			}
		}
	}
	if mail == nil {
		return autoconfig.Policy{}, fmt.Errorf("%w: no %s payload", ErrMalformed, mailPayloadType)
	}
	r := reader{d: mail}
	var p autoconfig.Policy

	var proto autoconfig.Protocol
	switch t := r.str("EmailAccountType"); t {
	case accountTypeIMAP:
		proto = autoconfig.IMAP
	case accountTypePOP:
		proto = autoconfig.POP3
	default:
		return autoconfig.Policy{}, fmt.Errorf("%w: EmailAccountType %.40q, want %s or %s", ErrMalformed, t, accountTypeIMAP, accountTypePOP)
	}
	p.Prefer = proto

	email := r.str("EmailAddress")
	var addr autoconfig.Address
	if email != "" {
		if addr, err = autoconfig.ParseAddress(email); err != nil {
			return autoconfig.Policy{}, fmt.Errorf("%w: EmailAddress: %v", ErrMalformed, err)
		}
		p.Domain = addr.Domain
	}
	p.DisplayName, _ = profile["PayloadOrganization"].(string)
	if p.DisplayName == "" {
		p.DisplayName = r.str("EmailAccountDescription")
	}

	in := r.endpoint("Incoming", proto)
	out := r.endpoint("Outgoing", autoconfig.SMTP)
	if r.err != nil {
		return autoconfig.Policy{}, r.err
	}
	if proto == autoconfig.IMAP {
		p.IMAP = []autoconfig.Endpoint{in}
	} else {
		p.POP3 = []autoconfig.Endpoint{in}
	}
	p.Submission = []autoconfig.Endpoint{out}

	if email != "" {
		inForm := usernameForm(r.str("IncomingMailServerUsername"), addr)
		outForm := usernameForm(r.str("OutgoingMailServerUsername"), addr)
		if inForm == outForm {
			p.Username = inForm
		}
	}
	if r.err != nil {
		return autoconfig.Policy{}, r.err
	}
	return p, nil
}

// usernameForm classifies a username against the account's address.
func usernameForm(username string, addr autoconfig.Address) autoconfig.UsernameForm {
	switch {
	case username == "":
		return ""
	case strings.EqualFold(username, addr.String()):
		return autoconfig.FullAddress
	case username == addr.Local:
		return autoconfig.LocalPart
	}
	return ""
}

// reader reads typed values from a payload dict, remembering the first
// type error.
type reader struct {
	d   map[string]any
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
	}
}

// str returns a string value, "" when absent.
func (r *reader) str(key string) string {
	v, ok := r.d[key]
	if !ok {
		return ""
	}
	s, ok := v.(string)
	if !ok {
		r.fail("%s is a %s, want a string", key, plistType(v))
	}
	return s
}

// boolean returns a boolean value, false when absent.
func (r *reader) boolean(key string) bool {
	v, ok := r.d[key]
	if !ok {
		return false
	}
	b, ok := v.(bool)
	if !ok {
		r.fail("%s is a %s, want true or false", key, plistType(v))
	}
	return b
}

// endpoint reads the <prefix>MailServer* keys.
func (r *reader) endpoint(prefix string, proto autoconfig.Protocol) autoconfig.Endpoint {
	e := autoconfig.Endpoint{Protocol: proto, Security: autoconfig.STARTTLS}
	e.Host = r.str(prefix + "MailServerHostName")
	if e.Host == "" {
		r.fail("%sMailServerHostName is missing or empty", prefix)
	}
	if r.boolean(prefix + "MailServerUseSSL") {
		e.Security = autoconfig.TLS
	}
	key := prefix + "MailServerPortNumber"
	switch v := r.d[key].(type) {
	case nil:
		e.Port = defaultPort(proto, e.Security)
	case int64:
		if v < 1 || v > 65535 {
			r.fail("%s %d out of range 1..65535", key, v)
		}
		e.Port = int(v)
	default:
		r.fail("%s is a %s, want an integer", key, plistType(v))
	}
	return e
}

// defaultPort is the standard port of a protocol with a security.
func defaultPort(proto autoconfig.Protocol, sec autoconfig.Security) int {
	tls := sec == autoconfig.TLS
	switch {
	case proto == autoconfig.IMAP && tls:
		return 993
	case proto == autoconfig.IMAP:
		return 143
	case proto == autoconfig.POP3 && tls:
		return 995
	case proto == autoconfig.POP3:
		return 110
	case tls:
		return 465
	}
	return 587
}

// plistType names the plist type of a decoded value for error messages.
func plistType(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case int64:
		return "integer"
	case float64:
		return "real"
	case bool:
		return "boolean"
	case []byte:
		return "data"
	case []any:
		return "array"
	case map[string]any:
		return "dict"
	}
	return fmt.Sprintf("%T", v)
}
