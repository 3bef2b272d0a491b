package probe

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/miekg/dns"

	"mailsetup/autoconfig"
	"mailsetup/autoconfig/autodiscover"
	"mailsetup/autoconfig/mozilla"
)

// ErrNotDiscovered: Options.Discover found no settings for the domain.
// Run returns it wrapped in a *DiscoveryError.
var ErrNotDiscovered = errors.New("no settings discovered")

// DiscoveryError is Run's error when discovery found nothing: every
// attempt, with its evidence, is in Steps.
type DiscoveryError struct {
	Domain string
	Steps  []Step
}

func (e *DiscoveryError) Error() string {
	var parts []string
	for _, s := range e.Steps {
		switch {
		case s.Error != "":
			parts = append(parts, s.Name+": "+s.Error)
		case len(s.Evidence) > 0:
			parts = append(parts, s.Name+": "+strings.Join(s.Evidence, "; "))
		}
	}
	return fmt.Sprintf("probe: %s: %v (%s)", e.Domain, ErrNotDiscovered, strings.Join(parts, "; "))
}

func (e *DiscoveryError) Unwrap() error { return ErrNotDiscovered }

// discover finds the settings of addr's domain the way clients do and
// returns them as a policy with its source. Each attempt is a step.
func (r *runner) discover(ctx context.Context, addr autoconfig.Address) (autoconfig.Policy, string, error) {
	domain := addr.Domain
	client := r.httpClient()

	q := "?emailaddress=" + url.QueryEscape(addr.String())
	for _, u := range []string{
		r.discoveryURL("autoconfig."+domain, "/mail/config-v1.1.xml"+q),
		r.discoveryURL(domain, "/.well-known/autoconfig/mail/config-v1.1.xml"+q),
	} {
		if pol, found := r.tryThunderbirdDocument(ctx, client, "autoconfig "+u, u, domain); found {
			return pol, "autoconfig", nil
		}
	}

	for _, u := range []string{
		r.discoveryURL("autodiscover."+domain, "/autodiscover/autodiscover.xml"),
		r.discoveryURL(domain, "/autodiscover/autodiscover.xml"),
	} {
		var pol autoconfig.Policy
		found := false
		r.record(ctx, discoverStep("autodiscover "+u), func(ctx context.Context, s *stepState) {
			body, ok := r.fetch(ctx, client, http.MethodPost, u, autodiscoverRequest(addr.String()), s)
			if !ok {
				return
			}
			p, err := autodiscover.ParseResponse(bytes.NewReader(body))
			if err != nil {
				s.fail(fmt.Errorf("parsing the Autodiscover response: %w", err))
				return
			}
			p.Domain = domain
			s.note("settings: %s", describePolicy(p))
			s.note("POP3 retention is not in Autodiscover: not compared")
			pol, found = p, true
		}, nil)
		if found {
			r.popUnknown = true
			return pol, "autodiscover", nil
		}
	}

	var pol autoconfig.Policy
	found := false
	r.record(ctx, discoverStep("srv "+domain), func(ctx context.Context, s *stepState) {
		if r.opts.Resolver == "" {
			s.note("skipped: no DNS resolver given")
			return
		}
		p, ok := r.discoverSRV(ctx, domain, s)
		if ok {
			s.note("settings: %s", describePolicy(p))
			s.note("POP3 retention is not in DNS: not compared")
			pol, found = p, true
		}
	}, nil)
	if found {
		r.popUnknown = true
		return pol, "srv", nil
	}

	if p, ok := r.discoverMX(ctx, addr); ok {
		return p, "mx-autoconfig", nil
	}
	if p, ok := r.discoverGuess(ctx, domain); ok {
		r.popUnknown = true
		return p, "guess", nil
	}
	r.mu.Lock()
	steps := r.sortedSteps()
	r.mu.Unlock()
	return autoconfig.Policy{}, "", &DiscoveryError{Domain: domain, Steps: steps}
}

// discoverStep is a discovery attempt named "discover <what>".
func discoverStep(what string) Step {
	return Step{Name: "discover " + what, Kind: KindDiscover}
}

// describePolicy lists a discovered policy's endpoints in one line.
func describePolicy(p autoconfig.Policy) string {
	parts := []string{"username " + string(p.Username)}
	for _, e := range slices.Concat(p.IMAP, p.POP3, p.Submission) {
		parts = append(parts, e.String())
	}
	return strings.Join(parts, ", ")
}

// discoveryURL is https://host[:HTTPSPort]path.
func (r *runner) discoveryURL(host, path string) string {
	if p := r.opts.HTTPSPort; p != 0 && p != 443 {
		host = net.JoinHostPort(host, strconv.Itoa(p))
	}
	return "https://" + host + path
}

// autodiscoverRequest is an Outlook POX request for address. It carries
// no credentials.
func autodiscoverRequest(address string) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?>` + "\n")
	b.WriteString(`<Autodiscover xmlns="` + autodiscover.RequestNamespace + `"><Request><EMailAddress>`)
	xml.EscapeText(&b, []byte(address))
	b.WriteString(`</EMailAddress><AcceptableResponseSchema>` + autodiscover.OutlookResponseSchema + `</AcceptableResponseSchema></Request></Autodiscover>`)
	return b.Bytes()
}

// httpClient is Options.HTTPClient or the default discovery client.
func (r *runner) httpClient() *http.Client {
	if r.opts.HTTPClient != nil {
		return r.opts.HTTPClient
	}
	return &http.Client{
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: r.opts.RootCAs, MinVersion: tls.VersionTLS12, Time: r.opts.Now},
			DialContext: func(ctx context.Context, _, hostport string) (net.Conn, error) {
				return r.dialAddr(ctx, hostport)
			},
			Proxy:                  nil,
			DisableKeepAlives:      true,
			TLSHandshakeTimeout:    r.opts.StepTimeout,
			ResponseHeaderTimeout:  r.opts.StepTimeout,
			MaxResponseHeaderBytes: 64 << 10,
		},
		Timeout: r.opts.StepTimeout,
		// Redirects only within the same https host: the discovery URLs
		// name the only web hosts the probe may contact.
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 || req.URL.Scheme != "https" || !strings.EqualFold(req.URL.Host, via[0].URL.Host) {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
}

// fetch GETs or POSTs u and returns the body of a 200 response, at most
// maxDocument bytes. Failures go into s.
func (r *runner) fetch(ctx context.Context, client *http.Client, method, u string, body []byte, s *stepState) ([]byte, bool) {
	pu, err := url.Parse(u)
	if err != nil {
		s.fail(fmt.Errorf("discovery URL: %w", err))
		return nil, false
	}
	if r.opts.AllowedHost != nil && !r.opts.AllowedHost(pu.Hostname()) {
		s.note("not fetched: %s is not an allowed host", pu.Hostname())
		return nil, false
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		s.fail(fmt.Errorf("%s: %w", method, err))
		return nil, false
	}
	if body != nil {
		req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	}
	resp, err := client.Do(req)
	if err != nil {
		s.fail(fmt.Errorf("%s: %w", method, err))
		return nil, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		s.fail(fmt.Errorf("%s: HTTP %s", method, resp.Status))
		return nil, false
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxDocument+1))
	if err != nil {
		s.fail(fmt.Errorf("%s: reading the body: %w", method, err))
		return nil, false
	}
	if len(data) > maxDocument {
		s.fail(fmt.Errorf("%s: body larger than %d bytes", method, maxDocument))
		return nil, false
	}
	s.note("%s: %s, %d bytes", method, resp.Status, len(data))
	return data, true
}

// discoverSRV reads the RFC 6186/8314 SRV records of domain: implicit TLS
// services before STARTTLS ones, each in priority order. "." targets
// (service not offered) are skipped.
func (r *runner) discoverSRV(ctx context.Context, domain string, s *stepState) (autoconfig.Policy, bool) {
	services := []struct {
		label string
		proto autoconfig.Protocol
		sec   autoconfig.Security
	}{
		{"_imaps._tcp.", autoconfig.IMAP, autoconfig.TLS},
		{"_imap._tcp.", autoconfig.IMAP, autoconfig.STARTTLS},
		{"_pop3s._tcp.", autoconfig.POP3, autoconfig.TLS},
		{"_pop3._tcp.", autoconfig.POP3, autoconfig.STARTTLS},
		{"_submissions._tcp.", autoconfig.SMTP, autoconfig.TLS},
		{"_submission._tcp.", autoconfig.SMTP, autoconfig.STARTTLS},
	}
	p := autoconfig.Policy{Domain: domain, DisplayName: domain, Username: autoconfig.FullAddress}
	c := &dns.Client{Net: "udp"}
	for _, svc := range services {
		name := svc.label + domain
		recs, err := r.lookupSRV(ctx, c, name)
		if err != nil {
			s.note("%s SRV: %v", name, err)
			continue
		}
		if len(recs) == 0 {
			s.note("%s SRV: none", name)
			continue
		}
		for _, rec := range recs {
			target := strings.TrimSuffix(strings.ToLower(rec.Target), ".")
			s.note("%s SRV: %d %d %d %s", name, rec.Priority, rec.Weight, rec.Port, rec.Target)
			if target == "" || rec.Port == 0 {
				continue
			}
			e := autoconfig.Endpoint{Protocol: svc.proto, Host: target, Port: int(rec.Port), Security: svc.sec}
			switch svc.proto {
			case autoconfig.IMAP:
				p.IMAP = append(p.IMAP, e)
			case autoconfig.POP3:
				p.POP3 = append(p.POP3, e)
			default:
				p.Submission = append(p.Submission, e)
			}
		}
	}
	switch {
	case len(p.IMAP) > 0:
		p.Prefer = autoconfig.IMAP
	case len(p.POP3) > 0:
		p.Prefer = autoconfig.POP3
	default:
		s.fail(errors.New("no IMAP or POP3 SRV record"))
		return autoconfig.Policy{}, false
	}
	return p, true
}

// lookupSRV asks Options.Resolver for the SRV records of name, sorted by
// priority, then weight (highest first).
func (r *runner) lookupSRV(ctx context.Context, c *dns.Client, name string) ([]*dns.SRV, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeSRV)
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
		return nil, fmt.Errorf("query %s: %s", r.opts.Resolver, dns.RcodeToString[in.Rcode])
	}
	var out []*dns.SRV
	for _, rr := range in.Answer {
		if v, ok := rr.(*dns.SRV); ok {
			out = append(out, v)
		}
	}
	slices.SortStableFunc(out, func(a, b *dns.SRV) int {
		if a.Priority != b.Priority {
			return int(a.Priority) - int(b.Priority)
		}
		return int(b.Weight) - int(a.Weight)
	})
	return out, nil
}

// tryThunderbirdDocument fetches a Thunderbird document as one discovery
// step and returns its settings for domain (a document written for another
// domain is used as Thunderbird uses it).
func (r *runner) tryThunderbirdDocument(ctx context.Context, client *http.Client, what, u, domain string) (autoconfig.Policy, bool) {
	var pol autoconfig.Policy
	found := false
	r.record(ctx, discoverStep(what), func(ctx context.Context, s *stepState) {
		body, ok := r.fetch(ctx, client, http.MethodGet, u, nil, s)
		if !ok {
			return
		}
		p, err := mozilla.Parse(bytes.NewReader(body))
		if err != nil {
			s.fail(fmt.Errorf("parsing the Thunderbird document: %w", err))
			return
		}
		if p.Domain != domain {
			s.note("the document is for %s, not %s; using it as Thunderbird does", p.Domain, domain)
		}
		p.Domain = domain
		s.note("settings: %s", describePolicy(p))
		pol, found = p, true
	}, nil)
	return pol, found
}
