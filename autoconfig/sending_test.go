package autoconfig_test

import (
	"strings"
	"testing"

	"mailsetup/autoconfig"
	"mailsetup/internal/testkit"
)

// TestSendingRecords: a policy with Sending publishes DKIM (a value over
// 255 octets split into TXT strings), SPF, DMARC, MTA-STS with an id that
// follows the policy file, TLS-RPT, and the mta-sts name; one without
// publishes none of them.
func TestSendingRecords(t *testing.T) {
	p := testkit.IMAPFirst()
	long := "v=DKIM1; k=rsa; p=" + strings.Repeat("A", 392)
	p.Sending = &autoconfig.Sending{DKIM: []autoconfig.DKIMKey{{Selector: "s1", Value: long}}, Hostname: "mail.example.com", MTASTSMode: "testing"}
	var zone []string
	for _, r := range p.Records() {
		zone = append(zone, r.String())
	}
	text := strings.Join(zone, "\n")
	d := p.Domain + "."
	for _, want := range []string{
		"s1._domainkey." + d + " 3600 IN TXT \"v=DKIM1; k=rsa; p=" + strings.Repeat("A", 255-len("v=DKIM1; k=rsa; p=")) + "\" \"",
		d + " 3600 IN TXT \"v=spf1 mx a:mail.example.com ~all\"",
		"_dmarc." + d + " 3600 IN TXT \"v=DMARC1; p=none; rua=mailto:postmaster@" + p.Domain + "\"",
		"_mta-sts." + d + " 3600 IN TXT \"v=STSv1; id=" + p.MTASTSID() + "\"",
		"_smtp._tls." + d + " 3600 IN TXT \"v=TLSRPTv1; rua=mailto:postmaster@" + p.Domain + "\"",
		"mta-sts." + d + " 3600 IN",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the records lack %q:\n%s", want, text)
		}
	}
	pol := p.MTASTSPolicy()
	if !strings.HasPrefix(pol, "version: STSv1\r\nmode: testing\r\nmx: ") || !strings.HasSuffix(pol, "max_age: 604800\r\n") {
		t.Errorf("policy file:\n%s", pol)
	}
	id := p.MTASTSID()
	p.Sending.MTASTSMode = "enforce"
	if p.MTASTSID() == id {
		t.Error("the MTA-STS id did not change with the policy")
	}
	p.Sending = nil
	for _, r := range p.Records() {
		if r.Type == "TXT" && !strings.HasPrefix(r.Name, "_ua-auto-config.") || strings.HasPrefix(r.Name, "mta-sts.") {
			t.Errorf("a policy without Sending publishes %s", r)
		}
	}
}
