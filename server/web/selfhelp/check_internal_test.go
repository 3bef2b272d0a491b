package selfhelp

import (
	"mailsetup/templates/lang"

	"slices"
	"testing"

	"mailsetup/autoconfig"
	"mailsetup/finding"
	"mailsetup/probe"
)

// TestRightStepsReadFields: the self-help page says what went right from
// each step's kind and endpoint. Renaming every step changes nothing,
// and a name that looks like another kind of step is not believed.
func TestRightStepsReadFields(t *testing.T) {
	ep := func(proto autoconfig.Protocol, port int, sec autoconfig.Security) *probe.Endpoint {
		return &probe.Endpoint{Protocol: proto, Host: "mail.example.test", Port: port, Security: sec}
	}
	steps := []probe.Step{
		{Name: "compare reported settings", Kind: probe.KindCompare},
		{Name: "connect imap mail.example.test:993 tls", Kind: probe.KindConnect, Endpoint: ep(autoconfig.IMAP, 993, autoconfig.TLS)},
		{Name: "connect smtp mail.example.test:587 starttls", Kind: probe.KindConnect, Endpoint: ep(autoconfig.SMTP, 587, autoconfig.STARTTLS),
			Severity: finding.Critical, Error: "connection refused"},
		{Name: "login imap mail.example.test:993 tls", Kind: probe.KindLogin, Endpoint: ep(autoconfig.IMAP, 993, autoconfig.TLS)},
		{Name: "login smtp mail.example.test:587 starttls", Kind: probe.KindLogin, Endpoint: ep(autoconfig.SMTP, 587, autoconfig.STARTTLS),
			Severity: finding.Critical},
		{Name: "dns records", Kind: probe.KindDNS},
		{Name: "autoconfig document", Kind: probe.KindAutoconfig},
		{Name: "autodiscover document", Kind: probe.KindAutodiscover, Severity: finding.Warning},
	}
	want := []string{
		"The IMAP server mail.example.test:993 answers (SSL/TLS) with a valid certificate",
		"Your password works on the IMAP server mail.example.test:993",
		"The domain's DNS records for automatic setup are right",
		"Automatic setup for Thunderbird and similar programs is published correctly",
	}
	if got := rightSteps(english(t), steps); !slices.Equal(got, want) {
		t.Errorf("with the probe's names:\n%q\nwant\n%q", got, want)
	}

	renamed := slices.Clone(steps)
	for i := range renamed {
		renamed[i].Name = "Schritt " + string(rune('A'+i))
	}
	if got := rightSteps(english(t), renamed); !slices.Equal(got, want) {
		t.Errorf("renamed steps:\n%q\nwant\n%q", got, want)
	}

	// A DNS step named like a connection is the DNS step; a connection
	// named like the DNS step is a connection.
	swapped := []probe.Step{
		{Name: "connect imap mail.example.test:993 tls", Kind: probe.KindDNS},
		{Name: "dns records", Kind: probe.KindConnect, Endpoint: ep(autoconfig.POP3, 995, autoconfig.TLS)},
	}
	want = []string{
		"The POP3 server mail.example.test:995 answers (SSL/TLS) with a valid certificate",
		"The domain's DNS records for automatic setup are right",
	}
	if got := rightSteps(english(t), swapped); !slices.Equal(got, want) {
		t.Errorf("swapped names:\n%q\nwant\n%q", got, want)
	}

	// Every server answering is one line, counted from the fields.
	all := []probe.Step{
		{Name: "a", Kind: probe.KindConnect, Endpoint: ep(autoconfig.IMAP, 993, autoconfig.TLS)},
		{Name: "b", Kind: probe.KindConnect, Endpoint: ep(autoconfig.SMTP, 587, autoconfig.STARTTLS)},
	}
	if got := rightSteps(english(t), all); !slices.Equal(got, []string{"All 2 mail servers answer, with valid certificates"}) {
		t.Errorf("all servers: %q", got)
	}
	all[1].Endpoint = ep(autoconfig.SMTP, 25, autoconfig.None)
	if got := rightSteps(english(t), all); !slices.Equal(got, []string{"All 2 mail servers answer"}) {
		t.Errorf("all servers, one plain: %q", got)
	}
}

// english is the pages' English messages.
func english(t *testing.T) *lang.Localizer {
	t.Helper()
	c, err := lang.Load("")
	if err != nil {
		t.Fatal(err)
	}
	return c.For(lang.Default)
}
