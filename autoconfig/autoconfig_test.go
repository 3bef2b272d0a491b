package autoconfig_test

import (
	"errors"
	"strings"
	"testing"

	"mailsetup/autoconfig"
	"mailsetup/internal/testkit"
)

func TestParseAddress(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr error
	}{
		{"john@johndoe.com", "john@johndoe.com", nil},
		{"  John.Doe@JohnDoe.COM ", "John.Doe@johndoe.com", nil},
		{"a+tag@example.com.", "a+tag@example.com", nil},
		{"", "", autoconfig.ErrEmptyAddress},
		{"john", "", autoconfig.ErrMalformedAddress},
		{"john/johndoe.com", "", autoconfig.ErrMalformedAddress},
		{"@johndoe.com", "", autoconfig.ErrMalformedAddress},
		{"john@", "", autoconfig.ErrMalformedAddress},
		{"john@localhost", "", autoconfig.ErrMalformedAddress},
		{"john@127.0.0.1", "", autoconfig.ErrMalformedAddress},
		{"jo hn@johndoe.com", "", autoconfig.ErrMalformedAddress},
		{"john..doe@johndoe.com", "", autoconfig.ErrMalformedAddress},
		{"john@johndoe..com", "", autoconfig.ErrMalformedAddress},
		{"john@-johndoe.com", "", autoconfig.ErrMalformedAddress},
		{"<john@johndoe.com>", "", autoconfig.ErrMalformedAddress},
		{"john@johndoe.com\n", "john@johndoe.com", nil},
		{strings.Repeat("a", 65) + "@johndoe.com", "", autoconfig.ErrMalformedAddress},
		{"a@" + strings.Repeat("b", 260) + ".com", "", autoconfig.ErrMalformedAddress},
		{"j\u00f6rg@johndoe.com", "j\u00f6rg@johndoe.com", nil},
		{"\xff\xfe@example.test", "", autoconfig.ErrMalformedAddress},
		{"jo\xc3@example.test", "", autoconfig.ErrMalformedAddress},
		{"john@johndoe.com\xff", "", autoconfig.ErrMalformedAddress},
		{"\ufffd\ufffd@example.test", "", autoconfig.ErrMalformedAddress},
		{"jo\u0085hn@example.test", "", autoconfig.ErrMalformedAddress},
	}
	for _, tt := range tests {
		got, err := autoconfig.ParseAddress(tt.in)
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("ParseAddress(%q) = %v, %v; want error %v", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got.String() != tt.want {
			t.Errorf("ParseAddress(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestValidateSamples(t *testing.T) {
	for _, p := range []autoconfig.Policy{testkit.IMAPFirst(), testkit.POPFirst()} {
		if err := p.Validate(); err != nil {
			t.Errorf("%s: %v", p.Domain, err)
		}
	}
}

// TestValidateCollectsEveryProblem: an operator sees all mistakes at once,
// each naming the key and the bad value.
func TestValidateCollectsEveryProblem(t *testing.T) {
	p := testkit.IMAPFirst()
	p.IMAP[0].Port = 0
	p.POP3[1].Security = "ssl"
	p.Submission[0].Host = "Smtp.Example.com"
	p.Prefer = "exchange"
	p.Username = autoconfig.LocalPart
	p.POP.DeleteAfterDays = 30
	p.Web.BaseURL = "ftp://x"
	err := p.Validate()
	if err == nil {
		t.Fatal("Validate accepted a broken policy")
	}
	for _, want := range []string{
		`imap[0].port = 0`,
		`pop3[1].security = "ssl"`,
		`submission[0].host = "Smtp.Example.com"`,
		`prefer = "exchange"`,
		`username = "local-part"`,
		`pop3_policy.delete_after_days = 30`,
		`web_url = "ftp://x"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
}

func TestValidateLeaveForeverRefused(t *testing.T) {
	p := testkit.POPFirst()
	p.POP.DeleteAfterDays = 0
	if err := p.Validate(); err == nil || !strings.Contains(err.Error(), "delete_after_days = 0") {
		t.Errorf("leave on server without delete-after accepted: %v", err)
	}
	p.POP = autoconfig.POP3Policy{LeaveOnServer: false}
	if err := p.Validate(); err != nil {
		t.Errorf("no leave-on-server refused: %v", err)
	}
}

func TestIncomingOrder(t *testing.T) {
	p := testkit.POPFirst()
	in := p.Incoming()
	if in[0].Protocol != autoconfig.POP3 || in[0].Security != autoconfig.TLS || in[len(in)-1].Protocol != autoconfig.IMAP {
		t.Errorf("POP-first incoming order = %v", in)
	}
}

func TestRecords(t *testing.T) {
	var b strings.Builder
	if err := autoconfig.WriteZone(&b, []autoconfig.Policy{testkit.IMAPFirst(), testkit.POPFirst()}); err != nil {
		t.Fatal(err)
	}
	got := b.String()
	for _, want := range []string{
		"_submissions._tcp.example.com. 3600 IN SRV 0 0 465 smtp.example.com.",
		"_submission._tcp.example.com. 3600 IN SRV 10 0 587 smtp.example.com.",
		"_imaps._tcp.example.com. 3600 IN SRV 0 0 993 imap.example.com.",
		"_imap._tcp.example.com. 3600 IN SRV 10 0 143 imap.example.com.",
		"_pop3s._tcp.example.com. 3600 IN SRV 20 0 995 pop.example.com.",
		"_pop3._tcp.example.com. 3600 IN SRV 30 0 110 pop.example.com.",
		"_autodiscover._tcp.example.com. 3600 IN SRV 0 0 443 autoconfig.example.com.",
		"autoconfig.example.com. 3600 IN A 192.0.2.10",
		"autodiscover.example.com. 3600 IN AAAA 2001:db8::10",
		"example.com. 3600 IN MX 10 mx1.example.com.",
		// POP-first: POP3 priorities below IMAP's (RFC 6186 §3.4).
		"_pop3s._tcp.pop-first.test. 3600 IN SRV 0 0 995 mail.pop-first.test.",
		"_imaps._tcp.pop-first.test. 3600 IN SRV 20 0 993 mail.pop-first.test.",
		// Not offered: target "." (RFC 6186 §3.4).
		"_submissions._tcp.pop-first.test. 3600 IN SRV 0 0 0 .",
		"_imap._tcp.pop-first.test. 3600 IN SRV 0 0 0 .",
		"_autodiscover._tcp.pop-first.test. 3600 IN SRV 0 0 8443 mail.pop-first.test.",
		"autoconfig.pop-first.test. 3600 IN CNAME mail.pop-first.test.",
	} {
		if !strings.Contains(got, want+"\n") {
			t.Errorf("zone lacks %q:\n%s", want, got)
		}
	}
}
