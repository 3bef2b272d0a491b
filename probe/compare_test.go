package probe

import (
	"slices"
	"strings"
	"testing"

	"mailsetup/finding"
	"mailsetup/internal/testkit"
)

func ptr[T any](v T) *T { return &v }

func ids(fs []finding.Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.ID)
	}
	return out
}

// goodIMAP is what a correctly set up client shows for IMAPFirst.
func goodIMAP() ClientSettings {
	return ClientSettings{
		Incoming: Incoming{Protocol: "imap", Host: "imap.example.com", Port: 993, Security: "SSL/TLS", Username: "john@example.com"},
		Outgoing: Outgoing{Host: "smtp.example.com", Port: 587, Security: "STARTTLS", Auth: ptr(true), Username: "john@example.com"},
	}
}

func goodPOP() ClientSettings {
	c := goodIMAP()
	c.Incoming = Incoming{Protocol: "pop3", Host: "pop.example.com", Port: 995, Security: "ssl", Username: "john@example.com", LeaveOnServer: ptr(true), DeleteAfterDays: ptr(7)}
	return c
}

func TestCompare(t *testing.T) {
	p := testkit.IMAPFirst()
	const addr = "john@example.com"
	for _, c := range []struct {
		name string
		edit func(*ClientSettings)
		pop  bool
		want []string
		sev  finding.Severity
	}{
		{"correct imap", func(*ClientSettings) {}, false, []string{"settings.ok"}, finding.OK},
		{"correct pop3", func(*ClientSettings) {}, true, []string{"settings.ok"}, finding.OK},
		{"nothing reported", func(c *ClientSettings) { *c = ClientSettings{} }, false, []string{"settings.ok"}, finding.OK},
		{"bare local part", func(c *ClientSettings) { c.Incoming.Username = "john" }, false, []string{"username.not-full-address"}, finding.Critical},
		{"user/domain", func(c *ClientSettings) { c.Incoming.Username = "john/example.com" }, false, []string{"username.not-full-address"}, finding.Critical},
		{"backslash form", func(c *ClientSettings) { c.Outgoing.Username = `example.com\john` }, false, []string{"username.not-full-address"}, finding.Critical},
		{"both usernames wrong: one finding", func(c *ClientSettings) { c.Incoming.Username, c.Outgoing.Username = "john", "john" }, false, []string{"username.not-full-address"}, finding.Critical},
		{"address in other case", func(c *ClientSettings) { c.Incoming.Username = "John@Example.COM" }, false, []string{"settings.ok"}, finding.OK},
		{"outgoing auth off", func(c *ClientSettings) { c.Outgoing.Auth = ptr(false) }, false, []string{"smtp.auth-disabled"}, finding.Critical},
		{"465 with starttls", func(c *ClientSettings) { c.Outgoing.Port, c.Outgoing.Security = 465, "starttls" }, false, []string{"port.security-mismatch"}, finding.Critical},
		{"587 with ssl", func(c *ClientSettings) { c.Outgoing.Security = "ssl" }, false, []string{"port.security-mismatch"}, finding.Critical},
		{"993 with starttls", func(c *ClientSettings) { c.Incoming.Security = "starttls" }, false, []string{"port.security-mismatch"}, finding.Critical},
		{"143 with ssl", func(c *ClientSettings) { c.Incoming.Port, c.Incoming.Security = 143, "tls" }, false, []string{"port.security-mismatch"}, finding.Critical},
		{"995 with starttls", func(c *ClientSettings) { c.Incoming.Security = "starttls" }, true, []string{"port.security-mismatch"}, finding.Critical},
		{"110 with ssl", func(c *ClientSettings) { c.Incoming.Port, c.Incoming.Security = 110, "ssl" }, true, []string{"port.security-mismatch"}, finding.Critical},
		{"no encryption", func(c *ClientSettings) { c.Incoming.Port, c.Incoming.Security = 143, "none" }, false, []string{"security.none"}, finding.Critical},
		{"wrong incoming host", func(c *ClientSettings) { c.Incoming.Host = "mail.example.com" }, false, []string{"server.wrong-host"}, finding.Critical},
		{"wrong outgoing host", func(c *ClientSettings) { c.Outgoing.Host = "smtp.isp.example" }, false, []string{"server.wrong-host"}, finding.Critical},
		{"host with trailing dot and case", func(c *ClientSettings) { c.Incoming.Host = "IMAP.example.com." }, false, []string{"settings.ok"}, finding.OK},
		{"port 25", func(c *ClientSettings) { c.Outgoing.Port, c.Outgoing.Security = 25, "none" }, false, []string{"server.wrong-port"}, finding.Critical},
		{"pop3 host for imap", func(c *ClientSettings) { c.Incoming.Host = "pop.example.com" }, false, []string{"server.wrong-host"}, finding.Critical},
		{"leave forever", func(c *ClientSettings) { c.Incoming.DeleteAfterDays = nil }, true, []string{"pop3.leave-forever"}, finding.Critical},
		{"leave, delete after 0", func(c *ClientSettings) { c.Incoming.DeleteAfterDays = ptr(0) }, true, []string{"pop3.leave-forever"}, finding.Critical},
		{"delete after 9 days", func(c *ClientSettings) { c.Incoming.DeleteAfterDays = ptr(9) }, true, []string{"pop3.delete-after-too-long"}, finding.Warning},
		{"delete after 30 days", func(c *ClientSettings) { c.Incoming.DeleteAfterDays = ptr(30) }, true, []string{"pop3.delete-after-too-long"}, finding.Critical},
		{"delete after 1 day", func(c *ClientSettings) { c.Incoming.DeleteAfterDays = ptr(1) }, true, []string{"settings.ok"}, finding.OK},
		{"no leave", func(c *ClientSettings) { c.Incoming.LeaveOnServer = ptr(false); c.Incoming.DeleteAfterDays = nil }, true, []string{"settings.ok"}, finding.OK},
		{"unknown protocol", func(c *ClientSettings) { c.Incoming.Protocol = "exchange" }, false, []string{"server.protocol-not-offered"}, finding.Critical},
		{"several wrong, worst first", func(c *ClientSettings) {
			c.Incoming.Username = "john"
			c.Outgoing.Auth = ptr(false)
			c.Incoming.DeleteAfterDays = ptr(9)
		}, true, []string{"username.not-full-address", "smtp.auth-disabled", "pop3.delete-after-too-long"}, finding.Critical},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := goodIMAP()
			if c.pop {
				s = goodPOP()
			}
			c.edit(&s)
			got := Compare(p, addr, s)
			if !slices.Equal(ids(got), c.want) {
				t.Fatalf("findings %v, want %v\n%+v", ids(got), c.want, got)
			}
			if got[0].Severity != c.sev {
				t.Errorf("severity %s, want %s", got[0].Severity, c.sev)
			}
			for _, f := range got {
				if f.Fix == "" || f.Title == "" || len(f.Evidence) == 0 || strings.Contains(f.Fix+f.Staff, "{") {
					t.Errorf("incomplete finding %+v", f)
				}
			}
		})
	}
}

// TestLeaveForeverWithServerExpiry: with server-side expiry the mail
// does not pile up for ever, so leaving it is a warning, and says why.
func TestLeaveForeverWithServerExpiry(t *testing.T) {
	p := testkit.IMAPFirst()
	p.POP.ExpireDays = 30
	s := goodPOP()
	s.Incoming.DeleteAfterDays = nil
	got := Compare(p, "john@example.com", s)
	if len(got) != 1 || got[0].ID != "pop3.leave-forever" || got[0].Severity != finding.Warning || !strings.Contains(strings.Join(got[0].Evidence, " "), "EXPIRE 30") {
		t.Errorf("findings %+v", got)
	}
}

func TestCompareNamesTheField(t *testing.T) {
	p := testkit.IMAPFirst()
	s := goodIMAP()
	s.Incoming.Username = "john"
	f := Compare(p, "john@example.com", s)[0]
	if !strings.Contains(f.Fix, `"Username"`) || !strings.Contains(f.Fix, "john@example.com") || !strings.Contains(f.Fix, `"john"`) {
		t.Errorf("fix %q", f.Fix)
	}
	s = goodIMAP()
	s.Outgoing.Port, s.Outgoing.Security = 465, "starttls"
	f = Compare(p, "john@example.com", s)[0]
	if !strings.Contains(f.Fix, "SSL/TLS") || !strings.Contains(f.Fix, "465") || !strings.Contains(f.Fix, "outgoing") {
		t.Errorf("fix %q", f.Fix)
	}
}

func TestNormalizeSecurity(t *testing.T) {
	for in, want := range map[string]string{"SSL": "tls", "ssl/tls": "tls", "TLS": "tls", "STARTTLS": "starttls", "None": "none", "weird": "weird"} {
		if got := NormalizeSecurity(in); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}

// TestCompareStaffSaysReported: every finding of the comparison is built
// from what the customer reports, and its staff line says so ("the
// customer reports ..."), never states the value as observed.
func TestCompareStaffSaysReported(t *testing.T) {
	p := testkit.IMAPFirst()
	for name, edit := range map[string]func(*ClientSettings){
		"leave forever":      func(c *ClientSettings) { c.Incoming.DeleteAfterDays = nil },
		"delete after 9":     func(c *ClientSettings) { c.Incoming.DeleteAfterDays = ptr(9) },
		"bare local part":    func(c *ClientSettings) { c.Incoming.Username = "john" },
		"auth off":           func(c *ClientSettings) { c.Outgoing.Auth = ptr(false) },
		"wrong host":         func(c *ClientSettings) { c.Incoming.Host = "mail.example.org" },
		"wrong port":         func(c *ClientSettings) { c.Outgoing.Port = 2525 },
		"security mismatch":  func(c *ClientSettings) { c.Outgoing.Security = "ssl" },
		"no security":        func(c *ClientSettings) { c.Incoming.Security = "none" },
		"protocol not known": func(c *ClientSettings) { c.Incoming.Protocol = "exchange" },
	} {
		c := goodPOP()
		edit(&c)
		for _, f := range Compare(p, "john@example.com", c) {
			if f.ID == "settings.ok" {
				t.Errorf("%s: settings.ok", name)
				continue
			}
			if !strings.HasPrefix(f.Staff, "the customer reports ") {
				t.Errorf("%s: %s staff %q: want \"the customer reports ...\"", name, f.ID, f.Staff)
			}
		}
	}
	// The leave + 7 days the policy asks for is settings.ok alone.
	if got := ids(Compare(p, "john@example.com", goodPOP())); !slices.Equal(got, []string{"settings.ok"}) {
		t.Errorf("leave + 7 days: %v, want settings.ok", got)
	}
}
