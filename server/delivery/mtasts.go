package delivery

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// MTA-STS (RFC 8461): a domain that publishes a policy in enforce mode
// gets its mail only over TLS verified for one of the policy's MX
// names; never in plaintext, never to another host.

// stsPolicy is a fetched policy.
type stsPolicy struct {
	id      string
	mode    string // enforce, testing or none
	mx      []string
	expires time.Time
}

// stsMaxBody bounds the policy file (RFC 8461 §3.3 suggests 64 KiB).
const stsMaxBody = 64 << 10

// matches reports whether host is one of the policy's mx patterns
// (RFC 8461 §4.1: "*." matches exactly one leftmost label).
func (p *stsPolicy) matches(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, m := range p.mx {
		if rest, ok := strings.CutPrefix(m, "*."); ok {
			if i := strings.IndexByte(host, '.'); i > 0 && host[i+1:] == rest {
				return true
			}
		} else if host == m {
			return true
		}
	}
	return false
}

// parsePolicy reads a policy file (RFC 8461 §3.2).
func parsePolicy(body string) (*stsPolicy, error) {
	p := &stsPolicy{}
	var version string
	maxAge := -1
	for _, line := range strings.Split(body, "\n") {
		k, v, ok := strings.Cut(strings.TrimRight(line, "\r"), ":")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "version":
			version = v
		case "mode":
			p.mode = v
		case "mx":
			p.mx = append(p.mx, strings.ToLower(strings.TrimSuffix(v, ".")))
		case "max_age":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("MTA-STS policy: max_age %q", v)
			}
			maxAge = min(n, 31557600)
		}
	}
	if version != "STSv1" {
		return nil, fmt.Errorf("MTA-STS policy: version %q, want STSv1", version)
	}
	if p.mode != "enforce" && p.mode != "testing" && p.mode != "none" {
		return nil, fmt.Errorf("MTA-STS policy: mode %q", p.mode)
	}
	if maxAge < 0 {
		return nil, errors.New("MTA-STS policy: no max_age")
	}
	if p.mode != "none" && len(p.mx) == 0 {
		return nil, errors.New("MTA-STS policy: no mx")
	}
	p.expires = time.Now().Add(time.Duration(maxAge) * time.Second)
	return p, nil
}

// stsRecordID returns the id of the domain's _mta-sts TXT record, ""
// when it publishes none.
func (a *Agent) stsRecordID(ctx context.Context, r *routing, domain string) (string, error) {
	rrs, err := r.Resolver.query(ctx, "_mta-sts."+domain, dns.TypeTXT)
	if errors.Is(err, errNoDomain) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	for _, rr := range rrs {
		t, ok := rr.(*dns.TXT)
		if !ok {
			continue
		}
		txt := strings.Join(t.Txt, "")
		if !strings.HasPrefix(txt, "v=STSv1") {
			continue
		}
		for _, f := range strings.Split(txt, ";") {
			if id, ok := strings.CutPrefix(strings.TrimSpace(f), "id="); ok {
				return id, nil
			}
		}
	}
	return "", nil
}

// stsPolicy returns the domain's MTA-STS policy (nil: none): the cached
// one while it is valid and the DNS record's id has not changed, else
// fetched again. A failed fetch keeps a cached policy (RFC 8461 §5.1).
func (a *Agent) stsPolicy(ctx context.Context, r *routing, domain string) *stsPolicy {
	a.mu.Lock()
	cached := a.sts[domain]
	a.mu.Unlock()
	if cached != nil && time.Now().After(cached.expires) {
		cached = nil
	}
	id, err := a.stsRecordID(ctx, r, domain)
	if err != nil || id == "" || (cached != nil && cached.id == id) {
		return cached
	}
	p, err := a.fetchPolicy(ctx, r, domain)
	if err != nil {
		a.log.Warn("MTA-STS: cannot fetch the policy", "domain", domain, "err", err)
		return cached
	}
	p.id = id
	a.mu.Lock()
	a.sts[domain] = p
	a.mu.Unlock()
	return p
}

// fetchPolicy gets https://mta-sts.DOMAIN/.well-known/mta-sts.txt: a
// verified certificate, no redirects, a bounded body, our deadline.
func (a *Agent) fetchPolicy(ctx context.Context, r *routing, domain string) (*stsPolicy, error) {
	host := "mta-sts." + domain
	ctx, cancel := context.WithTimeout(ctx, r.ConnectTimeout)
	defer cancel()
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			ips, err := a.lookupIP(ctx, r, host)
			if err != nil {
				return nil, err
			}
			d := net.Dialer{}
			return d.DialContext(ctx, "tcp", net.JoinHostPort(ips[0].String(), strconv.Itoa(a.opts.PolicyPort)))
		},
		TLSClientConfig:       &tls.Config{RootCAs: a.opts.RootCAs, MinVersion: tls.VersionTLS12},
		ResponseHeaderTimeout: r.ConnectTimeout,
		DisableKeepAlives:     true,
	}
	client := &http.Client{Transport: tr, Timeout: r.ConnectTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+host+"/.well-known/mta-sts.txt", nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: HTTP %s", req.URL, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, stsMaxBody+1))
	if err != nil {
		return nil, err
	}
	if len(body) > stsMaxBody {
		return nil, fmt.Errorf("%s: over %d bytes", req.URL, stsMaxBody)
	}
	return parsePolicy(string(body))
}
