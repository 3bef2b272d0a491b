// Package testkit is what the project's tests share: sample policies for
// the renderers, the DNS responder and the web handlers (policies.go),
// test certificates (tls.go), and Tool, which finds a real program and
// checks it can do what the tests ask of it, or skips the test (fails it
// with MAILSETUP_REQUIRE_TOOLS=1) naming the Debian package to install
// (tools.go). Only tests import it; it imports autoconfig and the
// standard library.
package testkit

import (
	"net/netip"

	"mailsetup/autoconfig"
)

// IMAPFirst is a policy whose clients should use IMAP, implicit TLS first,
// with every service offered.
func IMAPFirst() autoconfig.Policy {
	return autoconfig.Policy{
		Domain:      "example.com",
		DisplayName: "Example Mail & Co <Test>",
		ShortName:   "Example",
		IMAP: []autoconfig.Endpoint{
			{Protocol: autoconfig.IMAP, Host: "imap.example.com", Port: 993, Security: autoconfig.TLS},
			{Protocol: autoconfig.IMAP, Host: "imap.example.com", Port: 143, Security: autoconfig.STARTTLS},
		},
		POP3: []autoconfig.Endpoint{
			{Protocol: autoconfig.POP3, Host: "pop.example.com", Port: 995, Security: autoconfig.TLS},
			{Protocol: autoconfig.POP3, Host: "pop.example.com", Port: 110, Security: autoconfig.STARTTLS},
		},
		Submission: []autoconfig.Endpoint{
			{Protocol: autoconfig.SMTP, Host: "smtp.example.com", Port: 465, Security: autoconfig.TLS},
			{Protocol: autoconfig.SMTP, Host: "smtp.example.com", Port: 587, Security: autoconfig.STARTTLS},
		},
		Prefer:   autoconfig.IMAP,
		Username: autoconfig.FullAddress,
		Auth:     []autoconfig.AuthMethod{autoconfig.AuthPlain, autoconfig.AuthLogin},
		POP:      autoconfig.POP3Policy{LeaveOnServer: true, DeleteAfterDays: 7},
		MX:       []autoconfig.MX{{Host: "mx1.example.com", Preference: 10}, {Host: "mx2.example.com", Preference: 20}},
		Web:      autoconfig.Web{BaseURL: "https://autoconfig.example.com", Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("2001:db8::10")}},
	}
}

// POPFirst is a policy whose clients should use POP3 (leave a copy for 2
// days, server-side expiry after 30), with no STARTTLS IMAP and one
// submission port.
func POPFirst() autoconfig.Policy {
	return autoconfig.Policy{
		Domain:      "pop-first.test",
		DisplayName: "POP First ISP",
		ShortName:   "POPFirst",
		IMAP: []autoconfig.Endpoint{
			{Protocol: autoconfig.IMAP, Host: "mail.pop-first.test", Port: 993, Security: autoconfig.TLS},
		},
		POP3: []autoconfig.Endpoint{
			{Protocol: autoconfig.POP3, Host: "mail.pop-first.test", Port: 995, Security: autoconfig.TLS},
			{Protocol: autoconfig.POP3, Host: "mail.pop-first.test", Port: 110, Security: autoconfig.STARTTLS},
		},
		Submission: []autoconfig.Endpoint{
			{Protocol: autoconfig.SMTP, Host: "mail.pop-first.test", Port: 587, Security: autoconfig.STARTTLS},
		},
		Prefer:   autoconfig.POP3,
		Username: autoconfig.FullAddress,
		Auth:     []autoconfig.AuthMethod{autoconfig.AuthPlain},
		POP:      autoconfig.POP3Policy{LeaveOnServer: true, DeleteAfterDays: 2, ExpireDays: 30},
		MX:       []autoconfig.MX{{Host: "mail.pop-first.test", Preference: 10}},
		Web:      autoconfig.Web{BaseURL: "https://mail.pop-first.test:8443"},
	}
}
