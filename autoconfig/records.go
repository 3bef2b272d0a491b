package autoconfig

import (
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// Record is one DNS resource record a domain should publish.
type Record struct {
	// Name is the owner name, fully qualified with a trailing dot.
	Name string
	// Type is "MX", "SRV", "CNAME", "A", "AAAA" or "TXT".
	Type string
	TTL  uint32
	// Priority, Weight and Port are SRV fields; Preference is MX's.
	Priority, Weight, Port, Preference int
	// Target is the SRV target, MX exchange or CNAME target, fully
	// qualified with a trailing dot; "." for a service not offered.
	Target string
	// Addr is the A/AAAA address.
	Addr netip.Addr
	// Text are a TXT record's strings (each at most 255 octets).
	Text []string
}

// RecordTTL is the TTL of every published record (one hour).
const RecordTTL = 3600

// String renders the record as one zone-file line.
func (r Record) String() string {
	head := fmt.Sprintf("%s %d IN %s", r.Name, r.TTL, r.Type)
	switch r.Type {
	case "SRV":
		return fmt.Sprintf("%s %d %d %d %s", head, r.Priority, r.Weight, r.Port, r.Target)
	case "MX":
		return fmt.Sprintf("%s %d %s", head, r.Preference, r.Target)
	case "CNAME":
		return fmt.Sprintf("%s %s", head, r.Target)
	case "TXT":
		quoted := make([]string, len(r.Text))
		for i, t := range r.Text {
			quoted[i] = strconv.Quote(t)
		}
		return head + " " + strings.Join(quoted, " ")
	default:
		return fmt.Sprintf("%s %s", head, r.Addr)
	}
}

// Data is the record's data as a checker compares it with a DNS
// answer: SRV "prio weight port target", MX "pref exchange", a CNAME's
// target (names lower case, fully qualified), a TXT's text, an address.
func (r Record) Data() string {
	switch r.Type {
	case "SRV":
		return fmt.Sprintf("%d %d %d %s", r.Priority, r.Weight, r.Port, strings.ToLower(r.Target))
	case "MX":
		return fmt.Sprintf("%d %s", r.Preference, strings.ToLower(r.Target))
	case "CNAME":
		return strings.ToLower(r.Target)
	case "TXT":
		return strings.Join(r.Text, "")
	}
	return r.Addr.String()
}

// srvService maps a protocol and security to its RFC 6186/8314 label.
func srvService(proto Protocol, sec Security) string {
	switch proto {
	case IMAP:
		if sec == TLS {
			return "_imaps._tcp"
		}
		return "_imap._tcp"
	case POP3:
		if sec == TLS {
			return "_pop3s._tcp"
		}
		return "_pop3._tcp"
	default:
		if sec == TLS {
			return "_submissions._tcp"
		}
		return "_submission._tcp"
	}
}

// SRVServices lists the RFC 6186/8314 service labels, in output order.
var SRVServices = []string{"_submissions._tcp", "_submission._tcp", "_imaps._tcp", "_imap._tcp", "_pop3s._tcp", "_pop3._tcp"}

// fqdn appends the trailing dot.
func fqdn(name string) string {
	if strings.HasSuffix(name, ".") {
		return name
	}
	return name + "."
}

// Records returns every record the domain should publish: the RFC 6186 /
// RFC 8314 SRV records (priority follows the policy's preference order;
// a service that is not offered gets target "."), _autodiscover._tcp, the
// autoconfig and autodiscover host names, PACC's ua-auto-config host and
// digest TXT (when the policy can be said in PACC), and MX.
func (p Policy) Records() []Record {
	d := fqdn(p.Domain)
	var out []Record
	srv := map[string][]Record{}
	add := func(list []Endpoint, base int) {
		for i, e := range list {
			label := srvService(e.Protocol, e.Security)
			srv[label] = append(srv[label], Record{
				Name: label + "." + d, Type: "SRV", TTL: RecordTTL,
				Priority: base + 10*i, Weight: 0, Port: e.Port, Target: fqdn(e.Host),
			})
		}
	}
	add(p.Submission, 0)
	// RFC 6186 §3.4: priorities across IMAP and POP3 express which access
	// protocol the provider prefers.
	add(p.Incoming(), 0)
	for _, label := range SRVServices {
		rs := srv[label]
		if len(rs) == 0 {
			// RFC 6186 §3.4 / RFC 2782: target "." means decidedly not offered.
			rs = []Record{{Name: label + "." + d, Type: "SRV", TTL: RecordTTL, Target: "."}}
		}
		out = append(out, rs...)
	}
	web := p.Web.Host()
	if web != "" {
		out = append(out, Record{Name: "_autodiscover._tcp." + d, Type: "SRV", TTL: RecordTTL, Port: p.Web.Port(), Target: fqdn(web)})
	}
	names := []string{"autoconfig." + d, "autodiscover." + d}
	doc, paccErr := p.PACC()
	if paccErr == nil {
		names = append(names, PACCHostLabel+"."+d)
	}
	if p.Sending != nil {
		names = append(names, "mta-sts."+d) // serves the MTA-STS policy
	}
	for _, name := range names {
		switch {
		case len(p.Web.Addresses) > 0:
			for _, a := range p.Web.Addresses {
				typ := "A"
				if a.Is6() && !a.Is4In6() {
					typ = "AAAA"
				}
				out = append(out, Record{Name: name, Type: typ, TTL: RecordTTL, Addr: a.Unmap()})
			}
		case web != "" && fqdn(web) != name:
			out = append(out, Record{Name: name, Type: "CNAME", TTL: RecordTTL, Target: fqdn(web)})
		}
	}
	if paccErr == nil {
		// PACC's trust anchor: the digest of the exact bytes served and,
		// during a rollover, the earlier ones (draft-ietf-mailmaint-pacc).
		for _, digest := range append([]string{PACCDigest(doc)}, p.PACCRetired...) {
			out = append(out, Record{Name: PACCTXTLabel + "." + d, Type: "TXT", TTL: PACCTTL, Text: []string{PACCText(digest)}})
		}
	}
	for _, mx := range p.MX {
		out = append(out, Record{Name: d, Type: "MX", TTL: RecordTTL, Preference: mx.Preference, Target: fqdn(mx.Host)})
	}
	return append(out, p.sendingRecords()...)
}

// WriteZone writes the records of every policy in zone-file syntax, one
// commented block per domain.
func WriteZone(w io.Writer, policies []Policy) error {
	for i, p := range policies {
		if i > 0 {
			if _, err := fmt.Fprintln(w); err != nil {
				return err
			}
		}
		if _, err := fmt.Fprintf(w, "; %s (%s): client settings records (RFC 6186, RFC 8314), autoconfig, autodiscover, PACC, MX\n", p.Domain, p.DisplayName); err != nil {
			return err
		}
		if _, err := p.PACC(); err != nil {
			if _, err := fmt.Fprintf(w, "; no PACC records: %v\n", err); err != nil {
				return err
			}
		}
		for _, r := range p.Records() {
			if _, err := fmt.Fprintln(w, r.String()); err != nil {
				return err
			}
		}
	}
	return nil
}
