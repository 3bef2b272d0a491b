package server

import (
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"mailsetup/autoconfig"
	"mailsetup/server/delivery"
	"mailsetup/server/dkim"
	"mailsetup/server/imapd"
	"mailsetup/server/netlimit"
	"mailsetup/server/pop3d"
	"mailsetup/server/smtpd"
)

// reloadable is what a config reload changes in the running service
// besides the policies, the staff and the certificates: the listeners'
// limits, the POP3 servers' pre-login EXPIRE, the expiry's dry run. Run
// fills it as it opens the listeners.
type reloadable struct {
	mu       sync.Mutex
	mail     []*netlimit.Listener // every mail listener's limits
	web      []*netlimit.Listener // http and https (not admin)
	fdLimit  uint64               // the descriptor limit divided at start (0: unknown)
	webCount int                  // the web listeners it was divided between
	webSrv   []*swappableHTTP     // every web listener's servers
	httpLim  HTTPLimitConfig      // http_limits as last applied to them
	pop3     []*pop3d.Server
	smtp     []*smtpd.Server
	imap     []*imapd.Server
	// loopback says, per server in pop3, smtp and imap, that it listens on
	// loopback (where mail.insecure_auth_on_loopback applies).
	loopback map[any]bool
	delivery *delivery.Agent // nil without mail
	// redownloaded is mailsetup_pop3_redownloaded_messages_total, whose
	// new domains start from 0; nil without observations.
	redownloaded *prometheus.CounterVec
	// dryRun is mail.expire_dry_run as last applied.
	dryRun atomic.Bool
}

func (r *reloadable) addMail(l *netlimit.Listener) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mail = append(r.mail, l)
}

func (r *reloadable) addWeb(l *netlimit.Listener) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.web = append(r.web, l)
}

func (r *reloadable) addWebServer(w *swappableHTTP) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.webSrv = append(r.webSrv, w)
}

func (r *reloadable) setWebBudget(b fdBudget, webListeners int, lim HTTPLimitConfig) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fdLimit, r.webCount, r.httpLim = b.limit, webListeners, lim
}

func (r *reloadable) setDelivery(a *delivery.Agent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.delivery = a
}

func (r *reloadable) addPOP3(srv *pop3d.Server, loopback bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pop3 = append(r.pop3, srv)
	r.setLoopback(srv, loopback)
}

func (r *reloadable) addSMTP(srv *smtpd.Server, loopback bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.smtp = append(r.smtp, srv)
	r.setLoopback(srv, loopback)
}

func (r *reloadable) addIMAP(srv *imapd.Server, loopback bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.imap = append(r.imap, srv)
	r.setLoopback(srv, loopback)
}

func (r *reloadable) setLoopback(srv any, loopback bool) {
	if r.loopback == nil {
		r.loopback = map[any]bool{}
	}
	r.loopback[srv] = loopback
}

// Keys of the sections a reload applies in part; the others need a
// restart.
var (
	reloadableMail = []string{"mail.max_connections", "mail.max_connections_per_ip", "mail.max_unauthenticated", "mail.login_timeout_seconds", "mail.login_failures_per_ip", "mail.login_failures_per_account", "mail.login_failures_new_addresses", "mail.login_window_seconds", "mail.expire_dry_run", "mail.pop3_idle_minutes",
		"mail.max_message_bytes", "mail.smtp_command_seconds", "mail.unknown_recipients_slow", "mail.unknown_recipients_max",
		"mail.pop3_login_delay_seconds", "mail.insecure_auth_on_loopback"}
	reloadableHTTP    = []string{"http_limits.max_connections", "http_limits.max_connections_per_ip", "http_limits.read_header_seconds", "http_limits.read_seconds", "http_limits.write_seconds", "http_limits.idle_seconds", "http_limits.max_header_bytes"}
	reloadableQueue   = []string{"queue.max_connections", "queue.max_per_domain", "queue.max_days", "queue.warn_hours", "queue.retry"}
	reloadableRouting = []string{"queue.port", "queue.connect_seconds", "queue.command_seconds", "queue.resolver",
		"queue.smarthost", "queue.smarthost_tls", "queue.smarthost_username", "queue.smarthost_password_file", "queue.smarthost_ca_file"}
)

// reloadRest applies, from a new valid config and its policies, what can
// change while connections stay open. It returns the config sections now
// fully applied and the keys of the changes that need a restart; an
// error (a certificate that does not load) applies nothing.
func (s *Server) reloadRest(cfg *Config, policies []autoconfig.Policy, keys *dkim.Keys) (applied, restart []string, err error) {
	if !s.cfg.acmeOn() && !cfg.acmeOn() && cfg.TLS.CertFile != "" && s.cert.Load() != nil {
		if err := s.loadCert(cfg); err != nil {
			return nil, nil, err
		}
		applied = append(applied, "tls")
		s.log.Info("config reloaded: certificate read again", "cert_file", cfg.TLS.CertFile)
	}
	if s.logLevel != nil {
		var level slog.Level
		if level.UnmarshalText([]byte(cfg.Log.Level)) == nil {
			s.logLevel.Set(level)
		}
		a, b := s.cfg.Log, cfg.Log
		a.Level, b.Level = "", ""
		if reflect.DeepEqual(a, b) {
			applied = append(applied, "log")
		}
	}
	// Before the domains: a reload that gives a domain expire_days
	// together with expire_dry_run must not sweep for real once.
	s.rl.dryRun.Store(cfg.Mail.ExpireDryRun)
	s.reloadDomains(cfg, policies, keys)
	applied = append(applied, "domain")
	if s.acme != nil && cfg.acmeOn() {
		a, b := s.cfg.TLS, cfg.TLS
		a.ACME.Names, b.ACME.Names = nil, nil
		if reflect.DeepEqual(a, b) {
			applied = append(applied, "tls")
		}
	}
	limApplied, limRestart := s.reloadLimits(cfg)
	applied = append(append(applied, limApplied...), "self_help")
	restart = append(restart, limRestart...)
	if sources := s.sources.Load(); sources != nil {
		if _, err := sources.apply(cfg.Observe.Sources); err != nil {
			s.log.Error("config reload: an observe source could not start (the others are applied)", "err", err)
		}
		applied = append(applied, "observe")
	}
	return applied, restart, nil
}

// reloadDomains applies the policies, whatever domains they add or
// remove: the documents, the DNS records and PACC's digest (whose
// earlier value stays published for one TTL), the DKIM keys (a new
// domain's generated by PublishedPolicies), the mail servers' domains
// and POP3 expiry, and the ACME names. Open sessions go on; a removed
// domain's mailboxes stay on disk.
func (s *Server) reloadDomains(cfg *Config, policies []autoconfig.Policy, keys *dkim.Keys) {
	old := s.live.cur.Load().list
	s.live.replace(policies)
	s.web.Refresh()
	if keys != nil && s.dkim.Load() != nil {
		s.dkim.Store(keys)
	}
	var added, removed []string
	for _, p := range policies {
		if !slices.ContainsFunc(old, func(o autoconfig.Policy) bool { return o.Domain == p.Domain }) {
			added = append(added, p.Domain)
		}
	}
	for _, o := range old {
		if !slices.ContainsFunc(policies, func(p autoconfig.Policy) bool { return o.Domain == p.Domain }) {
			removed = append(removed, o.Domain)
		}
	}
	if s.mail != nil {
		days := make(map[string]int, len(policies))
		for _, p := range policies {
			days[p.Domain] = p.POP.ExpireDays
		}
		changed := !maps.Equal(days, s.mail.ExpireDays())
		s.mail.SetDomains(days)
		s.rl.mu.Lock()
		for _, srv := range s.rl.pop3 {
			if err := srv.SetExpire(preLoginExpire(policies)); err != nil {
				s.log.Error("config reload: the POP3 EXPIRE value", "err", err)
			}
		}
		s.rl.mu.Unlock()
		if changed && s.expiry != nil {
			s.expiry.Kick()
		}
	}
	if r := s.rl.redownloaded; r != nil {
		for _, d := range added {
			r.WithLabelValues(d)
		}
		for _, d := range removed {
			r.DeleteLabelValues(d)
		}
	}
	if s.acme != nil {
		if cfg.acmeOn() {
			if err := s.acme.SetNames(cfg.ACMENames()); err != nil {
				s.log.Error("config reload: the ACME names", "err", err)
			}
		}
	}
	s.log.Info("config reloaded: domain policies applied to the documents, DNS records and mail servers", "domains", len(policies),
		"added", strings.Join(added, ","), "removed", strings.Join(removed, ","))
}

// reloadLimits applies the connection limits of the mail and web
// listeners (connections accepted from now on), the login throttle's,
// the self-help checks', the sending limit and the outbound queue's
// connections, retries and give-up times. It
// returns the sections fully applied and the keys that need a restart.
func (s *Server) reloadLimits(cfg *Config) (applied, restart []string) {
	mc := cfg.Mail
	var queue []string
	s.rl.mu.Lock()
	if agent := s.rl.delivery; agent != nil {
		q := cfg.Queue
		if retry, err := cfg.retrySchedule(); err == nil { // validated with the config
			agent.SetLimits(delivery.Limits{MaxConnections: q.MaxConnections, MaxPerDomain: q.MaxPerDomain,
				MaxAge: time.Duration(q.MaxDays) * 24 * time.Hour, WarnAfter: time.Duration(q.WarnHours) * time.Hour, Retry: retry})
			queue = reloadableQueue
		}
		// The remote servers' port, timeouts, resolver and smarthost for
		// the deliveries that start from now on.
		if o, err := cfg.deliveryOptions(); err != nil {
			s.log.Error("config reload: the queue's routing stays as it was", "err", err)
		} else if err := agent.SetRouting(delivery.Routing{Port: o.Port, ConnectTimeout: o.ConnectTimeout, CommandTimeout: o.CommandTimeout,
			Smarthost: o.Smarthost, Resolver: o.Resolver}); err != nil {
			s.log.Error("config reload: the queue's routing stays as it was", "err", err)
		} else {
			queue = append(slices.Clone(queue), reloadableRouting...)
		}
	}
	for _, l := range s.rl.mail {
		l.SetLimits(netlimit.Limits{MaxConns: mc.MaxConnections, MaxPerIP: mc.MaxConnectionsPerIP,
			MaxUnauthenticated: mc.MaxUnauthenticated, LoginTimeout: time.Duration(mc.LoginTimeoutSeconds) * time.Second})
	}
	for _, srv := range s.rl.pop3 {
		srv.SetIdleTimeout(time.Duration(mc.POP3IdleMinutes) * time.Minute)                     // open sessions too, from their next command
		srv.SetLogin(mc.POP3LoginDelaySeconds, mc.InsecureAuthOnLoopback && s.rl.loopback[srv]) // new connections
	}
	// The message size, command timeout, harvest limits and insecure
	// auth for new SMTP connections; open sessions keep theirs.
	for _, srv := range s.rl.smtp {
		srv.SetLimits(smtpd.Limits{MaxMessageBytes: mc.MaxMessageBytes, ReadTimeout: time.Duration(mc.SMTPCommandSeconds) * time.Second,
			UnknownRecipientsSlow: mc.UnknownRecipientsSlow, UnknownRecipientsMax: mc.UnknownRecipientsMax,
			AllowInsecureAuth: mc.InsecureAuthOnLoopback && s.rl.loopback[srv]})
	}
	for _, srv := range s.rl.imap {
		srv.SetLimits(imapd.Limits{AllowInsecureAuth: mc.InsecureAuthOnLoopback && s.rl.loopback[srv], MaxLiteralBytes: mc.MaxMessageBytes})
	}
	// The descriptors divided again with the new limits: a larger
	// mail.max_connections leaves fewer to the web listeners.
	webMax := divideDescriptors(s.rl.fdLimit, cfg, s.rl.webCount, s.log).web
	for _, l := range s.rl.web {
		l.SetLimits(netlimit.Limits{MaxConns: webMax, MaxPerIP: cfg.Limits.MaxConnectionsPerIP})
	}
	// New timeouts: each web listener gets a new http.Server (the old
	// one finishes the requests under way).
	timeouts := func(l HTTPLimitConfig) HTTPLimitConfig {
		l.MaxConnections, l.MaxConnectionsPerIP = 0, 0
		return l
	}
	if len(s.rl.webSrv) > 0 && timeouts(s.rl.httpLim) != timeouts(cfg.Limits) {
		for _, w := range s.rl.webSrv {
			w.swap(cfg.Limits)
		}
		s.log.Info("config reloaded: new HTTP timeouts for new connections", "read_header_seconds", cfg.Limits.ReadHeaderSeconds,
			"read_seconds", cfg.Limits.ReadSeconds, "write_seconds", cfg.Limits.WriteSeconds, "idle_seconds", cfg.Limits.IdleSeconds)
	}
	s.rl.httpLim = cfg.Limits
	s.rl.mu.Unlock()
	if s.mail != nil {
		s.mail.SetPOP3LoginDelay(mc.POP3LoginDelaySeconds)
		s.mail.RaiseMaxMessageBytes(mc.MaxMessageBytes)
		s.mail.Auth().Throttle().SetLimits(mc.LoginFailuresPerIP, mc.LoginFailuresPerAccount, mc.LoginFailuresNewAddresses,
			time.Duration(mc.LoginWindowSeconds)*time.Second)
	}
	s.web.SetSelfHelpLimits(cfg.SelfHelp.ChecksPerIPPerHour, cfg.SelfHelp.ChecksPerAddressPerHour)
	if s.mail == nil {
		queue = append(queue, "queue.send_limit_per_hour") // nothing sends
	} else if s.mail.SendLimit() != nil && cfg.Queue.SendLimitPerHour > 0 {
		s.mail.SendLimit().SetPerHour(cfg.Queue.SendLimitPerHour)
		queue = append(queue, "queue.send_limit_per_hour")
	} // else turned on or off: the submission servers hold it
	for _, sec := range []struct {
		name       string
		a, b       any
		reloadable []string
	}{
		{"mail", s.cfg.Mail, cfg.Mail, reloadableMail},
		{"http_limits", s.cfg.Limits, cfg.Limits, reloadableHTTP},
		{"queue", s.cfg.Queue, cfg.Queue, queue},
	} {
		keys := restartFields(sec.name, sec.a, sec.b, sec.reloadable)
		if len(keys) == 0 {
			applied = append(applied, sec.name)
		}
		restart = append(restart, keys...)
	}
	s.log.Info("config reloaded: connection, login and check limits applied to new connections",
		"mail_max_connections", mc.MaxConnections, "mail_max_per_ip", mc.MaxConnectionsPerIP, "web_max_connections", webMax)
	return applied, restart
}

// restartFields names the keys of section (by their toml names) that
// differ between a and b, two values of one struct type, and are not
// among reloadable.
func restartFields(section string, a, b any, reloadable []string) []string {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	var out []string
	for i := range va.NumField() {
		f := va.Type().Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name == "" || name == "-" {
			continue
		}
		key := section + "." + name
		if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) && !slices.Contains(reloadable, key) {
			out = append(out, key)
		}
	}
	return out
}
