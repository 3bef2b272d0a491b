package dnsd

import (
	"hash/fnv"
	"net"
	"net/netip"
	"strings"

	"github.com/miekg/dns"

	"mailsetup/autoconfig"
)

// SOA timers of the synthesized zones. MinTTL also caps the TTL of the SOA
// sent with negative answers (RFC 2308 §5).
const (
	soaTTL     = autoconfig.RecordTTL
	soaRefresh = 3600
	soaRetry   = 900
	soaExpire  = 604800
	// SOAMinTTL is the SOA minimum field, the negative-caching TTL.
	SOAMinTTL = 300
)

// zone is the data of one configured domain, built from its policy for one
// query: owner names are canonical (lower case, fully qualified).
type zone struct {
	apex string
	soa  *dns.SOA
	rrs  map[string][]dns.RR
}

// apexOf returns the canonical apex of a policy's domain, or "" when the
// domain is empty or the root (which would make us answer for everything).
func apexOf(p autoconfig.Policy) string {
	d := strings.TrimSpace(p.Domain)
	if d == "" || d == "." {
		return ""
	}
	if _, ok := dns.IsDomainName(d); !ok {
		return ""
	}
	return dns.CanonicalName(d)
}

// SOA returns the SOA record the responder synthesizes for the policy's
// domain: primary name server ns.<domain>., mailbox hostmaster.<domain>.,
// a serial that is a hash of the domain's records (stable while they do not
// change), minimum TTL SOAMinTTL. It returns nil for a policy without a
// usable domain.
func SOA(p autoconfig.Policy) *dns.SOA {
	apex := apexOf(p)
	if apex == "" {
		return nil
	}
	return newSOA(apex, p.Records())
}

func newSOA(apex string, records []autoconfig.Record) *dns.SOA {
	h := fnv.New32a()
	h.Write([]byte(apex))
	for _, r := range records {
		h.Write([]byte{'\n'})
		h.Write([]byte(r.String()))
	}
	return &dns.SOA{
		Hdr:     dns.RR_Header{Name: apex, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: soaTTL},
		Ns:      "ns." + apex,
		Mbox:    "hostmaster." + apex,
		Serial:  h.Sum32(),
		Refresh: soaRefresh,
		Retry:   soaRetry,
		Expire:  soaExpire,
		Minttl:  SOAMinTTL,
	}
}

// buildZone converts a policy's records into a zone. Records that cannot
// be expressed (an unknown type, an address of the wrong family) are
// skipped; duplicates are dropped.
func buildZone(p autoconfig.Policy) *zone {
	apex := apexOf(p)
	if apex == "" {
		return nil
	}
	records := p.Records()
	z := &zone{apex: apex, soa: newSOA(apex, records), rrs: map[string][]dns.RR{}}
	z.rrs[apex] = []dns.RR{z.soa}
	seen := map[string]bool{}
	for _, r := range records {
		rr := toRR(r)
		if rr == nil {
			continue
		}
		key := rr.String()
		if seen[key] {
			continue
		}
		seen[key] = true
		owner := rr.Header().Name
		z.rrs[owner] = append(z.rrs[owner], rr)
	}
	return z
}

// toRR converts one policy record to its resource record with a canonical
// owner name, or nil when the record cannot be expressed.
func toRR(r autoconfig.Record) dns.RR {
	if r.Name == "" {
		return nil
	}
	hdr := func(t uint16) dns.RR_Header {
		return dns.RR_Header{Name: dns.CanonicalName(r.Name), Rrtype: t, Class: dns.ClassINET, Ttl: r.TTL}
	}
	switch r.Type {
	case "SRV":
		return &dns.SRV{Hdr: hdr(dns.TypeSRV), Priority: uint16(r.Priority), Weight: uint16(r.Weight), Port: uint16(r.Port), Target: dns.Fqdn(r.Target)}
	case "MX":
		return &dns.MX{Hdr: hdr(dns.TypeMX), Preference: uint16(r.Preference), Mx: dns.Fqdn(r.Target)}
	case "CNAME":
		return &dns.CNAME{Hdr: hdr(dns.TypeCNAME), Target: dns.Fqdn(r.Target)}
	case "TXT":
		return &dns.TXT{Hdr: hdr(dns.TypeTXT), Txt: r.Text}
	case "A":
		if !r.Addr.Is4() && !r.Addr.Is4In6() {
			return nil
		}
		return &dns.A{Hdr: hdr(dns.TypeA), A: addrIP(r.Addr.Unmap())}
	case "AAAA":
		if !r.Addr.Is6() || r.Addr.Is4In6() {
			return nil
		}
		return &dns.AAAA{Hdr: hdr(dns.TypeAAAA), AAAA: addrIP(r.Addr)}
	}
	return nil
}

func addrIP(a netip.Addr) net.IP { return net.IP(a.AsSlice()) }

// exists reports whether name (canonical) owns records in z or is an empty
// non-terminal: an ancestor of a name that does (RFC 8020).
func (z *zone) exists(name string) bool {
	if len(z.rrs[name]) > 0 {
		return true
	}
	for owner := range z.rrs {
		if owner != name && dns.IsSubDomain(name, owner) {
			return true
		}
	}
	return false
}

// negativeSOA returns a copy of the SOA for the authority section of a
// negative answer, its TTL capped at the minimum field (RFC 2308 §3).
func (z *zone) negativeSOA() dns.RR {
	soa := dns.Copy(z.soa).(*dns.SOA)
	soa.Hdr.Ttl = min(soa.Hdr.Ttl, soa.Minttl)
	return soa
}
