package probe

import (
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"time"

	"mailsetup/autoconfig"
	"mailsetup/finding"
)

// Step is one check the probe ran (a connection, a login, a DNS query).
// Kind and Endpoint say what it checked; Name says the same for people
// and is not meant to be parsed.
type Step struct {
	Name string   `json:"name"`
	Kind StepKind `json:"kind"`
	// Endpoint is the mail server the step spoke to (its protocol, host,
	// port and connection security): set for KindConnect, KindLogin and
	// KindSecurityMode (there with the security the client reports), nil
	// for the other kinds.
	Endpoint *Endpoint        `json:"endpoint,omitempty"`
	Severity finding.Severity `json:"severity"`
	Duration time.Duration    `json:"duration_ns"`
	Evidence []string         `json:"evidence,omitempty"`
	// Error is why the step could not complete; empty when it did.
	Error string `json:"error,omitempty"`
	// NotFinished: the step was cut by its time limit, the probe's, or
	// the probe being stopped (Error says which); what it saw until then
	// is in Evidence.
	NotFinished bool `json:"not_finished,omitempty"`
}

// StepKind says what a step checked. The report lists the steps in the
// order of stepOrder.
type StepKind string

const (
	// KindDiscover is one attempt to find an unknown domain's settings
	// (Options.Discover): a document, the SRV or MX records, the guesses.
	KindDiscover StepKind = "discover"
	// KindCompare compares the reported client settings with the
	// expected ones.
	KindCompare StepKind = "compare"
	// KindConnect connects to an expected server: TCP, greeting,
	// TLS or STARTTLS with the certificate, capabilities.
	KindConnect StepKind = "connect"
	// KindSecurityMode finds out which connection security a port the
	// client reports really speaks.
	KindSecurityMode StepKind = "security-mode"
	// KindLogin logs in with the password.
	KindLogin StepKind = "login"
	// KindDNS checks the domain's DNS records.
	KindDNS StepKind = "dns"
	// KindAutoconfig checks the published Thunderbird document.
	KindAutoconfig StepKind = "autoconfig"
	// KindAutodiscover checks the live Outlook Autodiscover answer.
	KindAutodiscover StepKind = "autodiscover"
)

// stepOrder is the order of the report's steps by kind. Within a kind:
// discovery attempts in the order they ran, connections in the policy's
// order, the incoming port's security before the outgoing one's, logins
// in the order they are tried (loginOrder).
var stepOrder = []StepKind{KindDiscover, KindCompare, KindConnect, KindSecurityMode, KindLogin, KindDNS, KindAutoconfig, KindAutodiscover}

// Endpoint is one server a client should use.
type Endpoint struct {
	Protocol autoconfig.Protocol `json:"protocol"` // imap, pop3, smtp
	Host     string              `json:"host"`
	Port     int                 `json:"port"`
	Security autoconfig.Security `json:"security"` // tls, starttls, none
}

func (e Endpoint) String() string {
	return fmt.Sprintf("%s %s:%d %s", e.Protocol, e.Host, e.Port, e.Security)
}

// HostPort is "host:port" as String writes it.
func (e Endpoint) HostPort() string {
	return fmt.Sprintf("%s:%d", e.Host, e.Port)
}

func fromPolicy(e autoconfig.Endpoint) Endpoint {
	return Endpoint{Protocol: e.Protocol, Host: e.Host, Port: e.Port, Security: e.Security}
}

// endpointStep is the step of kind k on e, named "<kind> <endpoint>".
func endpointStep(k StepKind, e autoconfig.Endpoint) Step {
	ep := fromPolicy(e)
	return Step{Name: string(k) + " " + ep.String(), Kind: k, Endpoint: &ep}
}

// Expected are the settings the probe compares against.
type Expected struct {
	IMAP       []Endpoint `json:"imap,omitempty"`
	POP3       []Endpoint `json:"pop3,omitempty"`
	Submission []Endpoint `json:"submission,omitempty"`
	Prefer     string     `json:"prefer"`
	// Username is what the client must type as its username.
	Username string `json:"username"`
	// POP3LeaveOnServer and POP3DeleteAfterDays are the POP3 policy.
	POP3LeaveOnServer   bool `json:"pop3_leave_on_server"`
	POP3DeleteAfterDays int  `json:"pop3_delete_after_days,omitempty"`
	// POP3RetentionUnknown: the discovered settings do not say what POP3
	// clients should leave on the server (Autodiscover, SRV), so it is
	// not compared; the two fields above are then meaningless.
	POP3RetentionUnknown bool `json:"pop3_retention_unknown,omitempty"`
}

// Report is the result of one probe run.
type Report struct {
	Address string `json:"address"`
	Domain  string `json:"domain"`
	// Source says where the expected settings came from: "policy" (the
	// configured domain policy) or, with Options.Discover, "autoconfig"
	// (the Thunderbird document), "autodiscover" (Outlook POX), "srv"
	// (RFC 6186 DNS records), "mx-autoconfig" (the Thunderbird document
	// of the MX host's domain) or "guess" (Thunderbird's guessed hosts).
	Source   string          `json:"source"`
	Expected Expected        `json:"expected"`
	Client   *ClientSettings `json:"client,omitempty"`
	Steps    []Step          `json:"steps"`
	// Findings are sorted worst first.
	Findings []finding.Finding `json:"findings"`
	Worst    finding.Severity  `json:"worst"`
	Started  time.Time         `json:"started"`
	Duration time.Duration     `json:"duration_ns"`
	// Interrupted: the probe was stopped (SIGTERM, a closed request)
	// before every step finished; the report holds what was done, and
	// ExitCode says UNKNOWN.
	Interrupted bool `json:"interrupted,omitempty"`
}

// ClientSettings is what the customer's mail client shows. Zero values
// mean "not reported" and are not compared.
type ClientSettings struct {
	Incoming Incoming `json:"incoming"`
	Outgoing Outgoing `json:"outgoing"`
}

// Incoming is the client's incoming (IMAP or POP3) server.
type Incoming struct {
	Protocol string `json:"protocol,omitempty"` // imap or pop3
	Host     string `json:"host,omitempty"`
	Port     int    `json:"port,omitempty"`
	// Security is "ssl" or "tls" (implicit TLS), "starttls" or "none".
	Security string `json:"security,omitempty"`
	Username string `json:"username,omitempty"`
	// LeaveOnServer: POP3 "leave a copy of messages on the server".
	LeaveOnServer *bool `json:"leave_on_server,omitempty"`
	// DeleteAfterDays: POP3 "remove from server after N days"; 0 means
	// the box is unticked.
	DeleteAfterDays *int `json:"delete_after_days,omitempty"`
}

// Outgoing is the client's outgoing (SMTP) server.
type Outgoing struct {
	Host     string `json:"host,omitempty"`
	Port     int    `json:"port,omitempty"`
	Security string `json:"security,omitempty"`
	// Auth: "my outgoing server (SMTP) requires authentication".
	Auth *bool `json:"auth,omitempty"`
	// Username, when empty with Auth on, means "same as incoming".
	Username string `json:"username,omitempty"`
}

// Request is what to probe.
type Request struct {
	Address string `json:"address"`
	// Password, when set, enables the login checks. It is never logged,
	// printed, stored or put into a report.
	Password string `json:"-"`
	// Client is what the customer's client shows, if known.
	Client *ClientSettings `json:"client,omitempty"`
}

// Options configure a run.
type Options struct {
	// Policy returns the configured policy of a domain.
	Policy func(domain string) (autoconfig.Policy, bool)
	// Resolver is the DNS server (host:port) for the DNS checks; empty
	// skips them.
	Resolver string
	// RootCAs verifies server certificates; nil uses the system roots.
	RootCAs *x509.CertPool
	// StepTimeout bounds each step (default 10 s), Timeout the whole run
	// (default 30 s).
	StepTimeout, Timeout time.Duration
	// AllowedHost says whether a host may be contacted. The probe only
	// ever contacts hosts named by the policy; AllowedHost narrows that
	// further. Nil allows every policy host.
	AllowedHost func(host string) bool
	// Now is the clock (default time.Now).
	Now func() time.Time
	// OnStep, when set, is called with each step as it finishes, from
	// the step's goroutine (steps run concurrently): it must return
	// quickly and never block. The report has every step as well.
	OnStep func(Step)

	// Discover, for a domain Policy does not know, discovers the
	// expected settings the way mail clients do: the Thunderbird
	// autoconfig document (autoconfig.<domain>, then
	// <domain>/.well-known), Outlook Autodiscover POX
	// (autodiscover.<domain>, then <domain>), RFC 6186/8314 SRV records
	// through Resolver, the autoconfig document of the MX host's domain
	// (through Resolver), and last Thunderbird's guessed host names on
	// the standard ports. Report.Source says which one answered. The
	// probe then only contacts the discovery URLs' hosts, the guessed
	// hosts and the hosts the discovered settings name (narrowed by
	// AllowedHost). Off, such a
	// domain is ErrUnknownDomain. Never enable it for untrusted input
	// without AllowedHost: the discovered document chooses the hosts.
	Discover bool
	// HTTPClient fetches the discovery documents. Nil uses a client with
	// RootCAs, StepTimeout, no proxy, Resolve and HTTPSPort, that follows
	// redirects only to the same host; bodies are size-limited either
	// way. Testing hook.
	HTTPClient *http.Client
	// Resolve, when set, maps a host name to the address to dial instead
	// (ok false: dial the name itself); used for mail connections and the
	// default HTTPClient. Testing hook, e.g. every name to 127.0.0.1.
	Resolve func(host string) (addr string, ok bool)
	// Dialer, when set, dials the mail and discovery connections
	// (default: a zero net.Dialer). Testing hook, e.g. a LocalAddr of
	// 127.0.0.2 so that a server on 127.0.0.1 does not take the probe
	// for a local, trusted client.
	Dialer *net.Dialer
	// HTTPSPort is the port of the discovery URLs (0: 443). Testing hook
	// for an httptest TLS server.
	HTTPSPort int
	// Port, when set, maps a standard mail port that discovery guesses
	// (993, 143, 995, 110, 465, 587) to the port to dial instead; the
	// guessed settings then name the mapped port. Testing hook.
	Port func(port int) int
}
