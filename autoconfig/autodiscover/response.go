package autodiscover

import (
	"bytes"
	"encoding/binary"
	"encoding/xml"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"strconv"
	"time"

	"mailsetup/autoconfig"
)

// ContentType is the Content-Type of POX responses, settings and errors.
const ContentType = "text/xml; charset=utf-8"

// Error codes of a POX Error document ([MS-OXDSCLI], ErrorCode element).
const (
	// CodeAddressNotFound: the server cannot provide settings for the
	// address (unknown domain).
	CodeAddressNotFound = 500
	// CodeNoSettings: the address is known but has nothing to configure.
	CodeNoSettings = 501
	// CodeInvalidRequest: the request XML is not a valid request.
	CodeInvalidRequest = 600
	// CodeSchemaNotSupported: the requested response schema is not served.
	CodeSchemaNotSupported = 601
	// CodeConfiguration: the address is known but its configuration is
	// broken.
	CodeConfiguration = 602
	// CodeInternal: the server failed.
	CodeInternal = 603
)

// codeMessage is the message WriteError uses when given none.
func codeMessage(code int) string {
	switch code {
	case CodeAddressNotFound:
		return "The email address can't be found."
	case CodeNoSettings:
		return "The email address has no configuration."
	case CodeInvalidRequest:
		return "Invalid Request"
	case CodeSchemaNotSupported:
		return "The requested response schema is not supported."
	case CodeConfiguration:
		return "The configuration for the email address is broken."
	case CodeInternal:
		return "Internal server error."
	}
	return "Error " + strconv.Itoa(code)
}

// The structs below are the wire form of a settings response. Only the two
// outer elements carry a namespace: encoding/xml writes it as a default
// namespace (xmlns="..."), and children without one inherit it, so the
// output has no prefixes.

type settingsDoc struct {
	XMLName  xml.Name         `xml:"http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006 Autodiscover"`
	Response settingsResponse `xml:"http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a Response"`
}

type settingsResponse struct {
	User    *settingsUser   `xml:"User,omitempty"`
	Account settingsAccount `xml:"Account"`
}

type settingsUser struct {
	DisplayName string `xml:"DisplayName"`
}

type settingsAccount struct {
	AccountType string     `xml:"AccountType"`
	Action      string     `xml:"Action"`
	Protocols   []Protocol `xml:"Protocol"`
}

// Protocol is one <Protocol> element of a POX settings response, with the
// children this package writes or reads, as text. An element that is
// absent is "". ParseDocument trims white space from every value.
type Protocol struct {
	// Type is IMAP, POP3 or SMTP (Exchange also uses EXCH, EXPR, WEB).
	Type   string `xml:"Type"`
	Server string `xml:"Server"`
	Port   string `xml:"Port"`
	// LoginName is the username; always the full address in our output.
	LoginName string `xml:"LoginName,omitempty"`
	// DomainRequired "on" makes Outlook send domain\user.
	DomainRequired string `xml:"DomainRequired,omitempty"`
	// SPA is Microsoft's Secure Password Authentication (NTLM). Outlook
	// assumes "on" when it is absent, so we always write "off".
	SPA string `xml:"SPA,omitempty"`
	// SSL "off" means no TLS; absent means "on".
	SSL string `xml:"SSL,omitempty"`
	// Encryption (SSL, TLS, None or Auto) overrides SSL when present.
	Encryption   string `xml:"Encryption,omitempty"`
	AuthRequired string `xml:"AuthRequired,omitempty"`
	// UsePOPAuth (SMTP only) "on": reuse the incoming server's credentials.
	UsePOPAuth string `xml:"UsePOPAuth,omitempty"`
	// SMTPLast (SMTP only) "on": send only after receiving.
	SMTPLast string `xml:"SMTPLast,omitempty"`
	// TTL is how many hours the settings stay valid. We do not write it.
	TTL string `xml:"TTL,omitempty"`
}

// WriteResponse writes the POX settings response for address: one
// <Protocol> per endpoint, the incoming ones in p.Incoming() order, then
// the submission ones in p.Submission order. LoginName is the full address
// (p.UsernameFor), SPA and DomainRequired are off, AuthRequired is on.
//
// The policy is not validated (call p.Validate when loading it), but an
// empty address or an endpoint with an unknown protocol or security is an
// error. Nothing is written to w unless the whole document rendered. The
// output is deterministic.
func WriteResponse(w io.Writer, p autoconfig.Policy, address string) error {
	if address == "" {
		return errors.New("autodiscover: WriteResponse: empty address")
	}
	login := p.UsernameFor(address)
	doc := settingsDoc{Response: settingsResponse{
		Account: settingsAccount{AccountType: "email", Action: "settings"},
	}}
	if p.DisplayName != "" {
		doc.Response.User = &settingsUser{DisplayName: p.DisplayName}
	}
	endpoints := append(p.Incoming(), p.Submission...)
	for _, e := range endpoints {
		block, err := protocolFor(e, login)
		if err != nil {
			return err
		}
		doc.Response.Account.Protocols = append(doc.Response.Account.Protocols, block)
	}
	return writeXML(w, doc)
}

// protocolFor renders one endpoint.
func protocolFor(e autoconfig.Endpoint, login string) (Protocol, error) {
	b := Protocol{
		Server:         e.Host,
		Port:           strconv.Itoa(e.Port),
		LoginName:      login,
		DomainRequired: "off",
		SPA:            "off",
		AuthRequired:   "on",
	}
	switch e.Protocol {
	case autoconfig.IMAP:
		b.Type = "IMAP"
	case autoconfig.POP3:
		b.Type = "POP3"
	case autoconfig.SMTP:
		b.Type = "SMTP"
		b.UsePOPAuth = "on"
		b.SMTPLast = "off"
	default:
		return Protocol{}, fmt.Errorf("autodiscover: endpoint %s: unknown protocol %q", e, e.Protocol)
	}
	// Encryption is ambiguous between implementations. We follow automx2:
	// "SSL" is implicit TLS and "TLS" is STARTTLS, which matches Outlook's
	// account dialog, where "TLS" means STARTTLS. mox instead writes "TLS"
	// for implicit TLS and omits the element for STARTTLS. Thunderbird
	// reads only SSL=off or Encryption=None (plain) and otherwise guesses
	// from the port, so our ports (993/995/465 implicit, 143/110/587
	// STARTTLS) also steer it right. Not yet checked against a real
	// Outlook.
	switch e.Security {
	case autoconfig.TLS:
		b.SSL, b.Encryption = "on", "SSL"
	case autoconfig.STARTTLS:
		b.SSL, b.Encryption = "on", "TLS"
	case autoconfig.None:
		b.SSL, b.Encryption = "off", "None"
	default:
		return Protocol{}, fmt.Errorf("autodiscover: endpoint %s: unknown security %q", e, e.Security)
	}
	return b, nil
}

// errorDoc is the wire form of an error response. As in the
// [MS-OXDSCLI] example, its Response element has no namespace of its own.
type errorDoc struct {
	XMLName xml.Name  `xml:"http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006 Autodiscover"`
	Error   errorBody `xml:"Response>Error"`
}

type errorBody struct {
	Time      string `xml:"Time,attr"`
	ID        string `xml:"Id,attr"`
	ErrorCode int    `xml:"ErrorCode"`
	Message   string `xml:"Message"`
	DebugData string `xml:"DebugData"`
}

// WriteError writes a POX Error document:
//
//	<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">
//	  <Response>
//	    <Error Time="16:56:32.6164027" Id="2477272013">
//	      <ErrorCode>600</ErrorCode>
//	      <Message>Invalid Request</Message>
//	      <DebugData></DebugData>
//	    </Error>
//	  </Response>
//	</Autodiscover>
//
// Time is now in UTC as Exchange writes it (time of day, 100 ns digits).
// Exchange's Id is a hash of its server name; ours is a hash of now, so the
// output is deterministic for a given time. An empty message is replaced
// by a short description of code. Serve it with HTTP 200 and ContentType.
func WriteError(w io.Writer, code int, message string, now time.Time) error {
	if message == "" {
		message = codeMessage(code)
	}
	now = now.UTC()
	h := fnv.New32a()
	var nanos [8]byte
	binary.BigEndian.PutUint64(nanos[:], uint64(now.UnixNano()))
	h.Write(nanos[:])
	doc := errorDoc{Error: errorBody{
		Time:      now.Format("15:04:05.0000000"),
		ID:        strconv.FormatUint(uint64(h.Sum32()), 10),
		ErrorCode: code,
		Message:   message,
	}}
	return writeXML(w, doc)
}

// writeXML renders v with an XML declaration and two-space indentation
// into a buffer, then writes it to w in one call.
func writeXML(w io.Writer, v any) error {
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	enc := xml.NewEncoder(&buf)
	enc.Indent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("autodiscover: rendering XML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("autodiscover: rendering XML: %w", err)
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}
