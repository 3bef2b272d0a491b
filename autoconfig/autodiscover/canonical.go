package autodiscover

import (
	"bytes"
	"strings"
)

// parseCanonical reads the request body in the shape every Outlook
// sends, without encoding/xml, which took over a third of the CPU of an
// Autodiscover request:
//
//	[<?xml version="1.0" encoding="utf-8"?>]
//	<Autodiscover xmlns="...requestschema/2006">
//	  <Request>
//	    <EMailAddress>...</EMailAddress>
//	    <AcceptableResponseSchema>...</AcceptableResponseSchema>
//	  </Request>
//	</Autodiscover>
//
// with white space between the tags, the fields (EMailAddress,
// AcceptableResponseSchema, LegacyDN, each at most once, in any order,
// spelled so) holding printable ASCII without markup. Anything else (a
// prefix, another spelling, a comment, an entity, a non-ASCII value, a
// repeated field, an error) returns ok == false, and parseFull decides.
// For every body it accepts, it finds what parseFull finds
// (FuzzCanonicalAgrees).
func parseCanonical(data []byte) (req Request, rootSpace string, seenSchema bool, ok bool) {
	s := data
	skipSpace := func() {
		for len(s) > 0 && (s[0] == ' ' || s[0] == '\t' || s[0] == '\n' || s[0] == '\r') {
			s = s[1:]
		}
	}
	eat := func(lit string) bool {
		if len(s) < len(lit) || string(s[:len(lit)]) != lit {
			return false
		}
		s = s[len(lit):]
		return true
	}
	skipSpace()
	if bytes.HasPrefix(s, []byte("<?")) {
		ok := false
		for _, decl := range xmlDeclarations {
			if eat(decl) {
				ok = true
				break
			}
		}
		if !ok {
			return Request{}, "", false, false
		}
		skipSpace()
	}
	if !eat(`<Autodiscover xmlns="`) {
		return Request{}, "", false, false
	}
	q := bytes.IndexByte(s, '"')
	if q < 0 || !plainText(s[:q]) {
		return Request{}, "", false, false
	}
	rootSpace = string(s[:q])
	s = s[q+1:]
	if !strings.Contains(strings.ToLower(rootSpace), "requestschema/2006") || !eat(">") {
		return Request{}, "", false, false
	}
	skipSpace()
	if !eat("<Request>") {
		return Request{}, "", false, false
	}
	seen := 0
	for {
		skipSpace()
		if eat("</Request>") {
			break
		}
		var name string
		var field *string
		var bit int
		switch {
		case eat("<EMailAddress>"):
			name, field, bit = "EMailAddress", &req.EMailAddress, 1
		case eat("<AcceptableResponseSchema>"):
			name, field, bit = "AcceptableResponseSchema", &req.AcceptableResponseSchema, 2
			seenSchema = true
		case eat("<LegacyDN>"):
			name, field, bit = "LegacyDN", &req.LegacyDN, 4
		default:
			return Request{}, "", false, false
		}
		if seen&bit != 0 {
			return Request{}, "", false, false
		}
		seen |= bit
		end := bytes.IndexByte(s, '<')
		if end < 0 || !plainText(s[:end]) {
			return Request{}, "", false, false
		}
		*field = strings.TrimSpace(string(s[:end]))
		s = s[end:]
		if !eat("</" + name + ">") {
			return Request{}, "", false, false
		}
	}
	skipSpace()
	if !eat("</Autodiscover>") {
		return Request{}, "", false, false
	}
	skipSpace()
	if len(s) != 0 {
		return Request{}, "", false, false
	}
	return req, rootSpace, seenSchema, true
}

// xmlDeclarations are the XML declarations the fast path knows; any
// other goes to encoding/xml, which checks the encoding.
var xmlDeclarations = []string{
	`<?xml version="1.0" encoding="utf-8"?>`,
	`<?xml version="1.0" encoding="UTF-8"?>`,
	`<?xml version="1.0"?>`,
}

// plainText reports whether b is printable ASCII, spaces and tabs only:
// no markup, no entity, no line end (which XML would normalise), nothing
// whose decoding could differ.
func plainText(b []byte) bool {
	for _, c := range b {
		if c < ' ' && c != '\t' || c > '~' || c == '&' || c == '<' || c == '>' {
			return false
		}
	}
	return true
}
