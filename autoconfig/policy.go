package autoconfig

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
)

// Protocol is a mail access or submission protocol a client is told to use.
type Protocol string

const (
	IMAP Protocol = "imap"
	POP3 Protocol = "pop3"
	SMTP Protocol = "smtp" // message submission (RFC 6409 / RFC 8314)
)

// Security is how a client protects a connection to an endpoint.
type Security string

const (
	// TLS is implicit TLS: the connection starts with a TLS handshake
	// (993, 995, 465). RFC 8314 prefers it.
	TLS Security = "tls"
	// STARTTLS is a plain connection upgraded with STARTTLS/STLS before
	// authentication (143, 110, 587).
	STARTTLS Security = "starttls"
	// None is a connection without TLS. Only acceptable on loopback for
	// tests; Android clients reject a whole autoconfig file that offers it.
	None Security = "none"
)

// Label is how mail clients' dialogs name the mode: "SSL/TLS",
// "STARTTLS", "None" (another value is returned as it is).
func (s Security) Label() string {
	switch s {
	case TLS:
		return "SSL/TLS"
	case STARTTLS:
		return "STARTTLS"
	case None:
		return "None"
	}
	return string(s)
}

// UsernameForm is what a client must type as its username.
type UsernameForm string

const (
	// FullAddress: the username is the whole email address
	// (john@johndoe.com), never "john" or "john/johndoe.com".
	FullAddress UsernameForm = "full-address"
	// LocalPart: only the part before the @ ("john"), as msmtp and mpop
	// --configure write it. Never valid in a policy; it describes what a
	// discovered document or a client's settings say.
	LocalPart UsernameForm = "local-part"
)

// AuthMethod is a SASL mechanism clients may use.
type AuthMethod string

const (
	AuthPlain AuthMethod = "plain"
	AuthLogin AuthMethod = "login"
)

// Endpoint is one server a client can connect to.
type Endpoint struct {
	Protocol Protocol
	Host     string
	Port     int
	Security Security
}

// String returns "imap localhost:993 tls".
func (e Endpoint) String() string {
	return fmt.Sprintf("%s %s:%d %s", e.Protocol, e.Host, e.Port, e.Security)
}

// POP3Policy is what POP3 clients should do with the mail they download.
type POP3Policy struct {
	// LeaveOnServer: whether clients keep a copy on the server. When true,
	// DeleteAfterDays must be set: a copy left forever is what overloaded
	// the POP servers in the incident this product was born from.
	LeaveOnServer bool
	// DeleteAfterDays: clients delete their copy on the server this many
	// days after download (1..10; the seed advises 1 or 2, at most 10).
	DeleteAfterDays int
	// ExpireDays: server-side expiry (RFC 2449 EXPIRE) of messages already
	// retrieved over POP3; 0 means the server never expires mail.
	ExpireDays int
}

// MX is one mail exchanger of a domain.
type MX struct {
	Host       string
	Preference int
}

// Web is where the domain's autoconfig documents are served.
type Web struct {
	// BaseURL is the https URL clients and pages use, without a trailing
	// slash, e.g. "https://autoconfig.example.com".
	BaseURL string
	// Addresses, when set, are published as A/AAAA records for the
	// autoconfig.<domain> and autodiscover.<domain> names; otherwise those
	// names are published as CNAMEs of the BaseURL's host.
	Addresses []netip.Addr
}

// Host returns the host name of BaseURL.
func (w Web) Host() string {
	u, err := url.Parse(w.BaseURL)
	if err != nil {
		return ""
	}
	return u.Hostname()
}

// Port returns the port of BaseURL (443 when it has none).
func (w Web) Port() int {
	u, err := url.Parse(w.BaseURL)
	if err != nil {
		return 0
	}
	if p := u.Port(); p != "" {
		var n int
		fmt.Sscanf(p, "%d", &n)
		return n
	}
	if u.Scheme == "http" {
		return 80
	}
	return 443
}

// Policy is the single source of truth for a domain's correct client
// settings. Every output (autoconfig documents, DNS records, pages, probe
// expectations) is rendered from it.
type Policy struct {
	// Domain is the mail domain, lower case ASCII, no trailing dot.
	Domain string
	// DisplayName is the provider's name as clients show it.
	DisplayName string
	// ShortName is a short form of DisplayName.
	ShortName string
	// IMAP, POP3 and Submission list the endpoints of each service in the
	// order clients should try them.
	IMAP, POP3, Submission []Endpoint
	// Prefer is the access protocol clients should choose (IMAP or POP3).
	Prefer Protocol
	// Username is the form of the username every client must use.
	Username UsernameForm
	// Auth lists the SASL mechanisms the servers accept, over TLS only.
	Auth []AuthMethod
	// POP is what POP3 clients should do with mail left on the server.
	POP POP3Policy
	// MX lists the domain's mail exchangers.
	MX []MX
	// Web is where the autoconfig documents are served.
	Web Web
	// PACCRetired lists digests of earlier PACC documents that stay
	// published beside the current one during a rollover (set by the
	// server on a reload, for PACCTTL); empty in a config.
	PACCRetired []string
	// Sending, when set, is what the domain publishes about the mail it
	// sends (DKIM, SPF, DMARC, MTA-STS, TLS-RPT).
	Sending *Sending
}

// Incoming returns the access endpoints in the client's preference order:
// the preferred protocol first, each protocol's endpoints in listed order.
func (p Policy) Incoming() []Endpoint {
	first, second := p.IMAP, p.POP3
	if p.Prefer == POP3 {
		first, second = p.POP3, p.IMAP
	}
	out := make([]Endpoint, 0, len(first)+len(second))
	out = append(out, first...)
	return append(out, second...)
}

// Preferred returns the first endpoint of the preferred access protocol,
// falling back to the other one.
func (p Policy) Preferred() (Endpoint, bool) {
	in := p.Incoming()
	if len(in) == 0 {
		return Endpoint{}, false
	}
	return in[0], true
}

// Endpoints returns the endpoints of one protocol.
func (p Policy) Endpoints(proto Protocol) []Endpoint {
	switch proto {
	case IMAP:
		return p.IMAP
	case POP3:
		return p.POP3
	case SMTP:
		return p.Submission
	}
	return nil
}

// UsernameFor returns the username a client must use for address.
func (p Policy) UsernameFor(address string) string {
	return address
}

// Placeholder is the Thunderbird placeholder for the username when no
// address is known.
const Placeholder = "%EMAILADDRESS%"

// Validate checks the policy and returns every problem found, joined.
func (p Policy) Validate() error {
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("domain %q: "+format, append([]any{p.Domain}, args...)...))
	}
	if err := ValidDomain(p.Domain); err != nil {
		add("name = %q: %v", p.Domain, err)
	}
	if strings.TrimSpace(p.DisplayName) == "" {
		add("display_name is empty: clients show it as the account's provider")
	}
	if len(p.IMAP)+len(p.POP3) == 0 {
		add("no imap or pop3 endpoint: clients need at least one way to read mail")
	}
	if len(p.Submission) == 0 {
		add("no submission endpoint: clients need a way to send mail")
	}
	for _, group := range [][]Endpoint{p.IMAP, p.POP3, p.Submission} {
		for i, e := range group {
			key := string(e.Protocol)
			if e.Protocol == SMTP {
				key = "submission"
			}
			where := fmt.Sprintf("%s[%d]", key, i)
			if err := ValidHost(e.Host); err != nil {
				add("%s.host = %q: %v", where, e.Host, err)
			}
			if e.Port < 1 || e.Port > 65535 {
				add("%s.port = %d: out of range 1..65535", where, e.Port)
			}
			switch e.Security {
			case TLS, STARTTLS, None:
			default:
				add("%s.security = %q: want tls, starttls or none", where, e.Security)
			}
		}
	}
	switch p.Prefer {
	case IMAP:
		if len(p.IMAP) == 0 {
			add("prefer = %q but no imap endpoint is configured", p.Prefer)
		}
	case POP3:
		if len(p.POP3) == 0 {
			add("prefer = %q but no pop3 endpoint is configured", p.Prefer)
		}
	default:
		add("prefer = %q: want imap or pop3", p.Prefer)
	}
	if p.Username != FullAddress {
		add("username = %q: want %q (the full email address is the only username form clients can get right)", p.Username, FullAddress)
	}
	if len(p.Auth) == 0 {
		add("auth: no method: want plain and/or login")
	}
	for _, m := range p.Auth {
		if m != AuthPlain && m != AuthLogin {
			add("auth = %q: want plain or login", m)
		}
	}
	if p.POP.LeaveOnServer && (p.POP.DeleteAfterDays < 1 || p.POP.DeleteAfterDays > MaxDeleteAfterDays) {
		add("pop3_policy.delete_after_days = %d: with leave_on_server it must be 1..%d, or mail piles up on the server", p.POP.DeleteAfterDays, MaxDeleteAfterDays)
	}
	if !p.POP.LeaveOnServer && p.POP.DeleteAfterDays != 0 {
		add("pop3_policy.delete_after_days = %d is set but leave_on_server is false", p.POP.DeleteAfterDays)
	}
	if p.POP.ExpireDays < 0 {
		add("pop3_policy.expire_days = %d: want 0 (never) or more", p.POP.ExpireDays)
	}
	if p.POP.ExpireDays > 0 && p.POP.LeaveOnServer && p.POP.ExpireDays < p.POP.DeleteAfterDays {
		add("pop3_policy.expire_days = %d is shorter than delete_after_days = %d: the server would delete mail clients still keep", p.POP.ExpireDays, p.POP.DeleteAfterDays)
	}
	for i, mx := range p.MX {
		if err := ValidHost(mx.Host); err != nil {
			add("mx[%d].host = %q: %v", i, mx.Host, err)
		}
		if mx.Preference < 0 || mx.Preference > 65535 {
			add("mx[%d].preference = %d: out of range 0..65535", i, mx.Preference)
		}
	}
	u, err := url.Parse(p.Web.BaseURL)
	switch {
	case p.Web.BaseURL == "":
		add("web_url is empty: set the https URL that serves autoconfig, like https://autoconfig.%s", p.Domain)
	case err != nil:
		add("web_url = %q: %v", p.Web.BaseURL, err)
	case u.Scheme != "https" && u.Scheme != "http":
		add("web_url = %q: want an https:// URL", p.Web.BaseURL)
	case u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "":
		add("web_url = %q: want scheme and host only, like https://autoconfig.%s", p.Web.BaseURL, p.Domain)
	}
	return errors.Join(errs...)
}

// MaxDeleteAfterDays is the most days a client may keep a copy of a
// downloaded message on the server (the seed's "at max, maybe 10").
const MaxDeleteAfterDays = 10
