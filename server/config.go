package server

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"mailsetup/autoconfig"
)

// Config is the whole configuration file (TOML). Relative paths in it are
// relative to the directory of the config file.
type Config struct {
	// Hostname is the server's own host name: in greetings and in the
	// generated certificate. Default "localhost".
	Hostname string `toml:"hostname"`
	// DataDir holds the accounts and the mail storage. Default: the
	// directory of the config file.
	DataDir string `toml:"data_dir"`

	Log            LogConfig          `toml:"log"`
	TLS            ServerTLSConfig    `toml:"tls"`
	ProfileSigning TLSConfig          `toml:"profile_signing"`
	Listen         ListenConfig       `toml:"listen"`
	Domains        []DomainConfig     `toml:"domain"`
	Limits         HTTPLimitConfig    `toml:"http_limits"`
	Mail           MailConfig         `toml:"mail"`
	Staff          StaffConfig        `toml:"staff"`
	Observations   ObservationsConfig `toml:"observations"`
	Observe        ObserveConfig      `toml:"observe"`
	SelfHelp       SelfHelpConfig     `toml:"self_help"`
	Queue          QueueConfig        `toml:"queue"`
	Branding       BrandingConfig     `toml:"branding"`
	Database       DatabaseConfig     `toml:"database"`
	LoadBalancer   LoadBalancerConfig `toml:"load_balancer"`

	// logo and logoType are [branding]'s logo file, read when the config
	// is checked.
	logo     []byte
	logoType string
	// dir is the directory relative paths are resolved against.
	dir string
	// policyOnly: loaded by LoadPolicyConfig (listeners not required).
	policyOnly bool
}

// LogConfig configures logging. Logging never blocks request or mail
// handling: entries go through a bounded queue and are dropped (and
// counted in mailsetup_log_dropped_total) when the sink is too slow.
type LogConfig struct {
	// Level is debug, info, warn or error. Default info.
	Level string `toml:"level"`
	// Format is text or json. Default text.
	Format string `toml:"format"`
	// File is where logs go; empty means standard error.
	File string `toml:"file"`
	// Queue is how many entries may wait for a slow sink. Default 8192.
	Queue int `toml:"queue"`
	// Access logs every successful HTTP request at info level. Default
	// false: failed requests are logged at info, successful ones at debug,
	// and every request is counted in mailsetup_http_requests_total; the
	// access log costs about 15% of an autoconfig request's CPU.
	Access *bool `toml:"access"`
}

// TLSConfig names a certificate and its key, PEM files.
type TLSConfig struct {
	CertFile string `toml:"cert_file"`
	KeyFile  string `toml:"key_file"`
}

// ListenConfig holds the listening addresses; an empty one is not served.
type ListenConfig struct {
	// HTTP serves the autoconfig documents without TLS (Thunderbird's
	// http:// fallback URLs), e.g. "127.0.0.1:8080".
	HTTP string `toml:"http"`
	// HTTPS serves the same over TLS with [tls], e.g. "127.0.0.1:8443".
	HTTPS string `toml:"https"`
	// DNS is the embedded authoritative DNS responder, UDP and TCP.
	DNS string `toml:"dns"`
	// Admin serves /metrics and /healthz; keep it on loopback or a
	// management network.
	Admin string `toml:"admin"`
	// SMTP is inbound mail from other servers (port 25).
	SMTP string `toml:"smtp"`
	// Submission is authenticated submission with STARTTLS (587).
	Submission string `toml:"submission"`
	// Submissions is authenticated submission over implicit TLS (465).
	Submissions string `toml:"submissions"`
	// IMAP with STARTTLS (143) and IMAPS over implicit TLS (993).
	IMAP  string `toml:"imap"`
	IMAPS string `toml:"imaps"`
	// POP3 with STLS (110) and POP3S over implicit TLS (995).
	POP3  string `toml:"pop3"`
	POP3S string `toml:"pop3s"`
}

// MailConfig bounds the mail listeners. Zero values take the defaults.
type MailConfig struct {
	// MaxMessageBytes is the largest message accepted (advertised with
	// SIZE). Default 26214400 (25 MiB).
	MaxMessageBytes int64 `toml:"max_message_bytes"`
	// MaxConnections per listener. Default 500.
	MaxConnections int `toml:"max_connections"`
	// MaxConnectionsPerIP per listener and remote address. Default 20.
	MaxConnectionsPerIP int `toml:"max_connections_per_ip"`
	// InsecureAuthOnLoopback allows AUTH/LOGIN/USER without TLS for
	// clients connecting from 127.0.0.0/8 or ::1 to a loopback listener
	// (tests, local tools). Default false: TLS first, always.
	InsecureAuthOnLoopback bool `toml:"insecure_auth_on_loopback"`
	// POP3IdleMinutes is the POP3 inactivity timeout; RFC 1939 §3 asks
	// for at least 10. Default 10.
	POP3IdleMinutes int `toml:"pop3_idle_minutes"`
	// POP3LoginDelaySeconds, when set, is advertised as CAPA LOGIN-DELAY
	// (RFC 2449 §6.8) and enforced: a POP3 login sooner than this after the
	// account's previous one gets -ERR [LOGIN-DELAY]. Default 0: none.
	POP3LoginDelaySeconds int `toml:"pop3_login_delay_seconds"`
	// ExpireDryRun makes the POP3 expiry sweeper (domains with
	// pop3_policy.expire_days > 0) only log and count the messages it
	// would delete (mailsetup_pop3_expire_candidates) instead of
	// deleting them: turn expiry on with it first and read the logs.
	// Default false. It needs at least one domain with expire_days, or
	// there is nothing to sweep.
	ExpireDryRun bool `toml:"expire_dry_run"`
	// LoginTimeoutSeconds closes a connection that has not logged in
	// (on port 25: not named a recipient) this long after it opened,
	// whatever it sends meanwhile. Default 60.
	LoginTimeoutSeconds int `toml:"login_timeout_seconds"`
	// MaxUnauthenticated is each listener's share of max_connections for
	// connections that have not logged in yet (port 25: not named a
	// recipient). When it is full, a new connection pushes out the
	// oldest of them, so a flood of idle connections cannot keep
	// customers out. Default half of max_connections.
	MaxUnauthenticated int `toml:"max_unauthenticated"`
	// LoginFailuresPerIP, LoginFailuresPerAccount,
	// LoginFailuresNewAddresses and LoginWindowSeconds are the login
	// throttle's limits (see the README's security section). Defaults
	// 10, 30, 10 and 600.
	LoginFailuresPerIP        int `toml:"login_failures_per_ip"`
	LoginFailuresPerAccount   int `toml:"login_failures_per_account"`
	LoginFailuresNewAddresses int `toml:"login_failures_new_addresses"`
	LoginWindowSeconds        int `toml:"login_window_seconds"`
	// UnknownRecipientsSlow: after this many unknown recipients in one
	// SMTP session each further one is answered after a growing delay;
	// UnknownRecipientsMax: then the session gets 421 and is closed.
	// Defaults 3 and 10.
	UnknownRecipientsSlow int `toml:"unknown_recipients_slow"`
	UnknownRecipientsMax  int `toml:"unknown_recipients_max"`
	// SMTPCommandSeconds is how long an SMTP client may take to send one
	// command line (RFC 5321 §4.5.3.2 suggests 5 minutes); a line
	// trickled slower is not executed and the connection is closed.
	// Default 300.
	SMTPCommandSeconds int `toml:"smtp_command_seconds"`
}

// HTTPLimitConfig bounds HTTP requests. Zero values take the defaults.
type HTTPLimitConfig struct {
	// ReadHeaderSeconds: time to read request headers. Default 5.
	ReadHeaderSeconds int `toml:"read_header_seconds"`
	// ReadSeconds: time to read a whole request. Default 10.
	ReadSeconds int `toml:"read_seconds"`
	// WriteSeconds: time to write a response. Default 10.
	WriteSeconds int `toml:"write_seconds"`
	// IdleSeconds: keep-alive idle time. Default 120.
	IdleSeconds int `toml:"idle_seconds"`
	// MaxHeaderBytes: request header size. Default 16384.
	MaxHeaderBytes int `toml:"max_header_bytes"`
	// MaxConnections per web listener (HTTP, HTTPS, admin), open and
	// idle keep-alive ones together; lowered at start if the process's
	// descriptor limit would not leave the mail listeners their room.
	// Default 4000.
	MaxConnections int `toml:"max_connections"`
	// MaxConnectionsPerIP per web listener and remote address (IPv6:
	// its /64). Default 200.
	MaxConnectionsPerIP int `toml:"max_connections_per_ip"`
}

// DomainConfig is one mail domain's policy as written in the file.
type DomainConfig struct {
	Name        string `toml:"name"`
	DisplayName string `toml:"display_name"`
	ShortName   string `toml:"short_name"`
	// Prefer is imap or pop3: what clients are told to use.
	Prefer string `toml:"prefer"`
	// Username is the form of the username; only full-address is valid.
	Username string `toml:"username"`
	// Auth lists SASL mechanisms: plain, login. Default both.
	Auth []string `toml:"auth"`
	// WebURL is the https base URL serving this domain's autoconfig.
	WebURL string `toml:"web_url"`
	// WebAddresses, when set, are published as A/AAAA records of
	// autoconfig.<domain> and autodiscover.<domain>.
	WebAddresses []string `toml:"web_addresses"`

	IMAP       []EndpointConfig `toml:"imap"`
	POP3       []EndpointConfig `toml:"pop3"`
	Submission []EndpointConfig `toml:"submission"`
	MX         []MXConfig       `toml:"mx"`
	POP3Policy POP3Config       `toml:"pop3_policy"`
}

// EndpointConfig is one server clients connect to.
type EndpointConfig struct {
	Host string `toml:"host"`
	Port int    `toml:"port"`
	// Security is tls (implicit), starttls or none.
	Security string `toml:"security"`
}

// MXConfig is one mail exchanger.
type MXConfig struct {
	Host       string `toml:"host"`
	Preference int    `toml:"preference"`
}

// POP3Config is what POP3 clients do with mail left on the server.
type POP3Config struct {
	// LeaveOnServer: clients keep a copy on the server. Default true.
	LeaveOnServer *bool `toml:"leave_on_server"`
	// DeleteAfterDays: 1..10, default 7, required with LeaveOnServer.
	DeleteAfterDays *int `toml:"delete_after_days"`
	// ExpireDays: server-side expiry of retrieved mail (RFC 2449
	// EXPIRE); 0 (default) never expires.
	ExpireDays int `toml:"expire_days"`
}

// DefaultDeleteAfterDays is the policy's delete-after when not configured.
const DefaultDeleteAfterDays = 7

// LoadConfig reads and validates a config file. Every problem is reported,
// each naming the key and the bad value.
func LoadConfig(path string) (*Config, error) {
	return loadConfig(path, false)
}

// LoadPolicyConfig reads and validates a config for a command that only
// needs the domain policies (the probe, pointed at servers that may not
// be ours): listeners are not required, and the endpoints are not checked
// against them. Everything else is validated as LoadConfig does.
func LoadPolicyConfig(path string) (*Config, error) {
	return loadConfig(path, true)
}

func loadConfig(path string, policyOnly bool) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return parseConfig(data, filepath.Dir(abs), path, policyOnly)
}

// ParseConfig decodes a config from data; dir resolves relative paths and
// name is used in error messages.
func ParseConfig(data []byte, dir, name string) (*Config, error) {
	return parseConfig(data, dir, name, false)
}

func parseConfig(data []byte, dir, name string, policyOnly bool) (*Config, error) {
	var c Config
	c.policyOnly = policyOnly
	md, err := toml.Decode(string(data), &c)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	// Unknown keys are listed with every other problem, each with the
	// nearest known key as a suggestion.
	unknown := unknownKeys(md.Undecoded())
	c.dir = dir
	c.applyDefaults()
	if err := errors.Join(append(unknown, c.Validate())...); err != nil {
		return nil, fmt.Errorf("%s: invalid configuration:\n%w", name, err)
	}
	return &c, nil
}

func (c *Config) applyDefaults() {
	if c.Hostname == "" {
		c.Hostname = "localhost"
	}
	if c.DataDir == "" {
		c.DataDir = "."
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
	if c.Log.Queue == 0 {
		c.Log.Queue = 8192
	}
	if c.Log.Access == nil {
		f := false
		c.Log.Access = &f
	}
	if c.Mail.MaxMessageBytes == 0 {
		c.Mail.MaxMessageBytes = 25 << 20
	}
	setDefault(&c.Mail.MaxConnections, 500)
	setDefault(&c.Mail.MaxConnectionsPerIP, 20)
	setDefault(&c.Mail.POP3IdleMinutes, 10)
	setDefault(&c.Mail.LoginTimeoutSeconds, 60)
	setDefault(&c.Mail.MaxUnauthenticated, max(1, c.Mail.MaxConnections/2))
	setDefault(&c.Mail.LoginFailuresPerIP, 10)
	setDefault(&c.Mail.LoginFailuresPerAccount, 30)
	setDefault(&c.Mail.LoginFailuresNewAddresses, 10)
	setDefault(&c.Mail.LoginWindowSeconds, 600)
	setDefault(&c.Mail.UnknownRecipientsSlow, 3)
	setDefault(&c.Mail.UnknownRecipientsMax, 10)
	setDefault(&c.Mail.SMTPCommandSeconds, 300)
	setDefault(&c.Limits.MaxConnections, 4000)
	setDefault(&c.Limits.MaxConnectionsPerIP, 200)
	l := &c.Limits
	setDefault(&l.ReadHeaderSeconds, 5)
	setDefault(&l.ReadSeconds, 10)
	setDefault(&l.WriteSeconds, 10)
	setDefault(&l.IdleSeconds, 120)
	setDefault(&l.MaxHeaderBytes, 16<<10)
	c.staffDefaults()
	c.acmeDefaults()
	c.queueDefaults()
	for i := range c.Domains {
		d := &c.Domains[i]
		d.Name = strings.ToLower(strings.TrimSuffix(d.Name, "."))
		if d.ShortName == "" {
			d.ShortName = d.DisplayName
		}
		if d.Username == "" {
			d.Username = string(autoconfig.FullAddress)
		}
		if len(d.Auth) == 0 {
			d.Auth = []string{string(autoconfig.AuthPlain), string(autoconfig.AuthLogin)}
		}
		if d.Prefer == "" {
			d.Prefer = string(autoconfig.IMAP)
			if len(d.IMAP) == 0 {
				d.Prefer = string(autoconfig.POP3)
			}
		}
		if d.POP3Policy.LeaveOnServer == nil {
			t := true
			d.POP3Policy.LeaveOnServer = &t
		}
		if d.POP3Policy.DeleteAfterDays == nil {
			n := 0
			if *d.POP3Policy.LeaveOnServer {
				n = DefaultDeleteAfterDays
			}
			d.POP3Policy.DeleteAfterDays = &n
		}
	}
}

func setDefault(v *int, def int) {
	if *v == 0 {
		*v = def
	}
}

// Path resolves a path from the config file.
func (c *Config) Path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.dir, p)
}

// Validate checks the whole configuration and returns every problem.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if err := autoconfig.ValidHost(c.Hostname); err != nil {
		add("hostname = %q: %v", c.Hostname, err)
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		add("log.level = %q: want debug, info, warn or error", c.Log.Level)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		add("log.format = %q: want text or json", c.Log.Format)
	}
	if c.Log.Queue < 16 {
		add("log.queue = %d: want at least 16", c.Log.Queue)
	}
	for _, l := range c.listeners() {
		if l.addr == "" {
			continue
		}
		if _, _, err := splitHostPort(l.addr); err != nil {
			add("listen.%s = %q: %v", l.key, l.addr, err)
		}
	}
	mailTLS := c.Listen.Submission != "" || c.Listen.Submissions != "" || c.Listen.IMAP != "" || c.Listen.IMAPS != "" || c.Listen.POP3 != "" || c.Listen.POP3S != "" || c.Listen.SMTP != ""
	if mailTLS && !c.hasCertificate() {
		add("the mail listeners need tls.cert_file and tls.key_file, or tls.acme (STARTTLS and implicit TLS)")
	}
	if c.Mail.MaxMessageBytes < 1024 {
		add("mail.max_message_bytes = %d: want at least 1024", c.Mail.MaxMessageBytes)
	}
	if c.Mail.POP3LoginDelaySeconds < 0 || c.Mail.POP3LoginDelaySeconds > 86400 {
		add("mail.pop3_login_delay_seconds = %d: want 0 (none) to 86400", c.Mail.POP3LoginDelaySeconds)
	}
	if c.Mail.POP3IdleMinutes < 10 {
		add("mail.pop3_idle_minutes = %d: RFC 1939 asks for at least 10", c.Mail.POP3IdleMinutes)
	}
	if c.Mail.MaxConnections < 1 || c.Mail.MaxConnectionsPerIP < 1 {
		add("mail.max_connections = %d, mail.max_connections_per_ip = %d: want positive numbers", c.Mail.MaxConnections, c.Mail.MaxConnectionsPerIP)
	}
	if c.Mail.MaxUnauthenticated < 1 || c.Mail.MaxUnauthenticated > c.Mail.MaxConnections {
		add("mail.max_unauthenticated = %d: want 1 to mail.max_connections (%d)", c.Mail.MaxUnauthenticated, c.Mail.MaxConnections)
	}
	if c.Mail.UnknownRecipientsSlow > c.Mail.UnknownRecipientsMax {
		add("mail.unknown_recipients_slow = %d is more than mail.unknown_recipients_max = %d", c.Mail.UnknownRecipientsSlow, c.Mail.UnknownRecipientsMax)
	}
	if c.Mail.ExpireDryRun && !c.expiryConfigured() {
		add("mail.expire_dry_run = true, but no domain sets pop3_policy.expire_days: there is nothing to sweep; set expire_days on a domain or remove expire_dry_run")
	}
	if c.Listen.HTTP == "" && c.Listen.HTTPS == "" && !c.policyOnly {
		add("listen: neither http nor https is set: nothing would serve autoconfig")
	}
	if c.Listen.HTTPS != "" && !c.hasCertificate() {
		add("listen.https = %q needs tls.cert_file and tls.key_file, or tls.acme", c.Listen.HTTPS)
	}
	if (c.ProfileSigning.CertFile == "") != (c.ProfileSigning.KeyFile == "") {
		add("profile_signing: set both cert_file and key_file, or neither")
	}
	for key, v := range map[string]int{
		"http_limits.read_header_seconds":    c.Limits.ReadHeaderSeconds,
		"http_limits.read_seconds":           c.Limits.ReadSeconds,
		"http_limits.write_seconds":          c.Limits.WriteSeconds,
		"http_limits.idle_seconds":           c.Limits.IdleSeconds,
		"http_limits.max_header_bytes":       c.Limits.MaxHeaderBytes,
		"mail.login_timeout_seconds":         c.Mail.LoginTimeoutSeconds,
		"mail.login_failures_per_ip":         c.Mail.LoginFailuresPerIP,
		"mail.login_failures_per_account":    c.Mail.LoginFailuresPerAccount,
		"mail.login_failures_new_addresses":  c.Mail.LoginFailuresNewAddresses,
		"mail.login_window_seconds":          c.Mail.LoginWindowSeconds,
		"mail.unknown_recipients_slow":       c.Mail.UnknownRecipientsSlow,
		"mail.unknown_recipients_max":        c.Mail.UnknownRecipientsMax,
		"mail.smtp_command_seconds":          c.Mail.SMTPCommandSeconds,
		"http_limits.max_connections":        c.Limits.MaxConnections,
		"http_limits.max_connections_per_ip": c.Limits.MaxConnectionsPerIP,
	} {
		if v < 0 {
			add("%s = %d: want a positive number", key, v)
		}
	}

	c.validateStaff(add)
	c.validateObserve(add)
	c.validateACME(add)
	c.validateQueue(add)
	c.validateBranding(add)
	c.validateDatabase(add)
	c.validateLoadBalancer(add)
	if len(c.Domains) == 0 {
		add("no [[domain]]: configure at least one mail domain")
	}
	seen := map[string]bool{}
	for i, d := range c.Domains {
		key := fmt.Sprintf("domain[%d]", i)
		if d.Name != "" {
			key = fmt.Sprintf("domain %q", d.Name)
		}
		if seen[d.Name] {
			add("%s: configured twice", key)
		}
		seen[d.Name] = true
		p, err := d.policy()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !c.policyOnly {
			errs = append(errs, c.checkAdvertised(p)...)
		}
	}
	return errors.Join(errs...)
}

func splitHostPort(addr string) (string, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("want host:port: %v", err)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return "", 0, fmt.Errorf("port %q is not a number in 0..65535", port)
	}
	return host, n, nil
}

// policy converts the file's form into the policy model and validates it;
// the error names each bad key and value.
func (d DomainConfig) policy() (autoconfig.Policy, error) {
	var errs []error
	key := "domain " + strconv.Quote(d.Name)
	p := autoconfig.Policy{
		Domain:      d.Name,
		DisplayName: d.DisplayName,
		ShortName:   d.ShortName,
		Prefer:      autoconfig.Protocol(d.Prefer),
		Username:    autoconfig.UsernameForm(d.Username),
		MX:          make([]autoconfig.MX, 0, len(d.MX)),
		Web:         autoconfig.Web{BaseURL: strings.TrimSuffix(d.WebURL, "/")},
	}
	for _, m := range d.Auth {
		p.Auth = append(p.Auth, autoconfig.AuthMethod(m))
	}
	endpoints := func(proto autoconfig.Protocol, list []EndpointConfig) []autoconfig.Endpoint {
		out := make([]autoconfig.Endpoint, 0, len(list))
		for _, e := range list {
			out = append(out, autoconfig.Endpoint{Protocol: proto, Host: strings.ToLower(e.Host), Port: e.Port, Security: autoconfig.Security(e.Security)})
		}
		return out
	}
	p.IMAP = endpoints(autoconfig.IMAP, d.IMAP)
	p.POP3 = endpoints(autoconfig.POP3, d.POP3)
	p.Submission = endpoints(autoconfig.SMTP, d.Submission)
	for _, m := range d.MX {
		p.MX = append(p.MX, autoconfig.MX{Host: strings.ToLower(strings.TrimSuffix(m.Host, ".")), Preference: m.Preference})
	}
	for _, a := range d.WebAddresses {
		ip, err := netip.ParseAddr(a)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: web_addresses: %q is not an IP address", key, a))
			continue
		}
		p.Web.Addresses = append(p.Web.Addresses, ip)
	}
	if d.POP3Policy.LeaveOnServer != nil {
		p.POP.LeaveOnServer = *d.POP3Policy.LeaveOnServer
	}
	if d.POP3Policy.DeleteAfterDays != nil {
		p.POP.DeleteAfterDays = *d.POP3Policy.DeleteAfterDays
	}
	p.POP.ExpireDays = d.POP3Policy.ExpireDays
	if u, err := url.Parse(p.Web.BaseURL); err == nil && u.Scheme == "http" {
		errs = append(errs, fmt.Errorf("%s: web_url = %q: clients send passwords to autodiscover; use https", key, d.WebURL))
	}
	if err := p.Validate(); err != nil {
		errs = append(errs, err)
	}
	return p, errors.Join(errs...)
}

// Policies returns the validated policy of every configured domain.
func (c *Config) Policies() []autoconfig.Policy {
	out := make([]autoconfig.Policy, 0, len(c.Domains))
	for _, d := range c.Domains {
		p, err := d.policy()
		if err != nil {
			continue // Validate already refused such a config
		}
		out = append(out, p)
	}
	return out
}

// expiryConfigured reports whether any domain has server-side POP3
// expiry (pop3_policy.expire_days > 0).
func (c *Config) expiryConfigured() bool {
	for _, d := range c.Domains {
		if d.POP3Policy.ExpireDays > 0 {
			return true
		}
	}
	return false
}

// HasDomain reports whether domain is configured.
func (c *Config) HasDomain(domain string) bool {
	for _, d := range c.Domains {
		if d.Name == domain {
			return true
		}
	}
	return false
}

// QueuePath is the outbound queue's directory of a config.
func QueuePath(c *Config) string {
	return filepath.Join(c.Path(c.DataDir), "queue")
}

// AccountsPath is the account file of a config.
func AccountsPath(c *Config) string {
	return filepath.Join(c.Path(c.DataDir), AccountsFile)
}

type listener struct{ key, addr string }

// listeners returns every listen.* key and its address.
func (c *Config) listeners() []listener {
	l := c.Listen
	return []listener{{"http", l.HTTP}, {"https", l.HTTPS}, {"dns", l.DNS}, {"admin", l.Admin},
		{"smtp", l.SMTP}, {"submission", l.Submission}, {"submissions", l.Submissions},
		{"imap", l.IMAP}, {"imaps", l.IMAPS}, {"pop3", l.POP3}, {"pop3s", l.POP3S}}
}

// listenKey is the listen.* key that serves an advertised endpoint.
func listenKey(e autoconfig.Endpoint) string {
	switch e.Protocol {
	case autoconfig.IMAP:
		if e.Security == autoconfig.TLS {
			return "imaps"
		}
		return "imap"
	case autoconfig.POP3:
		if e.Security == autoconfig.TLS {
			return "pop3s"
		}
		return "pop3"
	}
	if e.Security == autoconfig.TLS {
		return "submissions"
	}
	return "submission"
}

// checkAdvertised: an endpoint on this server (host "localhost" or the
// configured hostname) must be served by the matching listener on the
// same port, so a client that follows the advertised settings reaches a
// server that speaks that protocol with that TLS mode.
func (c *Config) checkAdvertised(p autoconfig.Policy) []error {
	addrs := map[string]string{}
	for _, l := range c.listeners() {
		addrs[l.key] = l.addr
	}
	var errs []error
	for _, e := range append(p.Incoming(), p.Submission...) {
		if e.Host != "localhost" && e.Host != c.Hostname {
			continue
		}
		key := listenKey(e)
		addr := addrs[key]
		if addr == "" {
			errs = append(errs, fmt.Errorf("domain %q advertises %s, but listen.%s is not set: nothing would answer there", p.Domain, e, key))
			continue
		}
		if _, port, err := splitHostPort(addr); err == nil && port != 0 && port != e.Port {
			errs = append(errs, fmt.Errorf("domain %q advertises %s, but listen.%s = %q listens on port %d", p.Domain, e, key, addr, port))
		}
	}
	return errs
}
