package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/publicsuffix"

	"mailsetup/autoconfig"
)

// guessParallel bounds the concurrent guess attempts; guessTimeout bounds
// each (never more than Options.StepTimeout).
const (
	guessParallel = 8
	guessTimeout  = 3 * time.Second
)

// mxDomains returns the lowest-preference MX host of domain and the
// domains Thunderbird derives from it: the registrable domain (eTLD+1)
// and the domain one label longer, when the host has one. Evidence goes
// into s.
func (r *runner) mxDomains(ctx context.Context, domain string, s *stepState) []string {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(domain), dns.TypeMX)
	m.RecursionDesired = true
	in, _, err := (&dns.Client{Net: "udp"}).ExchangeContext(ctx, m, r.opts.Resolver)
	if err == nil && in.Truncated {
		in, _, err = (&dns.Client{Net: "tcp"}).ExchangeContext(ctx, m, r.opts.Resolver)
	}
	if err != nil {
		s.fail(fmt.Errorf("%s MX: query %s: %w", domain, r.opts.Resolver, err))
		return nil
	}
	if in.Rcode != dns.RcodeSuccess && in.Rcode != dns.RcodeNameError {
		s.fail(fmt.Errorf("%s MX: query %s: %s", domain, r.opts.Resolver, dns.RcodeToString[in.Rcode]))
		return nil
	}
	var best *dns.MX
	for _, rr := range in.Answer {
		if v, ok := rr.(*dns.MX); ok && (best == nil || v.Preference < best.Preference) {
			best = v
		}
	}
	if best == nil {
		s.note("%s MX: none", domain)
		return nil
	}
	host := strings.TrimSuffix(strings.ToLower(best.Mx), ".")
	s.note("%s MX: lowest preference %d %s", domain, best.Preference, host)
	if host == "" {
		return nil
	}
	base, err := publicsuffix.EffectiveTLDPlusOne(host)
	if err != nil {
		s.note("%s: no registrable domain: %v", host, err)
		return nil
	}
	if base == domain {
		s.note("skipped: the MX base domain %s is the email domain", base)
		return nil
	}
	var out []string
	// One more label ("next sub-domain"), first: it tells Office 365
	// from outlook.com.
	if rest, ok := strings.CutSuffix(host, "."+base); ok {
		labels := strings.Split(rest, ".")
		if longer := labels[len(labels)-1] + "." + base; longer != domain {
			out = append(out, longer)
		}
	}
	out = append(out, base)
	return out
}

// discoverMX is Thunderbird's forMX source: the autoconfig document of
// the MX host's domains, https only. ok is true when one was found.
func (r *runner) discoverMX(ctx context.Context, addr autoconfig.Address) (autoconfig.Policy, bool) {
	domain := addr.Domain
	var mxd []string
	r.record(ctx, discoverStep("mx "+domain), func(ctx context.Context, s *stepState) {
		if r.opts.Resolver == "" {
			s.note("skipped: no DNS resolver given")
			return
		}
		mxd = r.mxDomains(ctx, domain, s)
		if len(mxd) > 0 {
			s.note("MX domains: %s", strings.Join(mxd, ", "))
		}
	}, nil)
	client := r.httpClient()
	q := "?emailaddress=" + url.QueryEscape(addr.String())
	for _, d := range mxd {
		u := r.discoveryURL("autoconfig."+d, "/mail/config-v1.1.xml"+q)
		if pol, found := r.tryThunderbirdDocument(ctx, client, "mx-autoconfig "+u, u, domain); found {
			return pol, true
		}
	}
	return autoconfig.Policy{}, false
}

// guessTry is one host/port Thunderbird's guessing would try.
type guessTry struct {
	e      autoconfig.Endpoint
	result string // "ok" or why not
}

// guessTries lists Thunderbird's guesses for domain in its preference
// order: IMAP then POP3 incoming, SMTP outgoing; implicit TLS before
// STARTTLS, host names in Thunderbird's order.
func guessTries(d string) []autoconfig.Endpoint {
	var out []autoconfig.Endpoint
	add := func(proto autoconfig.Protocol, hosts []string, tlsPort, starttlsPort int) {
		for _, h := range hosts {
			out = append(out, autoconfig.Endpoint{Protocol: proto, Host: h, Port: tlsPort, Security: autoconfig.TLS})
		}
		for _, h := range hosts {
			out = append(out, autoconfig.Endpoint{Protocol: proto, Host: h, Port: starttlsPort, Security: autoconfig.STARTTLS})
		}
	}
	add(autoconfig.IMAP, []string{"imap." + d, "mail." + d, d}, 993, 143)
	add(autoconfig.POP3, []string{"pop3." + d, "pop." + d, "mail." + d, d}, 995, 110)
	add(autoconfig.SMTP, []string{"smtp." + d, "mail." + d, d}, 465, 587)
	return out
}

// discoverGuess is the last resort: it tries Thunderbird's guessed hosts
// and builds the policy from the first working IMAP or POP3 endpoint and
// the first working SMTP one.
func (r *runner) discoverGuess(ctx context.Context, domain string) (autoconfig.Policy, bool) {
	tries := guessTries(domain)
	results := make([]guessTry, len(tries))
	timeout := min(r.opts.StepTimeout, guessTimeout)
	sem := make(chan struct{}, guessParallel)
	var wg sync.WaitGroup
	for i, e := range tries {
		results[i].e = e
		if r.opts.AllowedHost != nil && !r.opts.AllowedHost(e.Host) {
			results[i].result = "not an allowed host"
			continue
		}
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				results[i].result = ctx.Err().Error()
				return
			}
			defer func() { <-sem }()
			actx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			if err := r.tryGuess(actx, e); err != nil {
				results[i].result = err.Error()
			} else {
				results[i].result = "ok"
			}
		})
	}
	wg.Wait()

	pick := func(protos ...autoconfig.Protocol) (autoconfig.Endpoint, bool) {
		for _, t := range results {
			if slices.Contains(protos, t.e.Protocol) && t.result == "ok" {
				return t.e, true
			}
		}
		return autoconfig.Endpoint{}, false
	}
	in, okIn := pick(autoconfig.IMAP, autoconfig.POP3)
	out, okOut := pick(autoconfig.SMTP)
	var pol autoconfig.Policy
	found := false
	r.record(ctx, discoverStep("guess "+domain), nil, func(s *stepState) {
		s.note("Thunderbird's guesses, in its order (TCP, greeting, TLS or STARTTLS/STLS offered; %s each):", timeout)
		for _, t := range results {
			s.note("%s %s:%d %s: %s", t.e.Protocol, t.e.Host, r.guessPort(t.e.Port), t.e.Security, t.result)
		}
		if !okIn {
			s.fail(fmt.Errorf("no guessed IMAP or POP3 server answered (imap.%[1]s, mail.%[1]s, %[1]s, pop3.%[1]s, pop.%[1]s)", domain))
			return
		}
		p := autoconfig.Policy{Domain: domain, DisplayName: domain, Username: autoconfig.FullAddress, Prefer: in.Protocol}
		in.Port = r.guessPort(in.Port)
		if in.Protocol == autoconfig.IMAP {
			p.IMAP = []autoconfig.Endpoint{in}
		} else {
			p.POP3 = []autoconfig.Endpoint{in}
		}
		if okOut {
			out.Port = r.guessPort(out.Port)
			p.Submission = []autoconfig.Endpoint{out}
		} else {
			s.note("no guessed SMTP server answered")
		}
		s.note("settings: %s", describePolicy(p))
		s.note("POP3 retention and the username form are not guessed: retention not compared, username the full address")
		pol, found = p, true
	})
	return pol, found
}

// guessPort is Options.Port(port), or port.
func (r *runner) guessPort(port int) int {
	if r.opts.Port != nil {
		return r.opts.Port(port)
	}
	return port
}

// tryGuess connects to one guessed endpoint and checks the greeting and,
// for STARTTLS, that the upgrade is offered; implicit TLS must verify as a
// mail client would. Nothing is sent but the capability query and QUIT/LOGOUT.
func (r *runner) tryGuess(ctx context.Context, e autoconfig.Endpoint) error {
	c, err := r.dialAddr(ctx, net.JoinHostPort(e.Host, strconv.Itoa(r.guessPort(e.Port))))
	if err != nil {
		return err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if e.Security == autoconfig.TLS {
		tc, err := handshake(ctx, c, r.strictConfig(e.Host))
		if err != nil {
			return err
		}
		c = tc
	}
	l := newLineConn(c)
	greet, err := l.readLine()
	if err != nil {
		return fmt.Errorf("greeting: %w", err)
	}
	var ok bool
	var caps []string
	switch e.Protocol {
	case autoconfig.IMAP:
		if !strings.HasPrefix(greet, "* OK") {
			return fmt.Errorf("greeting %q", trimLine(greet))
		}
		if err := l.writeLine("1 CAPABILITY"); err != nil {
			return err
		}
		for n := 0; ; n++ {
			line, err := l.readLine()
			if err != nil {
				return fmt.Errorf("CAPABILITY: %w", err)
			}
			if strings.HasPrefix(line, "1 ") {
				break
			}
			if n >= 100 {
				return errors.New("CAPABILITY: too many lines")
			}
			caps = append(caps, strings.Fields(strings.ToUpper(line))...)
		}
		ok = slices.Contains(caps, "STARTTLS")
		l.writeLine("2 LOGOUT")
	case autoconfig.POP3:
		if !strings.HasPrefix(greet, "+OK") {
			return fmt.Errorf("greeting %q", trimLine(greet))
		}
		if err := l.writeLine("CAPA"); err != nil {
			return err
		}
		line, err := l.readLine()
		if err != nil {
			return fmt.Errorf("CAPA: %w", err)
		}
		if strings.HasPrefix(line, "+OK") {
			for n := 0; n < 100; n++ {
				line, err := l.readLine()
				if err != nil {
					return fmt.Errorf("CAPA: %w", err)
				}
				if line == "." {
					break
				}
				caps = append(caps, strings.ToUpper(strings.TrimSpace(line)))
			}
		}
		ok = slices.Contains(caps, "STLS")
		l.writeLine("QUIT")
	default:
		for strings.HasPrefix(greet, "220-") {
			if greet, err = l.readLine(); err != nil {
				return fmt.Errorf("greeting: %w", err)
			}
		}
		if !strings.HasPrefix(greet, "220") {
			return fmt.Errorf("greeting %q", trimLine(greet))
		}
		if err := l.writeLine("EHLO we-guess.mailsetup.invalid"); err != nil {
			return err
		}
		for {
			line, err := l.readLine()
			if err != nil {
				return fmt.Errorf("EHLO: %w", err)
			}
			if !strings.HasPrefix(line, "250") {
				return fmt.Errorf("EHLO: %q", trimLine(line))
			}
			if len(line) > 4 {
				caps = append(caps, strings.ToUpper(strings.TrimSpace(line[4:])))
			}
			if !strings.HasPrefix(line, "250-") {
				break
			}
		}
		ok = slices.Contains(caps, "STARTTLS")
		l.writeLine("QUIT")
	}
	if e.Security == autoconfig.STARTTLS && !ok {
		if e.Protocol == autoconfig.POP3 {
			return errors.New("STLS not offered")
		}
		return errors.New("STARTTLS not offered")
	}
	return nil
}

// trimLine shortens a server line for evidence.
func trimLine(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
