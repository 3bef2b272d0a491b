package clients

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Options configure the domain check and the simulator.
type Options struct {
	// Resolver is the DNS server every lookup goes to, "host:port".
	// Required: the checks compare DNS answers and resolve the hosts
	// they fetch documents from through it, never through the system.
	Resolver string
	// RootCAs verify the document hosts' certificates; nil: the
	// system's roots.
	RootCAs *x509.CertPool
	// Timeout bounds each DNS query and each document fetch; 0: 5 s.
	Timeout time.Duration
	// Now is the time certificates are checked at; nil: time.Now.
	Now func() time.Time
	// HTTPSPort and HTTPPort replace 443 and 80 for every document host
	// (a test's listener); 0: the standard ports.
	HTTPSPort, HTTPPort int
}

func (o Options) timeout() time.Duration {
	if o.Timeout <= 0 {
		return 5 * time.Second
	}
	return o.Timeout
}

func (o Options) now() time.Time {
	if o.Now == nil {
		return time.Now()
	}
	return o.Now()
}

// maxDocument bounds every document read.
const maxDocument = 256 << 10

// env does the lookups of one check: DNS through the resolver, HTTP(S)
// to hosts it resolves through the same resolver, each under Timeout.
type env struct {
	opts Options
}

// answer is one DNS question's answer.
type answer struct {
	// Values are the rendered answers of the asked type, sorted.
	Values []string
	// CNAME is the first CNAME target in the answer ("" for none).
	CNAME string
	// Err is why there is no answer (a timeout, SERVFAIL); NXDOMAIN and
	// NODATA are an empty answer, not an error.
	Err error
}

// lookup asks the resolver for name/typ (TCP when the UDP answer is
// truncated).
func (e *env) lookup(ctx context.Context, name string, typ uint16) answer {
	ctx, cancel := context.WithTimeout(ctx, e.opts.timeout())
	defer cancel()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(strings.ToLower(name)), typ)
	m.RecursionDesired = true
	m.SetEdns0(1232, false)
	c := &dns.Client{Net: "udp", Timeout: e.opts.timeout()}
	in, _, err := c.ExchangeContext(ctx, m, e.opts.Resolver)
	if err == nil && in.Truncated {
		c.Net = "tcp"
		in, _, err = c.ExchangeContext(ctx, m, e.opts.Resolver)
	}
	if err != nil {
		return answer{Err: fmt.Errorf("asking %s: %w", e.opts.Resolver, err)}
	}
	if in.Rcode != dns.RcodeSuccess && in.Rcode != dns.RcodeNameError {
		return answer{Err: fmt.Errorf("%s answered %s", e.opts.Resolver, dns.RcodeToString[in.Rcode])}
	}
	var a answer
	for _, rr := range in.Answer {
		if c, ok := rr.(*dns.CNAME); ok && a.CNAME == "" {
			a.CNAME = strings.ToLower(c.Target)
		}
		if rr.Header().Rrtype != typ {
			continue
		}
		a.Values = append(a.Values, rrValue(rr))
	}
	slices.Sort(a.Values)
	return a
}

// rrValue renders a record's data as `mailsetup records` writes it.
func rrValue(rr dns.RR) string {
	switch v := rr.(type) {
	case *dns.SRV:
		return fmt.Sprintf("%d %d %d %s", v.Priority, v.Weight, v.Port, strings.ToLower(v.Target))
	case *dns.MX:
		return fmt.Sprintf("%d %s", v.Preference, strings.ToLower(v.Mx))
	case *dns.CNAME:
		return strings.ToLower(v.Target)
	case *dns.A:
		return v.A.String()
	case *dns.AAAA:
		return v.AAAA.String()
	case *dns.TXT:
		return strings.Join(v.Txt, "")
	}
	return strings.TrimPrefix(rr.String(), rr.Header().String())
}

// addrs resolves host to its addresses through the resolver (A, then
// AAAA).
func (e *env) addrs(ctx context.Context, host string) ([]string, error) {
	if h := strings.ToLower(strings.TrimSuffix(host, ".")); h == "localhost" || strings.HasSuffix(h, ".localhost") {
		// RFC 6761 §6.3: localhost names are the loopback, never asked.
		return []string{"127.0.0.1", "::1"}, nil
	}
	var out []string
	var errs []error
	for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
		a := e.lookup(ctx, host, t)
		if a.Err != nil {
			errs = append(errs, a.Err)
		}
		out = append(out, a.Values...)
	}
	if len(out) == 0 {
		if len(errs) > 0 {
			return nil, errors.Join(errs...)
		}
		return nil, fmt.Errorf("%s has no address in DNS", host)
	}
	return out, nil
}

// Fetch outcomes, in the words the reports use.
const (
	fetchOK          = "ok"
	fetchNoAddress   = "no address"
	fetchUnreachable = "unreachable"
	fetchCertificate = "certificate rejected"
	fetchHTTPStatus  = "HTTP error"
)

// fetched is the result of one document fetch.
type fetched struct {
	URL    string
	Status int
	Body   []byte
	// Outcome is one of the fetch constants; Detail says more.
	Outcome, Detail string
	// Location is a redirect's target (not followed).
	Location string
}

func (f fetched) ok() bool { return f.Outcome == fetchOK }

// reason is the outcome of a failed fetch as a Source's Reason and
// Value (the HTTP status code; a redirect's target).
func (f fetched) reason() (reason, value string) {
	switch {
	case f.Location != "":
		return ReasonRedirect, f.Location
	case f.Outcome == fetchNoAddress:
		return ReasonNoAddress, ""
	case f.Outcome == fetchCertificate:
		return ReasonCertificate, ""
	case f.Outcome == fetchHTTPStatus:
		return ReasonHTTPStatus, strconv.Itoa(f.Status)
	}
	return ReasonUnreachable, ""
}

// fetch sends one request to scheme://host/path (host may carry a
// port), the host resolved
// through the resolver, certificates checked against RootCAs at Now,
// no redirect followed, the body capped at maxDocument.
func (e *env) fetch(ctx context.Context, method, scheme, host, path, contentType string, body []byte) fetched {
	port := 443
	if scheme == "http" {
		port = 80
	}
	if h, p, err := net.SplitHostPort(host); err == nil {
		// A host with its port (an SRV target, a web URL).
		host = h
		port, _ = strconv.Atoi(p)
	}
	switch {
	case scheme == "http" && e.opts.HTTPPort != 0:
		port = e.opts.HTTPPort
	case scheme == "https" && e.opts.HTTPSPort != 0:
		port = e.opts.HTTPSPort
	}
	u := scheme + "://" + host + path
	if (scheme == "https" && port != 443) || (scheme == "http" && port != 80) {
		u = scheme + "://" + net.JoinHostPort(host, strconv.Itoa(port)) + path
	}
	f := fetched{URL: u}
	ctx, cancel := context.WithTimeout(ctx, e.opts.timeout())
	defer cancel()
	addrs, err := e.addrs(ctx, host)
	if err != nil {
		f.Outcome, f.Detail = fetchNoAddress, err.Error()
		return f
	}
	dialer := &net.Dialer{Timeout: e.opts.timeout()}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var last error
			for _, a := range addrs {
				c, err := dialer.DialContext(ctx, network, net.JoinHostPort(a, strconv.Itoa(port)))
				if err == nil {
					return c, nil
				}
				last = err
			}
			return nil, last
		},
		TLSClientConfig:       &tls.Config{RootCAs: e.opts.RootCAs, MinVersion: tls.VersionTLS12, Time: e.opts.now, ServerName: host},
		DisableKeepAlives:     true,
		Proxy:                 nil,
		ResponseHeaderTimeout: e.opts.timeout(),
		TLSHandshakeTimeout:   e.opts.timeout(),
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: e.opts.timeout(),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		f.Outcome, f.Detail = fetchUnreachable, err.Error()
		return f
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := client.Do(req)
	if err != nil {
		f.Outcome, f.Detail = fetchUnreachable, err.Error()
		if certErr := certificateError(err); certErr != "" {
			f.Outcome, f.Detail = fetchCertificate, certErr
		}
		return f
	}
	defer resp.Body.Close()
	f.Status = resp.StatusCode
	f.Location = resp.Header.Get("Location")
	f.Body, err = io.ReadAll(io.LimitReader(resp.Body, maxDocument))
	switch {
	case err != nil:
		f.Outcome, f.Detail = fetchUnreachable, "reading the body: "+err.Error()
	case resp.StatusCode != http.StatusOK:
		f.Outcome, f.Detail = fetchHTTPStatus, resp.Status
	default:
		f.Outcome = fetchOK
	}
	return f
}

// certificateError says why a certificate was rejected, "" when err is
// not about the certificate.
func certificateError(err error) string {
	var inv x509.CertificateInvalidError
	var host x509.HostnameError
	var unknown x509.UnknownAuthorityError
	var verify *tls.CertificateVerificationError
	switch {
	case errors.As(err, &inv):
		if inv.Reason == x509.Expired {
			return "the certificate has expired or is not valid yet: " + inv.Error()
		}
		return inv.Error()
	case errors.As(err, &host):
		return "the certificate is for other names: " + host.Error()
	case errors.As(err, &unknown):
		return "the certificate is not signed by a trusted authority"
	case errors.As(err, &verify):
		return verify.Error()
	}
	return ""
}
