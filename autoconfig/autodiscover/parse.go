package autodiscover

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"mailsetup/autoconfig"
)

// MaxResponseBytes is the largest response document ParseDocument and
// ParseResponse read.
const MaxResponseBytes = 1 << 20

// ResponseError is a POX Error document (ErrorCode 500..603, see the
// Code constants) returned by ParseDocument and ParseResponse.
type ResponseError struct {
	// Code is the ErrorCode, 0 when it is missing or not a number.
	Code    int
	Message string
}

func (e *ResponseError) Error() string {
	return fmt.Sprintf("autodiscover: server answered error %d: %s", e.Code, e.Message)
}

// Document is a POX settings (or redirect) response as sent.
type Document struct {
	DisplayName string
	// AccountType is "email" for Internet mail.
	AccountType string
	// Action is "settings", "redirectAddr" or "redirectUrl".
	Action       string
	RedirectAddr string
	RedirectURL  string
	Protocols    []Protocol
}

// The structs below read any POX response. Tags without a namespace match
// elements in any namespace, so the inner Response is found whether it is
// in the outlook 2006a namespace (settings) or inherits the outer one
// (errors).

type wireDoc struct {
	XMLName  xml.Name      `xml:"Autodiscover"`
	Response *wireResponse `xml:"Response"`
	Error    *wireError    `xml:"Error"`
}

type wireResponse struct {
	DisplayName string       `xml:"User>DisplayName"`
	Account     *wireAccount `xml:"Account"`
	Error       *wireError   `xml:"Error"`
}

type wireAccount struct {
	AccountType  string     `xml:"AccountType"`
	Action       string     `xml:"Action"`
	RedirectAddr string     `xml:"RedirectAddr"`
	RedirectURL  string     `xml:"RedirectUrl"`
	Protocols    []Protocol `xml:"Protocol"`
	Error        *wireError `xml:"Error"`
}

type wireError struct {
	ErrorCode string `xml:"ErrorCode"`
	Message   string `xml:"Message"`
}

// ParseDocument reads a POX response of at most MaxResponseBytes. An Error
// document, wherever its Error element is (under Autodiscover, Response or
// Account), is returned as a *ResponseError. A DTD is rejected with
// ErrMalformed, a longer body with ErrTooLarge. Values are trimmed.
func ParseDocument(r io.Reader) (Document, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxResponseBytes+1))
	if err != nil {
		return Document{}, fmt.Errorf("autodiscover: reading response: %w", err)
	}
	if len(data) > MaxResponseBytes {
		return Document{}, fmt.Errorf("%w: response larger than %d bytes", ErrTooLarge, MaxResponseBytes)
	}
	data = bytes.TrimPrefix(data, utf8BOM)
	if err := rejectDTD(data); err != nil {
		return Document{}, err
	}
	var w wireDoc
	if err := xml.Unmarshal(data, &w); err != nil {
		return Document{}, fmt.Errorf("%w: response: %v", ErrMalformed, err)
	}
	werr := w.Error
	if w.Response != nil && werr == nil {
		werr = w.Response.Error
		if a := w.Response.Account; a != nil && werr == nil {
			werr = a.Error
		}
	}
	if werr != nil {
		code, _ := strconv.Atoi(strings.TrimSpace(werr.ErrorCode))
		return Document{}, &ResponseError{Code: code, Message: strings.TrimSpace(werr.Message)}
	}
	if w.Response == nil || w.Response.Account == nil {
		return Document{}, fmt.Errorf("%w: response has no Response/Account element", ErrMalformed)
	}
	a := w.Response.Account
	doc := Document{
		DisplayName:  strings.TrimSpace(w.Response.DisplayName),
		AccountType:  strings.TrimSpace(a.AccountType),
		Action:       strings.TrimSpace(a.Action),
		RedirectAddr: strings.TrimSpace(a.RedirectAddr),
		RedirectURL:  strings.TrimSpace(a.RedirectURL),
	}
	for _, p := range a.Protocols {
		for _, f := range []*string{&p.Type, &p.Server, &p.Port, &p.LoginName, &p.DomainRequired,
			&p.SPA, &p.SSL, &p.Encryption, &p.AuthRequired, &p.UsePOPAuth, &p.SMTPLast, &p.TTL} {
			*f = strings.TrimSpace(*f)
		}
		doc.Protocols = append(doc.Protocols, p)
	}
	return doc, nil
}

// rejectDTD walks the tokens of data and fails on any <!...> declaration.
func rejectDTD(data []byte) error {
	dec := xml.NewDecoder(bytes.NewReader(data))
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: response: %v", ErrMalformed, err)
		}
		if _, ok := tok.(xml.Directive); ok {
			return fmt.Errorf("%w: response contains a DTD or declaration", ErrMalformed)
		}
	}
}

// ParseResponse reads a POX settings response back into the part of a
// policy it carries: DisplayName, the IMAP, POP3 and Submission endpoints
// in document order, Prefer (the protocol of the first IMAP or POP3 block)
// and Username (FullAddress unless some LoginName has no "@", then
// LocalPart). Other fields stay zero: POX carries no domain, SASL
// mechanism, POP3 retention, MX or web settings. Protocol blocks of other
// types (Exchange's EXCH, EXPR, WEB) are skipped.
//
// Security is read the way clients read it: Encryption, when present,
// overrides SSL ("SSL" is implicit TLS, "TLS" is STARTTLS, "None" is
// plain); otherwise SSL=off is plain; otherwise, and for "Auto", the port
// decides as in Thunderbird (143, 110, 25 and 587 are STARTTLS, the rest
// implicit TLS).
//
// An Error document is returned as a *ResponseError; a redirect, or a
// response without any IMAP, POP3 or SMTP block, is an error.
func ParseResponse(r io.Reader) (autoconfig.Policy, error) {
	doc, err := ParseDocument(r)
	if err != nil {
		return autoconfig.Policy{}, err
	}
	if doc.Action != "" && !strings.EqualFold(doc.Action, "settings") {
		return autoconfig.Policy{}, fmt.Errorf("autodiscover: response action is %q (address %q, URL %q), not settings",
			doc.Action, doc.RedirectAddr, doc.RedirectURL)
	}
	p := autoconfig.Policy{DisplayName: doc.DisplayName, Username: autoconfig.FullAddress}
	for i, b := range doc.Protocols {
		var proto autoconfig.Protocol
		switch strings.ToUpper(b.Type) {
		case "IMAP":
			proto = autoconfig.IMAP
		case "POP3":
			proto = autoconfig.POP3
		case "SMTP":
			proto = autoconfig.SMTP
		default:
			continue
		}
		port, err := strconv.Atoi(b.Port)
		if err != nil || port < 1 || port > 65535 {
			return autoconfig.Policy{}, fmt.Errorf("autodiscover: Protocol %d (%s): bad Port %q", i+1, b.Type, b.Port)
		}
		if b.Server == "" {
			return autoconfig.Policy{}, fmt.Errorf("autodiscover: Protocol %d (%s): no Server", i+1, b.Type)
		}
		e := autoconfig.Endpoint{Protocol: proto, Host: b.Server, Port: port, Security: security(b, port)}
		switch proto {
		case autoconfig.IMAP:
			p.IMAP = append(p.IMAP, e)
		case autoconfig.POP3:
			p.POP3 = append(p.POP3, e)
		default:
			p.Submission = append(p.Submission, e)
		}
		if p.Prefer == "" && proto != autoconfig.SMTP {
			p.Prefer = proto
		}
		if b.LoginName != "" && !strings.Contains(b.LoginName, "@") {
			p.Username = autoconfig.LocalPart
		}
	}
	if len(p.IMAP)+len(p.POP3)+len(p.Submission) == 0 {
		return autoconfig.Policy{}, errors.New("autodiscover: response has no IMAP, POP3 or SMTP settings")
	}
	return p, nil
}

// security decides an endpoint's security from a Protocol block.
func security(b Protocol, port int) autoconfig.Security {
	switch strings.ToLower(b.Encryption) {
	case "ssl":
		return autoconfig.TLS
	case "tls":
		return autoconfig.STARTTLS
	case "none":
		return autoconfig.None
	case "auto":
	default:
		if strings.EqualFold(b.SSL, "off") {
			return autoconfig.None
		}
	}
	switch port {
	case 143, 110, 25, 587:
		return autoconfig.STARTTLS
	}
	return autoconfig.TLS
}
