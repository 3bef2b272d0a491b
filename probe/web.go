package probe

import (
	"context"
	"crypto/tls"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"mailsetup/autoconfig"
	"mailsetup/autoconfig/autodiscover"
	"mailsetup/autoconfig/mozilla"
	"mailsetup/finding"
)

// maxDocument bounds the autoconfig document the probe reads.
const maxDocument = 256 << 10

// checkAutoconfig fetches the live Thunderbird document from the
// policy's web URL and compares it with the policy.
func (r *runner) checkAutoconfig(ctx context.Context, s *stepState) {
	u := r.pol.Web.BaseURL + "/mail/config-v1.1.xml?emailaddress=" + url.QueryEscape(r.address)
	client := r.policyWebClient()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		s.fail(fmt.Errorf("autoconfig URL: %w", err))
		s.find(finding.New("autoconfig.unreachable", finding.Vars{"value": u}, err.Error()))
		return
	}
	resp, err := client.Do(req)
	if err != nil {
		s.fail(fmt.Errorf("GET %s: %w", u, err))
		s.find(finding.New("autoconfig.unreachable", finding.Vars{"value": u}, err.Error()))
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		s.fail(fmt.Errorf("GET %s: %s", u, resp.Status))
		s.find(finding.New("autoconfig.unreachable", finding.Vars{"value": u}, "HTTP "+resp.Status))
		return
	}
	s.note("GET %s: %s", u, resp.Status)
	got, err := mozilla.Parse(io.LimitReader(resp.Body, maxDocument))
	if err != nil {
		s.fail(fmt.Errorf("parsing the autoconfig document: %w", err))
		s.find(finding.New("autoconfig.mismatch", finding.Vars{"value": err.Error()}, err.Error()))
		return
	}
	diffs := diffPolicy(r.pol, got)
	if len(diffs) == 0 {
		s.note("the document matches the policy")
		return
	}
	for _, d := range diffs {
		s.note("%s", d)
	}
	s.find(finding.New("autoconfig.mismatch", finding.Vars{"value": diffs[0]}, diffs...))
}

// diffPolicy lists how a published document differs from the policy in
// what a client would use: the endpoints in order and the POP3 policy.
func diffPolicy(want, got autoconfig.Policy) []string {
	out := diffEndpoints(want, got)
	if len(want.POP3) > 0 && len(got.POP3) > 0 {
		if want.POP.LeaveOnServer != got.POP.LeaveOnServer || (want.POP.LeaveOnServer && want.POP.DeleteAfterDays != got.POP.DeleteAfterDays) {
			out = append(out, fmt.Sprintf("POP3 leave on server: document has %v/%d days, policy has %v/%d days",
				got.POP.LeaveOnServer, got.POP.DeleteAfterDays, want.POP.LeaveOnServer, want.POP.DeleteAfterDays))
		}
	}
	return out
}

// diffEndpoints compares the servers of each protocol, in order.
func diffEndpoints(want, got autoconfig.Policy) []string {
	var out []string
	for _, p := range []autoconfig.Protocol{autoconfig.IMAP, autoconfig.POP3, autoconfig.SMTP} {
		w, g := want.Endpoints(p), got.Endpoints(p)
		if !slices.Equal(w, g) {
			out = append(out, fmt.Sprintf("%s servers: document has [%s], policy has [%s]", p, describe(g), describe(w)))
		}
	}
	return out
}

// policyWebClient fetches the policy's own documents: its roots, the step
// timeout, no proxy, and no redirects (the policy names one URL; a
// redirect could lead anywhere).
func (r *runner) policyWebClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: r.opts.RootCAs, MinVersion: tls.VersionTLS12, Time: r.opts.Now},
			DisableKeepAlives: true,
			Proxy:             nil,
		},
		Timeout:       r.opts.StepTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// checkAutodiscover posts Outlook's Autodiscover request (the address
// only, never the password) to the policy's web server and compares the
// servers in the answer with the policy. Autodiscover cannot carry the
// POP3 retention, so only the servers are compared.
func (r *runner) checkAutodiscover(ctx context.Context, s *stepState) {
	u := r.pol.Web.BaseURL + "/autodiscover/autodiscover.xml"
	var body strings.Builder
	body.WriteString(`<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>`)
	xml.EscapeText(&body, []byte(r.address))
	body.WriteString(`</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>`)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(body.String()))
	if err == nil {
		req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	}
	var resp *http.Response
	if err == nil {
		resp, err = r.policyWebClient().Do(req)
	}
	if err != nil {
		s.fail(fmt.Errorf("POST %s: %w", u, err))
		s.find(finding.New("autoconfig.unreachable", finding.Vars{"value": u}, err.Error()))
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		s.fail(fmt.Errorf("POST %s: %s", u, resp.Status))
		s.find(finding.New("autoconfig.unreachable", finding.Vars{"value": u}, "HTTP "+resp.Status))
		return
	}
	s.note("POST %s: %s", u, resp.Status)
	got, err := autodiscover.ParseResponse(io.LimitReader(resp.Body, maxDocument))
	if err != nil {
		s.fail(fmt.Errorf("parsing the Autodiscover response: %w", err))
		s.find(finding.New("autoconfig.mismatch", finding.Vars{"value": err.Error()}, err.Error()))
		return
	}
	diffs := diffEndpoints(r.pol, got)
	if len(diffs) == 0 {
		s.note("the Autodiscover response matches the policy")
		return
	}
	for _, d := range diffs {
		s.note("Autodiscover: %s", d)
	}
	s.find(finding.New("autoconfig.mismatch", finding.Vars{"value": "Autodiscover: " + diffs[0]}, diffs...))
}
