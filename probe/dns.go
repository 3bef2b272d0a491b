package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"mailsetup/autoconfig"
	"mailsetup/finding"
)

// connect inspects one endpoint without logging in.
func (r *runner) connect(ctx context.Context, e autoconfig.Endpoint, s *stepState) {
	r.withModeCheck(ctx, e, s, func(ctx context.Context, s *stepState) {
		switch e.Protocol {
		case autoconfig.IMAP:
			r.connectIMAP(ctx, e, s)
		case autoconfig.POP3:
			r.connectPOP3(ctx, e, s)
		default:
			r.connectSMTP(ctx, e, s)
		}
	})
}

// checkDNS asks opts.Resolver for every record the policy says the
// domain should publish (SRV, MX, autoconfig/autodiscover names and,
// for a domain that sends mail from here, DKIM, SPF, DMARC, MTA-STS and
// TLS-RPT) and compares the answers; then it fetches the MTA-STS policy.
func (r *runner) checkDNS(ctx context.Context, s *stepState) {
	type key struct{ name, typ string }
	want := map[key][]string{}
	var keys []key
	for _, rec := range r.pol.Records() {
		k := key{strings.ToLower(rec.Name), rec.Type}
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
		want[k] = append(want[k], rec.Data())
	}
	c := &dns.Client{Net: "udp"}
	for _, k := range keys {
		got, err := r.query(ctx, c, k.name, k.typ)
		w := want[k]
		slices.Sort(w)
		if k.typ == "TXT" {
			// Other TXT records may share the name (a site
			// verification at the apex): only those of the same
			// kind ("v=spf1", "v=DKIM1", ...) are compared.
			got = slices.DeleteFunc(got, func(v string) bool { return txtKind(v) != txtKind(w[0]) })
		}
		if err != nil {
			s.note("%s %s: %v", k.name, k.typ, err)
		}
		if slices.Equal(got, w) || (k.typ == "TXT" && len(got) > len(w) && !slices.ContainsFunc(w, func(v string) bool { return !slices.Contains(got, v) })) {
			// A PACC rollover publishes earlier digests beside the current one.
			s.note("%s %s: %s", k.name, k.typ, strings.Join(got, ", "))
			continue
		}
		notOffered := k.typ == "SRV" && slices.Equal(w, []string{"0 0 0 ."})
		if notOffered && len(got) == 0 {
			s.note("%s %s: none (the service is not offered; \"0 0 0 .\" would say so explicitly)", k.name, k.typ)
			continue
		}
		have := "nothing"
		if len(got) > 0 {
			have = strings.Join(got, ", ")
		}
		ev := fmt.Sprintf("%s %s: got %s, want %s", k.name, k.typ, have, strings.Join(w, ", "))
		v := finding.Vars{"value": k.name, "expected": strings.Join(w, ", ")}
		switch {
		case k.typ == "TXT":
			s.find(finding.New(txtFinding(k.name, w[0]), v, ev))
		case k.typ == "MX":
			s.find(finding.New("dns.mx-missing", v, ev))
		case k.typ == "SRV" && !strings.HasPrefix(k.name, "_autodiscover."):
			s.find(finding.New("dns.srv-missing", v, ev))
		default:
			s.find(finding.New("dns.autoconfig-missing", v, ev))
		}
	}
	r.checkMTASTSPolicy(ctx, s)
}

// txtKind is the version tag a TXT value starts with ("v=spf1").
func txtKind(v string) string {
	kind, _, _ := strings.Cut(v, ";")
	kind, _, _ = strings.Cut(kind, " ")
	return strings.ToLower(kind)
}

// txtFinding names the finding of a missing or different TXT record.
func txtFinding(name, want string) string {
	switch txtKind(want) {
	case "v=dkim1":
		return "dns.dkim-missing"
	case "v=spf1":
		return "dns.spf-missing"
	case "v=dmarc1":
		return "dns.dmarc-missing"
	case "v=stsv1":
		return "dns.mta-sts-missing"
	case "v=tlsrptv1":
		return "dns.tlsrpt-missing"
	}
	return "dns.autoconfig-missing"
}

// checkMTASTSPolicy fetches the MTA-STS policy the domain publishes and
// compares it with the policy's (RFC 8461 §3.3: HTTPS with a valid
// certificate for mta-sts.<domain>).
func (r *runner) checkMTASTSPolicy(ctx context.Context, s *stepState) {
	want := r.pol.MTASTSPolicy()
	if want == "" {
		return
	}
	host := "mta-sts." + r.pol.Domain
	if r.opts.AllowedHost != nil && !r.opts.AllowedHost(host) {
		s.note("MTA-STS policy not fetched: %s is not an allowed host", host)
		return
	}
	u := r.discoveryURL(host, "/.well-known/mta-sts.txt")
	v := finding.Vars{"value": u, "expected": strings.ReplaceAll(strings.TrimSpace(want), "\r\n", "; ")}
	got, err := r.getPolicy(ctx, u)
	switch {
	case err != nil:
		s.find(finding.New("dns.mta-sts-policy", v, fmt.Sprintf("GET %s: %v", u, err)))
	case got != want:
		s.find(finding.New("dns.mta-sts-policy", v, fmt.Sprintf("GET %s: got %q, want %q", u, got, want)))
	default:
		s.note("%s: the MTA-STS policy as published", u)
	}
}

// getPolicy GETs an MTA-STS policy file: 200, at most 64 KiB.
func (r *runner) getPolicy(ctx context.Context, u string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	resp, err := r.httpClient().Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("HTTP %s", resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10+1))
	if err != nil {
		return "", err
	}
	if len(data) > 64<<10 {
		return "", errors.New("larger than 64 KiB")
	}
	return string(data), nil
}

// query asks the resolver for name/typ (TCP when the UDP answer is
// truncated) and returns the answers of that type, rendered and sorted.
func (r *runner) query(ctx context.Context, c *dns.Client, name, typ string) ([]string, error) {
	t, ok := dns.StringToType[typ]
	if !ok {
		return nil, fmt.Errorf("unknown record type %s", typ)
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), t)
	m.RecursionDesired = true
	in, _, err := c.ExchangeContext(ctx, m, r.opts.Resolver)
	if err == nil && in.Truncated {
		tc := &dns.Client{Net: "tcp"}
		in, _, err = tc.ExchangeContext(ctx, m, r.opts.Resolver)
	}
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", r.opts.Resolver, err)
	}
	if in.Rcode != dns.RcodeSuccess && in.Rcode != dns.RcodeNameError {
		return nil, fmt.Errorf("%s", dns.RcodeToString[in.Rcode])
	}
	var out []string
	for _, rr := range in.Answer {
		switch v := rr.(type) {
		case *dns.SRV:
			out = append(out, fmt.Sprintf("%d %d %d %s", v.Priority, v.Weight, v.Port, strings.ToLower(v.Target)))
		case *dns.MX:
			out = append(out, fmt.Sprintf("%d %s", v.Preference, strings.ToLower(v.Mx)))
		case *dns.CNAME:
			if typ == "CNAME" {
				out = append(out, strings.ToLower(v.Target))
			}
		case *dns.A:
			if typ == "A" {
				out = append(out, v.A.String())
			}
		case *dns.AAAA:
			if typ == "AAAA" {
				out = append(out, v.AAAA.String())
			}
		case *dns.TXT:
			if typ == "TXT" {
				out = append(out, strings.Join(v.Txt, ""))
			}
		}
	}
	slices.Sort(out)
	return out, nil
}
