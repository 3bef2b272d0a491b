package server

import (
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"mailsetup/server/delivery"
)

// QueueConfig is the outbound delivery: how mail for other domains
// leaves (MX or a smarthost), how long it is retried, and the limits.
type QueueConfig struct {
	// MaxDays a recipient is retried before the sender gets a
	// notification that it failed. Default 5.
	MaxDays int `toml:"max_days"`
	// WarnHours after which the sender is told, once, that the message
	// is still being tried. Default 4.
	WarnHours int `toml:"warn_hours"`
	// Retry is the wait after each failed attempt (Go durations); the
	// last repeats. Default 5m, 15m, 30m, 1h, 2h, 4h.
	Retry []string `toml:"retry"`
	// Resolver is the DNS server ("host:port") asked for MX and
	// addresses. Default: the first of /etc/resolv.conf.
	Resolver string `toml:"resolver"`
	// Port of the other domains' mail servers. Default 25.
	Port int `toml:"port"`
	// MaxConnections in total, MaxPerDomain to one destination.
	// Defaults 20 and 4.
	MaxConnections int `toml:"max_connections"`
	MaxPerDomain   int `toml:"max_per_domain"`
	// ConnectSeconds and CommandSeconds bound a connection and each SMTP
	// command. Defaults 30 and 120.
	ConnectSeconds int `toml:"connect_seconds"`
	CommandSeconds int `toml:"command_seconds"`
	// Smarthost ("host:port") sends everything through that server
	// instead of MX; SmarthostTLS is starttls (default), tls (implicit)
	// or none; with SmarthostUsername, the password is the first line
	// of SmarthostPasswordFile; SmarthostCAFile, when set, is the PEM
	// of the CA that signed the smarthost's certificate.
	Smarthost             string `toml:"smarthost"`
	SmarthostTLS          string `toml:"smarthost_tls"`
	SmarthostUsername     string `toml:"smarthost_username"`
	SmarthostPasswordFile string `toml:"smarthost_password_file"`
	SmarthostCAFile       string `toml:"smarthost_ca_file"`
	// SendLimitPerHour is each account's sending limit: recipients of
	// other domains per hour; over it, submission answers 451 4.7.1.
	// Default 500.
	SendLimitPerHour int `toml:"send_limit_per_hour"`
	// MTASTSMode is the mode of the MTA-STS policy the local domains
	// publish (RFC 8461): testing (default), enforce (other servers then
	// send here only over TLS with a valid certificate for an MX name)
	// or none.
	MTASTSMode string `toml:"mta_sts_mode"`
}

func (c *Config) queueDefaults() {
	q := &c.Queue
	setDefault(&q.MaxDays, 5)
	setDefault(&q.WarnHours, 4)
	setDefault(&q.Port, 25)
	setDefault(&q.MaxConnections, 20)
	setDefault(&q.MaxPerDomain, 4)
	setDefault(&q.ConnectSeconds, 30)
	setDefault(&q.CommandSeconds, 120)
	setDefault(&q.SendLimitPerHour, 500)
	if q.MTASTSMode == "" {
		q.MTASTSMode = "testing"
	}
	if q.Smarthost != "" && q.SmarthostTLS == "" {
		q.SmarthostTLS = "starttls"
	}
}

func (c *Config) validateQueue(add func(string, ...any)) {
	q := c.Queue
	if q.MaxDays < 1 || q.MaxDays > 60 {
		add("queue.max_days = %d: want 1 to 60", q.MaxDays)
	}
	if q.WarnHours < 1 || q.WarnHours >= q.MaxDays*24 {
		add("queue.warn_hours = %d: want at least 1 and less than queue.max_days in hours (%d)", q.WarnHours, q.MaxDays*24)
	}
	if _, err := c.retrySchedule(); err != nil {
		add("%v", err)
	}
	if q.Resolver != "" {
		if _, _, err := splitHostPort(q.Resolver); err != nil {
			add("queue.resolver = %q: %v (want the DNS server as host:port, e.g. 127.0.0.1:53)", q.Resolver, err)
		}
	}
	if q.Port < 1 || q.Port > 65535 {
		add("queue.port = %d: want 1 to 65535", q.Port)
	}
	if q.MaxConnections < 1 || q.MaxPerDomain < 1 || q.MaxPerDomain > q.MaxConnections {
		add("queue.max_connections = %d, queue.max_per_domain = %d: want positive numbers, max_per_domain at most max_connections", q.MaxConnections, q.MaxPerDomain)
	}
	if q.ConnectSeconds < 1 || q.CommandSeconds < 1 {
		add("queue.connect_seconds = %d, queue.command_seconds = %d: want positive numbers", q.ConnectSeconds, q.CommandSeconds)
	}
	if !slices.Contains([]string{"testing", "enforce", "none"}, q.MTASTSMode) {
		add("queue.mta_sts_mode = %q: want testing, enforce or none", q.MTASTSMode)
	}
	if q.SendLimitPerHour < 1 {
		add("queue.send_limit_per_hour = %d: want a positive number", q.SendLimitPerHour)
	}
	if q.Smarthost == "" {
		if q.SmarthostUsername != "" || q.SmarthostPasswordFile != "" || q.SmarthostCAFile != "" || q.SmarthostTLS != "" {
			add("queue.smarthost_* are set but queue.smarthost is not")
		}
		return
	}
	if _, _, err := net.SplitHostPort(q.Smarthost); err != nil {
		add("queue.smarthost = %q: want host:port, e.g. relay.example.net:587", q.Smarthost)
	}
	if !slices.Contains([]string{"starttls", "tls", "none"}, q.SmarthostTLS) {
		add("queue.smarthost_tls = %q: want starttls, tls or none", q.SmarthostTLS)
	}
	if (q.SmarthostUsername == "") != (q.SmarthostPasswordFile == "") {
		add("queue.smarthost_username and queue.smarthost_password_file go together")
	}
	if q.SmarthostUsername != "" && q.SmarthostTLS == "none" {
		add("queue.smarthost_tls = \"none\" with a username: the password would travel in the clear; use starttls or tls")
	}
	if q.SmarthostPasswordFile != "" {
		if _, err := c.smarthostPassword(); err != nil {
			add("%v", err)
		}
	}
	if q.SmarthostCAFile != "" {
		if _, err := c.smarthostRoots(); err != nil {
			add("%v", err)
		}
	}
}

// retrySchedule parses queue.retry (nil when unset: the agent's default).
func (c *Config) retrySchedule() ([]time.Duration, error) {
	var out []time.Duration
	for i, s := range c.Queue.Retry {
		d, err := time.ParseDuration(s)
		if err != nil || d < time.Second {
			return nil, fmt.Errorf("queue.retry[%d] = %q: want a duration of at least 1s, like \"15m\" or \"4h\"", i, s)
		}
		out = append(out, d)
	}
	return out, nil
}

// smarthostPassword reads the first line of queue.smarthost_password_file.
func (c *Config) smarthostPassword() (string, error) {
	path := c.Queue.SmarthostPasswordFile
	b, err := os.ReadFile(c.Path(path))
	if err != nil {
		return "", fmt.Errorf("queue.smarthost_password_file = %q: %w", path, err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	line = strings.TrimRight(line, "\r")
	if line == "" {
		return "", fmt.Errorf("queue.smarthost_password_file = %q: the first line is empty", path)
	}
	return line, nil
}

// smarthostRoots reads queue.smarthost_ca_file.
func (c *Config) smarthostRoots() (*x509.CertPool, error) {
	path := c.Queue.SmarthostCAFile
	b, err := os.ReadFile(c.Path(path))
	if err != nil {
		return nil, fmt.Errorf("queue.smarthost_ca_file = %q: %w", path, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("queue.smarthost_ca_file = %q: no PEM certificate in it", path)
	}
	return pool, nil
}

// deliveryOptions turns the [queue] table into the agent's options
// (without the parts the running server supplies).
func (c *Config) deliveryOptions() (delivery.Options, error) {
	q := c.Queue
	retry, err := c.retrySchedule()
	if err != nil {
		return delivery.Options{}, err
	}
	o := delivery.Options{Hostname: c.Hostname, Port: q.Port, MaxConnections: q.MaxConnections, MaxPerDomain: q.MaxPerDomain,
		ConnectTimeout: time.Duration(q.ConnectSeconds) * time.Second, CommandTimeout: time.Duration(q.CommandSeconds) * time.Second,
		MaxAge: time.Duration(q.MaxDays) * 24 * time.Hour, WarnAfter: time.Duration(q.WarnHours) * time.Hour, Retry: retry}
	if q.Smarthost != "" {
		sh := &delivery.Smarthost{Addr: q.Smarthost, TLS: q.SmarthostTLS, Username: q.SmarthostUsername}
		if q.SmarthostPasswordFile != "" {
			if sh.Password, err = c.smarthostPassword(); err != nil {
				return o, err
			}
		}
		if q.SmarthostCAFile != "" {
			if sh.RootCAs, err = c.smarthostRoots(); err != nil {
				return o, err
			}
		}
		o.Smarthost = sh
		return o, nil
	}
	if q.Resolver != "" {
		o.Resolver = &delivery.Resolver{Server: q.Resolver}
	} else if o.Resolver, err = delivery.SystemResolver(); err != nil {
		return o, err
	}
	return o, nil
}
