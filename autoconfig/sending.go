package autoconfig

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// Sending is what a domain publishes about the mail it sends: its DKIM
// keys (RFC 6376), SPF (RFC 7208), DMARC (RFC 7489), MTA-STS (RFC 8461)
// and TLS reporting (RFC 8460). A policy without it publishes none of
// these.
type Sending struct {
	// DKIM are the domain's keys: the selector and the TXT value.
	DKIM []DKIMKey
	// Hostname is the sending server's name (SPF a:).
	Hostname string
	// MTASTSMode is enforce, testing or none.
	MTASTSMode string
	// Reports is the mailbox aggregate reports go to (DMARC rua,
	// TLS-RPT); default postmaster@<domain>.
	Reports string
}

// DKIMKey is one published DKIM key.
type DKIMKey struct {
	Selector string
	// Value is the TXT record's text, "v=DKIM1; k=rsa; p=...".
	Value string
}

// MTASTSMaxAge is the max_age of the published MTA-STS policy (one
// week; RFC 8461 §3.2 suggests weeks).
const MTASTSMaxAge = 604800

// MTASTSPolicy is the policy file served at
// https://mta-sts.<domain>/.well-known/mta-sts.txt (RFC 8461 §3.2): the
// mode and every MX host; "" without Sending.
func (p Policy) MTASTSPolicy() string {
	if p.Sending == nil {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "version: STSv1\r\nmode: %s\r\n", p.Sending.MTASTSMode)
	for _, mx := range p.MX {
		fmt.Fprintf(&b, "mx: %s\r\n", strings.TrimSuffix(mx.Host, "."))
	}
	fmt.Fprintf(&b, "max_age: %d\r\n", MTASTSMaxAge)
	return b.String()
}

// MTASTSID is the id of the _mta-sts record: derived from the policy
// file, so that it changes whenever the policy does (RFC 8461 §3.1).
func (p Policy) MTASTSID() string {
	sum := sha256.Sum256([]byte(p.MTASTSPolicy()))
	return hex.EncodeToString(sum[:10])
}

// SPF, DMARC, MTASTSRecord and TLSRPT are the TXT values published.
func (p Policy) SPF() string {
	return "v=spf1 mx a:" + strings.TrimSuffix(p.Sending.Hostname, ".") + " ~all"
}

func (p Policy) DMARC() string {
	return "v=DMARC1; p=none; rua=mailto:" + p.reports()
}

func (p Policy) MTASTSRecord() string { return "v=STSv1; id=" + p.MTASTSID() }

func (p Policy) TLSRPT() string { return "v=TLSRPTv1; rua=mailto:" + p.reports() }

func (p Policy) reports() string {
	if p.Sending.Reports != "" {
		return p.Sending.Reports
	}
	return "postmaster@" + p.Domain
}

// sendingRecords are the TXT records of Sending.
func (p Policy) sendingRecords() []Record {
	if p.Sending == nil {
		return nil
	}
	d := fqdn(p.Domain)
	txt := func(name, value string) Record {
		return Record{Name: name, Type: "TXT", TTL: RecordTTL, Text: splitTXT(value)}
	}
	var out []Record
	for _, k := range p.Sending.DKIM {
		out = append(out, txt(k.Selector+"._domainkey."+d, k.Value))
	}
	return append(out, txt(d, p.SPF()), txt("_dmarc."+d, p.DMARC()),
		txt("_mta-sts."+d, p.MTASTSRecord()), txt("_smtp._tls."+d, p.TLSRPT()))
}

// splitTXT cuts a value into the strings of a TXT record (at most 255
// octets each, RFC 1035 §3.3.14); a verifier joins them.
func splitTXT(s string) []string {
	var out []string
	for len(s) > 255 {
		out = append(out, s[:255])
		s = s[255:]
	}
	return append(out, s)
}
