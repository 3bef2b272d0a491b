package autodiscover

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Namespaces and schema names of [MS-OXDSCLI] section 2.2.
const (
	// RequestNamespace is the namespace of an Outlook POX request.
	RequestNamespace = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
	// ResponseNamespace is the namespace of the outer Autodiscover element
	// of every POX response, including error documents.
	ResponseNamespace = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
	// OutlookResponseSchema is the namespace of the inner Response element
	// of a settings response, and the only AcceptableResponseSchema this
	// package serves.
	OutlookResponseSchema = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
	// MobileSyncResponseSchema is what Exchange ActiveSync clients (and the
	// new Outlook for Windows) ask for. It describes an ActiveSync server,
	// which we are not, so it is answered with CodeSchemaNotSupported.
	MobileSyncResponseSchema = "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006"
)

// MaxRequestBytes is the largest request body ParseRequest accepts. A real
// request is a few hundred bytes.
const MaxRequestBytes = 64 << 10

// Sentinel errors of ParseRequest. Test for them with errors.Is: the
// returned errors wrap them with detail worth logging.
var (
	// ErrTooLarge: the body is longer than MaxRequestBytes. Answer HTTP 413
	// (Content Too Large) with no XML body and close the connection; the
	// rest of the body was not read.
	ErrTooLarge = errors.New("autodiscover: request body larger than 64 KiB")

	// ErrMalformed: the body is not a well-formed POX request (empty, not
	// XML, a DTD or entity declaration, a non-UTF-8 encoding, a wrong root
	// element or namespace, a repeated field). Answer HTTP 200 with
	// WriteError(CodeInvalidRequest); this is what Exchange returns, and
	// what Outlook understands.
	ErrMalformed = errors.New("autodiscover: malformed request")

	// ErrNoAddress: the request has no EMailAddress, or an empty one.
	// Answer HTTP 200 with WriteError(CodeInvalidRequest). (A request with
	// only a LegacyDN is an Exchange mailbox lookup; we cannot resolve
	// LegacyDNs.)
	ErrNoAddress = errors.New("autodiscover: request has no EMailAddress")

	// ErrSchemaNotSupported: the client asked for a response schema other
	// than OutlookResponseSchema, typically the ActiveSync (mobilesync)
	// one. Answer HTTP 200 with WriteError(CodeSchemaNotSupported), as
	// [MS-OXDSCLI] and [MS-ASCMD] prescribe, so the client falls back to
	// other methods instead of retrying.
	ErrSchemaNotSupported = errors.New("autodiscover: requested response schema not supported")
)

// Request is a parsed POX request. Values are trimmed of surrounding white
// space; an element that was absent is "".
type Request struct {
	// EMailAddress is the address the client wants settings for, as sent.
	// It is not validated here: use autoconfig.ParseAddress.
	EMailAddress string
	// LegacyDN is the Exchange distinguished name, which Outlook sends when
	// it already knows one. [MS-OXDSCLI] says it takes precedence over
	// EMailAddress, but only Exchange can resolve it; we ignore it.
	LegacyDN string
	// AcceptableResponseSchema is the response schema the client asked for.
	AcceptableResponseSchema string
}

// utf8BOM is the byte order mark some Windows clients put before the XML
// declaration. encoding/xml would report it as character data.
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// ParseRequest reads a POX request body:
//
//	<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
//	  <Request>
//	    <EMailAddress>john@example.com</EMailAddress>
//	    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
//	  </Request>
//	</Autodiscover>
//
// It reads at most MaxRequestBytes+1 bytes and returns ErrTooLarge when
// there are more; it never parses a truncated body. It is lenient where
// clients differ and strict where leniency would be dangerous:
//
//   - Any DTD (DOCTYPE, ENTITY or other <!...> declaration) is rejected
//     with ErrMalformed, so no entity is ever expanded or fetched.
//   - Elements are matched by local name, case-insensitively, so any
//     namespace prefix and any capitalisation (EMailAddress, EmailAddress)
//     is accepted. The root element's namespace must contain
//     "requestschema/2006" (compared case-insensitively; the outlook and
//     mobilesync request schemas both do) or be absent.
//   - A UTF-8 byte order mark, CRLF line ends, white space around the
//     document and around values, comments and unknown elements are
//     accepted. Encodings other than UTF-8 are not.
//   - AcceptableResponseSchema, when present and not empty, must be
//     OutlookResponseSchema (compared case-insensitively, ignoring a
//     trailing slash), or the result is ErrSchemaNotSupported. When it is
//     absent, a request in the mobilesync request namespace is
//     ErrSchemaNotSupported too.
//   - An EMailAddress that is missing or blank is ErrNoAddress. The
//     schema is checked first: a mobilesync request without an address is
//     ErrSchemaNotSupported.
//
// Errors other than the four sentinels come only from reading r; they are
// returned wrapped.
func ParseRequest(r io.Reader) (Request, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxRequestBytes+1))
	if err != nil {
		return Request{}, fmt.Errorf("autodiscover: reading request: %w", err)
	}
	if len(data) > MaxRequestBytes {
		return Request{}, ErrTooLarge
	}
	return parseRequest(bytes.TrimPrefix(data, utf8BOM))
}

// parseRequest parses a body (without its byte order mark): the common
// shape by parseCanonical, anything else by parseFull. The two agree on
// every body parseCanonical accepts (FuzzCanonicalAgrees).
func parseRequest(data []byte) (Request, error) {
	if req, rootSpace, seenSchema, ok := parseCanonical(data); ok {
		return checkRequest(req, rootSpace, seenSchema)
	}
	return parseFull(data)
}

// parseFull parses any body with encoding/xml.
func parseFull(data []byte) (Request, error) {
	var (
		req         Request
		rootSpace   string
		seenRoot    bool
		seenRequest bool
		inRequest   bool // inside the <Request> element
		seenSchema  bool
		// depth is 1 inside the root, 2 inside Request, 3 inside a field.
		depth int
		// field points at the Request field being read, nil elsewhere.
		field    *string
		fieldSet = map[*string]bool{}
		text     strings.Builder
	)
	malformed := func(format string, args ...any) (Request, error) {
		return Request{}, fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
	}

	dec := xml.NewDecoder(bytes.NewReader(data))
	dec.Strict = true
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return malformed("%v", err)
		}
		switch t := tok.(type) {
		case xml.Directive:
			return malformed("DTD or declaration <!%.20s...> not allowed", t)
		case xml.StartElement:
			depth++
			name := t.Name.Local
			switch {
			case depth == 1:
				if seenRoot {
					return malformed("second root element <%s>", name)
				}
				seenRoot = true
				if !strings.EqualFold(name, "Autodiscover") {
					return malformed("root element is <%s>, want <Autodiscover>", name)
				}
				rootSpace = t.Name.Space
				if rootSpace != "" && !strings.Contains(strings.ToLower(rootSpace), "requestschema/2006") {
					return malformed("root namespace %q is not an Autodiscover request schema", rootSpace)
				}
			case depth == 2 && strings.EqualFold(name, "Request"):
				if seenRequest {
					return malformed("more than one <Request>")
				}
				seenRequest = true
				inRequest = true
			case depth == 3 && inRequest:
				field = requestField(&req, name)
				if field != nil {
					if fieldSet[field] {
						return malformed("<%s> given twice", name)
					}
					fieldSet[field] = true
					if field == &req.AcceptableResponseSchema {
						seenSchema = true
					}
					text.Reset()
				}
			case depth > 3 && field != nil:
				return malformed("element <%s> inside a request field", name)
			}
		case xml.EndElement:
			switch {
			case depth == 3 && field != nil:
				*field = strings.TrimSpace(text.String())
				field = nil
			case depth == 2:
				inRequest = false
			}
			depth--
		case xml.CharData:
			switch {
			case field != nil:
				text.Write(t)
			case depth == 0 && len(bytes.TrimSpace(t)) > 0:
				return malformed("text outside the root element")
			}
		case xml.ProcInst, xml.Comment:
			// The XML declaration (the decoder has checked its encoding),
			// other processing instructions and comments are harmless.
		}
	}
	if !seenRoot {
		return malformed("no XML element in the body")
	}
	return checkRequest(req, rootSpace, seenSchema)
}

// checkRequest applies the rules on the schema and the address to a
// parsed request.
func checkRequest(req Request, rootSpace string, seenSchema bool) (Request, error) {
	if seenSchema && req.AcceptableResponseSchema != "" {
		if !sameSchema(req.AcceptableResponseSchema, OutlookResponseSchema) {
			return req, fmt.Errorf("%w: %q", ErrSchemaNotSupported, req.AcceptableResponseSchema)
		}
	} else if strings.Contains(strings.ToLower(rootSpace), "mobilesync") {
		return req, fmt.Errorf("%w: mobilesync request %q", ErrSchemaNotSupported, rootSpace)
	}
	if req.EMailAddress == "" {
		return req, ErrNoAddress
	}
	return req, nil
}

// requestField returns the Request field an element of that local name
// fills, or nil for elements we ignore.
func requestField(req *Request, local string) *string {
	switch {
	case strings.EqualFold(local, "EMailAddress"):
		return &req.EMailAddress
	case strings.EqualFold(local, "LegacyDN"):
		return &req.LegacyDN
	case strings.EqualFold(local, "AcceptableResponseSchema"):
		return &req.AcceptableResponseSchema
	}
	return nil
}

// sameSchema compares schema URIs case-insensitively, ignoring a trailing
// slash.
func sameSchema(a, b string) bool {
	return strings.EqualFold(strings.TrimSuffix(a, "/"), strings.TrimSuffix(b, "/"))
}
