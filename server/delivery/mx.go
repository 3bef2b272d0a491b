package delivery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// A Resolver asks one DNS server (miekg/dns), over UDP and over TCP when
// an answer is truncated, always under the caller's deadline.
type Resolver struct {
	// Server is "host:port" of the recursive resolver.
	Server string
}

// SystemResolver is the first name server of /etc/resolv.conf.
func SystemResolver() (*Resolver, error) {
	cc, err := dns.ClientConfigFromFile("/etc/resolv.conf")
	if err != nil {
		return nil, fmt.Errorf("reading the system's resolver: %w (set queue.resolver)", err)
	}
	if len(cc.Servers) == 0 {
		return nil, errors.New("no name server in /etc/resolv.conf (set queue.resolver)")
	}
	return &Resolver{Server: net.JoinHostPort(cc.Servers[0], cc.Port)}, nil
}

// errNoDomain: the domain does not exist (NXDOMAIN): a permanent failure.
var errNoDomain = errors.New("the domain does not exist (NXDOMAIN)")

// query asks one question and returns the answer section.
func (r *Resolver) query(ctx context.Context, name string, qtype uint16) ([]dns.RR, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = true
	m.SetEdns0(4096, false)
	c := &dns.Client{Net: "udp"}
	in, _, err := c.ExchangeContext(ctx, m, r.Server)
	if err == nil && in.Truncated {
		c.Net = "tcp"
		in, _, err = c.ExchangeContext(ctx, m, r.Server)
	}
	if err != nil {
		return nil, fmt.Errorf("DNS %s %s: %w", dns.TypeToString[qtype], name, err)
	}
	switch in.Rcode {
	case dns.RcodeSuccess:
		return in.Answer, nil
	case dns.RcodeNameError:
		return nil, errNoDomain
	default:
		return nil, fmt.Errorf("DNS %s %s: %s", dns.TypeToString[qtype], name, dns.RcodeToString[in.Rcode])
	}
}

// MX is one mail exchanger of a domain.
type MX struct {
	Host string
	Pref uint16
}

// LookupMX returns a domain's mail exchangers by preference (RFC 5321
// §5.1; equal preferences in the order received), the domain itself when
// it has no MX record (the implicit MX), and nullMX when it publishes
// the null MX of RFC 7505.
func (r *Resolver) LookupMX(ctx context.Context, domain string) (mxs []MX, nullMX bool, err error) {
	rrs, err := r.query(ctx, domain, dns.TypeMX)
	if err != nil {
		return nil, false, err
	}
	for _, rr := range rrs {
		if mx, ok := rr.(*dns.MX); ok {
			mxs = append(mxs, MX{Host: strings.TrimSuffix(strings.ToLower(mx.Mx), "."), Pref: mx.Preference})
		}
	}
	if len(mxs) == 1 && mxs[0].Host == "" {
		return nil, true, nil
	}
	if len(mxs) == 0 {
		return []MX{{Host: strings.ToLower(domain)}}, false, nil
	}
	slices.SortStableFunc(mxs, func(a, b MX) int { return int(a.Pref) - int(b.Pref) })
	// A "." among others is ignored (RFC 7505 §3: it must be the only one).
	return slices.DeleteFunc(mxs, func(m MX) bool { return m.Host == "" }), false, nil
}

// LookupIP returns a host's IPv6 and IPv4 addresses (AAAA, then A).
func (r *Resolver) LookupIP(ctx context.Context, host string) ([]net.IP, error) {
	if ip := net.ParseIP(host); ip != nil {
		return []net.IP{ip}, nil
	}
	var ips []net.IP
	var errs []error
	for _, t := range []uint16{dns.TypeAAAA, dns.TypeA} {
		rrs, err := r.query(ctx, host, t)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, rr := range rrs {
			switch a := rr.(type) {
			case *dns.AAAA:
				ips = append(ips, a.AAAA)
			case *dns.A:
				ips = append(ips, a.A)
			}
		}
	}
	if len(ips) == 0 {
		if len(errs) > 0 {
			return nil, errors.Join(errs...)
		}
		return nil, fmt.Errorf("%s has no address (A/AAAA)", host)
	}
	return ips, nil
}
