package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"mailsetup/autoconfig"
	"mailsetup/server/accounts"
	"mailsetup/server/auth"
	"mailsetup/server/database"
	"mailsetup/server/events"
	"mailsetup/server/imapd"
	"mailsetup/server/mailbackend"
	"mailsetup/server/netlimit"
	"mailsetup/server/pop3d"
	"mailsetup/server/smtpd"
)

func (c *Config) hasMailListeners() bool {
	l := c.Listen
	return l.SMTP != "" || l.Submission != "" || l.Submissions != "" || l.IMAP != "" || l.IMAPS != "" || l.POP3 != "" || l.POP3S != ""
}

// registerEventMetrics counts the mail servers' events and exports the
// bus's drops; it also logs each event at debug level.
func (s *Server) registerEventMetrics() {
	counts := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mailsetup_mail_events_total",
		Help: "Mail server observations by kind (auth, submission-refused, delivery, pop3-session), protocol and result.",
	}, []string{"kind", "proto", "result"})
	s.registry.MustRegister(counts, prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "mailsetup_mail_events_dropped_total",
		Help: "Observations dropped because their consumer fell behind; mail handling never waits for it.",
	}, func() float64 { return float64(s.bus.Dropped()) }))
	s.bus.Subscribe(func(e events.Event) {
		counts.WithLabelValues(string(e.Kind), string(e.Proto), string(e.Result)).Inc()
		if !s.log.Enabled(context.Background(), slog.LevelDebug) {
			return
		}
		attrs := []slog.Attr{slog.String("kind", string(e.Kind)),
			slog.String("proto", string(e.Proto)), slog.String("remote", e.Remote.String()), slog.String("account", e.Account),
			slog.String("username_form", string(e.Form)), slog.String("result", string(e.Result)), slog.String("detail", e.Detail)}
		if e.Kind == events.POP3Session {
			attrs = append(attrs, slog.Int("messages", e.Messages), slog.Int("listed", e.Listed), slog.Int("retrieved", e.Retrieved),
				slog.Int("redownloaded", e.Redownloaded), slog.Int("deleted", e.Deleted), slog.Bool("left_all", e.LeftAll))
		}
		s.log.LogAttrs(context.Background(), slog.LevelDebug, "mail event", attrs...)
	})
}

// mailListener is one configured mail port.
type mailListener struct {
	key      string // listen.* key
	addr     string
	implicit bool // implicit TLS
}

// startMail opens the mail listeners and starts their servers.
func (s *Server) startMail(wg *sync.WaitGroup, serveErrs chan<- error) ([]Listener, []func(context.Context) error, error) {
	var (
		out     []Listener
		closers []func(context.Context) error
	)
	l := s.cfg.Listen
	mc := s.cfg.Mail
	spool := s.cfg.Path(s.cfg.DataDir)
	sweepSpool(spool, s.log)
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mailsetup_mail_connections_refused_total",
		Help: "Mail connections refused or closed by the connection limits: too many (in total, from one address), pushed out by a newer one that had not logged in either, no login within mail.login_timeout_seconds.",
	}, []string{"listener", "reason"})
	harvest := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mailsetup_smtp_unknown_recipient_limit_total",
		Help: "Unknown recipients answered slowly (slowed) and connections closed for too many unknown recipients (disconnected): directory harvest on port 25.",
	}, []string{"action"})
	s.registry.MustRegister(refused, harvest)
	for _, ml := range []mailListener{
		{"smtp", l.SMTP, false}, {"submission", l.Submission, false}, {"submissions", l.Submissions, true},
		{"imap", l.IMAP, false}, {"imaps", l.IMAPS, true},
		{"pop3", l.POP3, false}, {"pop3s", l.POP3S, true},
	} {
		if ml.addr == "" {
			continue
		}
		raw, err := s.listenTCP(ml.key, ml.addr)
		if err != nil {
			return out, closers, fmt.Errorf("listen.%s = %q: %w", ml.key, ml.addr, err)
		}
		loopback := mailbackend.RemoteIP(raw.Addr()).IsLoopback()
		insecure := mc.InsecureAuthOnLoopback && loopback
		var reject func(net.Conn, string)
		var serve func(net.Listener) error
		var shutdown func(context.Context) error
		log := s.log.With("listener", ml.key)
		isSMTP := ml.key == "smtp" || ml.key == "submission" || ml.key == "submissions"
		// Connections that have not logged in get their own share of the
		// limit and a deadline; the servers say when one has.
		var limited *netlimit.Listener
		loggedIn := func(remote net.Addr) { limited.LoggedIn(remote) }
		switch ml.key {
		case "smtp", "submission", "submissions":
			mode := smtpd.Submission
			if ml.key == "smtp" {
				mode = smtpd.Inbound
			}
			var sendLimit smtpd.SendLimiter
			if lim := s.mail.SendLimit(); lim != nil {
				sendLimit = lim
			}
			srv := smtpd.New(smtpd.Options{Mode: mode, Hostname: s.cfg.Hostname, Auth: s.mail.Auth(), Directory: s.mail, Deliverer: s.mail,
				Events: s.bus, Logger: log, TLSConfig: s.tls, ImplicitTLS: ml.implicit, AllowInsecureAuth: insecure,
				MaxMessageBytes: mc.MaxMessageBytes, SpoolDir: spool, LoggedIn: loggedIn,
				UnknownRecipientsSlow: mc.UnknownRecipientsSlow, UnknownRecipientsMax: mc.UnknownRecipientsMax,
				ReadTimeout: time.Duration(mc.SMTPCommandSeconds) * time.Second,
				OnHarvest:   func(action string) { harvest.WithLabelValues(action).Inc() }, SendLimit: sendLimit})
			s.rl.addSMTP(srv, loopback)

			reject, serve, shutdown = smtpd.Reject, srv.Serve, srv.Shutdown
		case "imap", "imaps":
			srv := imapd.New(imapd.Options{Store: s.mail.Store(), Auth: s.mail.Auth(), Events: s.bus, Logger: log,
				TLSConfig: s.tls, ImplicitTLS: ml.implicit, AllowInsecureAuth: insecure, MaxLiteralBytes: mc.MaxMessageBytes,
				QuotaBytes: s.mail.Quota, LoggedIn: loggedIn})
			s.rl.addIMAP(srv, loopback)
			reject, serve, shutdown = imapd.Reject, srv.Serve, srv.Shutdown
		case "pop3", "pop3s":
			expire := preLoginExpire(s.Policies())
			srv := pop3d.NewServer(s.mail, pop3d.Options{TLSConfig: s.tls, ImplicitTLS: ml.implicit, AllowInsecureAuth: insecure,
				Expire: expire, IdleTimeout: time.Duration(mc.POP3IdleMinutes) * time.Minute,
				MaxSessions: -1, MaxPerIP: -1, Logger: log, // the netlimit below counts
				LoginDelay: mc.POP3LoginDelaySeconds, Events: s.mail.POP3Ended, LoggedIn: loggedIn})
			s.rl.addPOP3(srv, loopback)
			reject = pop3d.Reject
			serve = func(ln net.Listener) error {
				if err := srv.Serve(ln); !errors.Is(err, pop3d.ErrServerClosed) {
					return err
				}
				return nil
			}
			shutdown = srv.Shutdown
		}
		if ml.implicit {
			// The limit sits under TLS (the servers need to see the
			// *tls.Conn), so the refusal does the handshake itself.
			plain := reject
			reject = func(c net.Conn, reason string) {
				tc := tls.Server(c, s.tls)
				if tc.Handshake() == nil {
					plain(tc, reason)
				}
			}
		}
		key := ml.key
		limited = netlimit.Wrap(raw, netlimit.Options{MaxConns: mc.MaxConnections, MaxPerIP: mc.MaxConnectionsPerIP,
			MaxUnauthenticated: mc.MaxUnauthenticated, LoginTimeout: time.Duration(mc.LoginTimeoutSeconds) * time.Second,
			Logger: log, Reject: reject,
			OnReject: func(reason string) { refused.WithLabelValues(key, reason).Inc() }})
		s.rl.addMail(limited)
		var ln net.Listener = limited
		if ml.implicit && !isSMTP {
			ln = tls.NewListener(ln, s.tls) // smtpd does its own TLS, above its guard
		}
		out = append(out, Listener{Name: ml.key, Addr: raw.Addr()})
		closers = append(closers, shutdown)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := serve(ln); err != nil {
				serveErrs <- fmt.Errorf("%s: %w", ml.key, err)
			}
		}()
	}
	return out, closers, nil
}

// preLoginExpire is the CAPA EXPIRE value before login (RFC 2449 §6.7),
// when the server does not know the user yet. With every domain on the
// same pop3_policy.expire_days it is that value ("NEVER" for 0, or the
// days). Otherwise it is the smallest value of any domain with the USER
// suffix: the RFC asks for the minimum, so a client that reads only the
// pre-login CAPA never keeps mail on the server longer than its user's
// domain allows; NEVER counts as larger than any number of days. After
// login pop3Session.Expire gives the user's own value.
func preLoginExpire(policies []autoconfig.Policy) string {
	if len(policies) == 0 {
		return pop3d.ExpireNever
	}
	smallest, varies := policies[0].POP.ExpireDays, false
	for _, p := range policies[1:] {
		d := p.POP.ExpireDays
		if d != smallest {
			varies = true
		}
		// 0 (never) is the largest value.
		if smallest <= 0 || (d > 0 && d < smallest) {
			smallest = d
		}
	}
	v := mailbackend.ExpireValue(smallest)
	if varies {
		v += pop3d.ExpireUserSuffix
	}
	return v
}

// sweepSpool removes the SMTP servers' spool files (smtp-*) that a crash
// left: a message is spooled during DATA and removed once it is stored,
// so at start, before any listener opens, every such file is from a
// transaction that never got its 250.
func sweepSpool(dir string, log *slog.Logger) {
	files, _ := filepath.Glob(filepath.Join(dir, smtpd.SpoolPattern))
	for _, f := range files {
		fi, err := os.Lstat(f)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		if err := os.Remove(f); err != nil {
			log.Warn("removing a spool file left by a crash", "file", filepath.Base(f), "err", err)
			continue
		}
		log.Warn("removed a spool file left by a crash (its message was never acknowledged)", "file", filepath.Base(f), "bytes", fi.Size())
	}
}

// openMail opens the mail back end of a config.
func openMail(cfg *Config, policies []autoconfig.Policy, ev events.Sink, log *slog.Logger, shared *accounts.Store, feed *database.Feed) (*mailbackend.Backend, error) {
	days := make(map[string]int, len(policies))
	for _, p := range policies {
		days[p.Domain] = p.POP.ExpireDays
	}
	data := cfg.Path(cfg.DataDir)
	mc := cfg.Mail
	opts := mailbackend.Options{
		AccountsFile: filepath.Join(data, AccountsFile), MailRoot: mailRoot(cfg), QueueDir: QueuePath(cfg),
		Hostname: cfg.Hostname, Domains: days, MaxMessageBytes: mc.MaxMessageBytes, POP3LoginDelaySeconds: mc.POP3LoginDelaySeconds,
		Throttle: auth.ThrottleOptions{IPLimit: mc.LoginFailuresPerIP, AccountLimit: mc.LoginFailuresPerAccount,
			NewAddressLimit: mc.LoginFailuresNewAddresses, Window: time.Duration(mc.LoginWindowSeconds) * time.Second},
		SendLimitPerHour: cfg.Queue.SendLimitPerHour, Events: ev, Logger: log, Accounts: shared}
	if feed != nil {
		opts.Throttle.Share = feed.ThrottleShare()
	}
	m, err := mailbackend.Open(opts)
	if err == nil && feed != nil {
		feed.FollowThrottles(m.Auth().Throttle())
	}
	return m, err
}
