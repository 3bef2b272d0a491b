package probe

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"mailsetup/autoconfig"
	"mailsetup/internal/testkit"
)

// TestDNSStepChecksSendingRecords: for a domain that sends mail from
// here, the DNS step compares DKIM, SPF, DMARC, MTA-STS and TLS-RPT with
// what the domain publishes (other TXT records beside them ignored), and
// fetches the MTA-STS policy; each difference is its own finding.
func TestDNSStepChecksSendingRecords(t *testing.T) {
	pol := testkit.IMAPFirst()
	pol.Sending = &autoconfig.Sending{Hostname: "mail." + pol.Domain, MTASTSMode: "testing", DKIM: []autoconfig.DKIMKey{
		{Selector: "s-rsa", Value: "v=DKIM1; k=rsa; p=AAAA"}, {Selector: "s-ed", Value: "v=DKIM1; k=ed25519; p=BBBB"}}}
	d := pol.Domain + "."
	var records []string
	for _, r := range pol.Records() {
		switch {
		case r.Type != "TXT":
			records = append(records, r.String())
		case strings.HasPrefix(r.Name, "s-ed."), strings.HasPrefix(r.Name, "_smtp._tls."):
			// not published
		case strings.HasPrefix(r.Name, "s-rsa."):
			records = append(records, "s-rsa._domainkey."+d+" 3600 IN TXT \"v=DKIM1; k=rsa; p=CCCC\"")
		case strings.HasPrefix(r.Name, "_mta-sts."):
			records = append(records, "_mta-sts."+d+" 3600 IN TXT \"v=STSv1; id=old\"")
		default:
			records = append(records, r.String())
		}
	}
	records = append(records, d+" 3600 IN TXT \"google-site-verification=xyz\"")

	port, roots := testkit.HTTPS(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Replace(pol.MTASTSPolicy(), "mode: testing", "mode: enforce", 1))
	}), "mta-sts."+pol.Domain)

	opts := Options{Policy: func(string) (autoconfig.Policy, bool) { return pol, true }, Resolver: testkit.DNS(t, records...),
		RootCAs: roots, StepTimeout: 5 * time.Second, HTTPSPort: port,
		Resolve: func(string) (string, bool) { return "127.0.0.1", true }, Port: func(int) int { return testkit.FreePort(t) }}
	rep, err := Run(context.Background(), Request{Address: "john@" + pol.Domain}, opts)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(rep.Steps, func(s Step) bool { return s.Name == "dns records" })
	if i < 0 {
		t.Fatalf("no dns step: %v", stepNames(rep))
	}
	got := map[string]string{}
	for _, f := range rep.Findings {
		got[f.ID] += strings.Join(f.Evidence, "\n")
	}
	for id, evidence := range map[string]string{
		"dns.dkim-missing":    "s-ed._domainkey." + strings.ToLower(d) + " TXT: got nothing",
		"dns.mta-sts-missing": "v=STSv1; id=old",
		"dns.tlsrpt-missing":  "_smtp._tls.",
		"dns.mta-sts-policy":  "mode: enforce",
	} {
		if !strings.Contains(got[id], evidence) {
			t.Errorf("finding %s with %q: got %q", id, evidence, got[id])
		}
	}
	if !strings.Contains(got["dns.dkim-missing"], "p=CCCC") {
		t.Errorf("the wrong RSA key is not named: %q", got["dns.dkim-missing"])
	}
	for _, id := range []string{"dns.spf-missing", "dns.dmarc-missing", "dns.autoconfig-missing"} {
		if _, ok := got[id]; ok {
			t.Errorf("unexpected %s: %s", id, got[id])
		}
	}
}
