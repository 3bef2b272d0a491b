package clients_test

import (
	"context"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"mailsetup/autoconfig"
	"mailsetup/finding"
	"mailsetup/probe/clients"
)

func view(t *testing.T, rep *clients.ClientsReport, prefix string) clients.ClientView {
	t.Helper()
	for _, c := range rep.Clients {
		if strings.HasPrefix(c.Client, prefix) {
			return c
		}
	}
	t.Fatalf("no client %q in the report", prefix)
	return clients.ClientView{}
}

func has(fs []finding.Finding, id string) bool {
	for _, f := range fs {
		if f.ID == id {
			return true
		}
	}
	return false
}

// TestSimulateHealthy: every client that can be set up automatically
// ends up with the policy's settings from its first source; new Outlook
// says what to type; msmtp and mpop need the full address typed.
func TestSimulateHealthy(t *testing.T) {
	w, p := healthy(t)
	rep, err := clients.Simulate(context.Background(), "john@example.com", p, w.opts())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != 0 {
		t.Errorf("domain findings: %v", ids(rep.Findings))
	}
	for _, c := range rep.Clients {
		switch {
		case c.Manual:
			if !has(c.Findings, "clients.type-by-hand") || !strings.Contains(c.Findings[0].Fix, "IMAP imap.example.com port 993 SSL/TLS") {
				t.Errorf("%s: %+v", c.Client, c.Findings)
			}
		case strings.HasPrefix(c.Client, "msmtp"), strings.HasPrefix(c.Client, "mpop"):
			if c.Settings == nil || len(c.Findings) != 1 || c.Findings[0].ID != "clients.local-part-username" {
				t.Errorf("%s: settings %v, findings %v", c.Client, c.Settings, ids(c.Findings))
			}
		default:
			if c.Settings == nil || len(c.Findings) != 0 || c.Sources[0].Outcome != clients.SourceUsed {
				t.Errorf("%s: settings %v, findings %v, sources %+v", c.Client, c.Settings, ids(c.Findings), c.Sources)
			}
		}
	}
	tb := view(t, rep, "Thunderbird desktop")
	if got := tb.Settings.String(); got != "incoming IMAP imap.example.com port 993 SSL/TLS, outgoing SMTP smtp.example.com port 465 SSL/TLS, username john@example.com" {
		t.Errorf("Thunderbird ends up with %s", got)
	}
	if s := view(t, rep, "mpop").Settings; s == nil || s.Incoming.Host != "pop.example.com" || s.Incoming.Port != 995 || s.Username != "john" {
		t.Errorf("mpop: %+v", s)
	}
}

// TestSimulateStaleSources: the old provider's autoconfig CNAME, an SRV
// record to another host, the autodiscover host with an expired
// certificate, an HTTP-only well-known document: each its finding, and
// the settings each client would end up with.
func TestSimulateStaleSources(t *testing.T) {
	w, p := healthy(t)
	// The old provider: autoconfig.example.com is still its CNAME, and
	// its host serves its own servers.
	w.drop("autoconfig.example.com.", dns.TypeA)
	w.add(t, "autoconfig.example.com. 300 IN CNAME autoconfig.old-provider.test.", "autoconfig.old-provider.test. 300 IN A 127.0.0.1")
	old := p
	old.Domain = "example.com"
	old.IMAP = []autoconfig.Endpoint{{Protocol: autoconfig.IMAP, Host: "imap.old-provider.test", Port: 993, Security: autoconfig.TLS}}
	old.Submission = []autoconfig.Endpoint{{Protocol: autoconfig.SMTP, Host: "smtp.old-provider.test", Port: 587, Security: autoconfig.STARTTLS}}
	w.docs["autoconfig.example.com"] = old
	// An SRV record still names the old host.
	w.drop("_submissions._tcp.example.com.", dns.TypeSRV)
	w.add(t, "_submissions._tcp.example.com. 300 IN SRV 0 0 465 smtp.old-provider.test.")
	// _autodiscover._tcp still names the old hoster's discovery host.
	w.drop("_autodiscover._tcp.example.com.", dns.TypeSRV)
	w.add(t, "_autodiscover._tcp.example.com. 300 IN SRV 0 0 443 discovery.old-provider.test.")
	// Autodiscover with an expired certificate.
	w.expired["autodiscover.example.com"] = true
	w.expired["example.com"] = true

	rep, err := clients.Simulate(context.Background(), "john@example.com", p, w.opts())
	if err != nil {
		t.Fatal(err)
	}
	if !has(rep.Findings, "clients.stale-cname") || !has(rep.Findings, "clients.srv-other-host") {
		t.Errorf("domain findings %v, want the stale CNAME and the SRV to another host", ids(rep.Findings))
	}
	var autodiscoverSRV bool
	for _, f := range rep.Findings {
		autodiscoverSRV = autodiscoverSRV || (f.ID == "clients.srv-other-host" && strings.Contains(f.Staff, "_autodiscover._tcp.example.com names discovery.old-provider.test"))
	}
	if !autodiscoverSRV {
		t.Errorf("no finding for _autodiscover._tcp to the old hoster: %+v", rep.Findings)
	}
	tb := view(t, rep, "Thunderbird desktop")
	if !has(tb.Findings, "clients.conflict") || tb.Settings.Incoming.Host != "imap.old-provider.test" {
		t.Errorf("Thunderbird: settings %v findings %v", tb.Settings, ids(tb.Findings))
	}
	ol := view(t, rep, "classic Outlook")
	// Outlook skips both certificates and follows _autodiscover._tcp to
	// the old hoster's host, which no longer answers: nothing.
	if !has(ol.Findings, "clients.certificate-skipped") || !has(ol.Findings, "clients.no-source") || ol.Sources[3].Outcome != clients.SourceSkipped {
		t.Errorf("Outlook: settings %v findings %v sources %+v", ol.Settings, ids(ol.Findings), ol.Sources)
	}
	msmtp := view(t, rep, "msmtp")
	if !has(msmtp.Findings, "clients.conflict") || msmtp.Settings.Outgoing.Host != "smtp.old-provider.test" {
		t.Errorf("msmtp: settings %v findings %v", msmtp.Settings, ids(msmtp.Findings))
	}
}

// TestSimulateHTTPOnlyAndRejected: the autoconfig document only over
// HTTP, and one with only POP3 and "plain" that Android rejects while
// desktop Thunderbird takes it.
func TestSimulateHTTPOnlyAndRejected(t *testing.T) {
	w, p := healthy(t)
	w.noHTTPS["autoconfig.example.com"] = true
	w.noHTTPS["example.com"] = true
	w.httpOK["autoconfig.example.com"] = true
	popOnly := p
	popOnly.IMAP = nil
	popOnly.Prefer = autoconfig.POP3
	w.docs["autoconfig.example.com"] = popOnly
	rep, err := clients.Simulate(context.Background(), "john@example.com", p, w.opts())
	if err != nil {
		t.Fatal(err)
	}
	tb := view(t, rep, "Thunderbird desktop")
	if !has(tb.Findings, "clients.http-only") || !has(tb.Findings, "clients.conflict") || tb.Settings.Incoming.Protocol != autoconfig.POP3 {
		t.Errorf("Thunderbird: settings %v findings %v", tb.Settings, ids(tb.Findings))
	}
	an := view(t, rep, "Thunderbird for Android")
	if !has(an.Findings, "clients.document-rejected") || an.Settings != nil {
		t.Errorf("Android: settings %v findings %v sources %+v", an.Settings, ids(an.Findings), an.Sources)
	}
}
