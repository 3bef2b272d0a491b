package autoconfig

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// PACC (draft-ietf-mailmaint-pacc, revision PACCRevision): a JSON
// document at https://ua-auto-config.<domain>/.well-known/user-agent-configuration.json
// that a client trusts only when the TXT record _ua-auto-config.<domain>
// carries the SHA-256 digest of the exact bytes it fetched. The text
// protocols carry a host only: the client connects with implicit TLS
// to the protocol's standard port (993, 995, 465) and logs in with the
// full email address.
//
// The submission host is published under two keys: "submit", the name
// revision -03 gives it, and "smtp", the name of -02 that the clients
// and servers written against -02 use (pimconf/Himalaya reads it,
// Stalwart serves it). The draft tells clients to ignore keys they do
// not know, so each generation finds its key and ignores the other; the
// two always name the same host.
const (
	// PACCRevision is the draft revision the document follows (-04's
	// text was not readable when this was written; automx's review of
	// -03 on 2026-09-29 and Stalwart's and pimconf's -02 code are the
	// sources of the field names).
	PACCRevision = "draft-ietf-mailmaint-pacc-03"
	// PACCHostLabel is the first label of the host that serves the
	// document: ua-auto-config.<domain>.
	PACCHostLabel = "ua-auto-config"
	// PACCPath is the document's path on that host.
	PACCPath = "/.well-known/user-agent-configuration.json"
	// PACCTXTLabel is the owner label of the digest record:
	// _ua-auto-config.<domain>.
	PACCTXTLabel = "_ua-auto-config"
	// PACCContentType is the document's media type.
	PACCContentType = "application/json"
	// PACCTTL is the TTL of the digest record. It is short so that a
	// changed document is trusted again within minutes; a rollover keeps
	// the old digest published for this long.
	PACCTTL = 300
)

// PACCPorts are the ports PACC implies for each protocol (implicit TLS).
var PACCPorts = map[Protocol]int{IMAP: 993, POP3: 995, SMTP: 465}

// ErrNoPACC says the policy has no endpoint PACC can express: PACC knows
// only implicit TLS on the standard ports, and a client needs a way to
// read and a way to send mail.
var ErrNoPACC = errors.New("PACC needs an incoming (imap or pop3) and a submission endpoint with security tls on the standard port (993, 995, 465)")

type paccHost struct {
	Host string `json:"host"`
}

type paccProtocols struct {
	IMAP   *paccHost `json:"imap,omitempty"`
	POP3   *paccHost `json:"pop3,omitempty"`
	Submit *paccHost `json:"submit,omitempty"`
	// SMTP is -02's name for Submit: always the same host.
	SMTP *paccHost `json:"smtp,omitempty"`
}

type paccAuth struct {
	Password bool `json:"password"`
}

type paccProvider struct {
	Name      string `json:"name"`
	ShortName string `json:"shortName,omitempty"`
}

type paccInfo struct {
	Provider paccProvider `json:"provider"`
}

type paccDoc struct {
	Protocols      paccProtocols `json:"protocols"`
	Authentication paccAuth      `json:"authentication"`
	Info           paccInfo      `json:"info"`
}

// paccEndpoint returns the first endpoint of proto PACC can express.
func (p Policy) paccEndpoint(proto Protocol) *paccHost {
	for _, e := range p.Endpoints(proto) {
		if e.Security == TLS && e.Port == PACCPorts[proto] {
			return &paccHost{Host: strings.TrimSuffix(e.Host, ".")}
		}
	}
	return nil
}

// PACC renders the policy's PACC document. The bytes are deterministic:
// the same policy always gives the same bytes, so the digest published
// in DNS (PACCDigest) matches what the web listener serves. It returns
// ErrNoPACC when the policy has no endpoint PACC can express.
func (p Policy) PACC() ([]byte, error) {
	submit := p.paccEndpoint(SMTP)
	doc := paccDoc{
		Protocols: paccProtocols{IMAP: p.paccEndpoint(IMAP), POP3: p.paccEndpoint(POP3), Submit: submit, SMTP: submit},
		// Passwords over TLS are what every endpoint accepts; no OAuth issuer.
		Authentication: paccAuth{Password: true},
		Info:           paccInfo{Provider: paccProvider{Name: truncateRunes(p.DisplayName, 60), ShortName: truncateRunes(p.ShortName, 20)}},
	}
	if (doc.Protocols.IMAP == nil && doc.Protocols.POP3 == nil) || doc.Protocols.Submit == nil {
		return nil, ErrNoPACC
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("pacc: %w", err)
	}
	return append(b, '\n'), nil
}

// truncateRunes cuts s to at most n characters (the draft's limits on
// the provider's names).
func truncateRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}

// PACCDigest returns the base64 SHA-256 of a document's bytes, as the
// TXT record carries it.
func PACCDigest(doc []byte) string {
	sum := sha256.Sum256(doc)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// PACCText returns the TXT record's text for a digest.
func PACCText(digest string) string {
	return "v=UAAC1; a=sha256; d=" + digest
}

// ParsePACCText returns the SHA-256 digest of one TXT record's text, or
// "" when the text is not a UAAC1 record with a=sha256. Tags may come in
// any order with any spacing; unknown tags are ignored.
func ParsePACCText(txt string) string {
	tags := map[string]string{}
	for _, part := range strings.Split(txt, ";") {
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			continue
		}
		tags[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
	}
	if tags["v"] != "UAAC1" || !strings.EqualFold(tags["a"], "sha256") {
		return ""
	}
	return tags["d"]
}
