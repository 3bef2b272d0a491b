package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"mailsetup/server/events"
	"mailsetup/server/imapd"
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
		counts.WithLabelValues(string(e.Kind), e.Proto, e.Result).Inc()
		s.log.LogAttrs(context.Background(), slog.LevelDebug, "mail event", slog.String("kind", string(e.Kind)),
			slog.String("proto", e.Proto), slog.String("remote", e.Remote.String()), slog.String("account", e.Account),
			slog.String("username_form", e.Form), slog.String("result", e.Result), slog.String("detail", e.Detail))
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
	for _, ml := range []mailListener{
		{"smtp", l.SMTP, false}, {"submission", l.Submission, false}, {"submissions", l.Submissions, true},
		{"imap", l.IMAP, false}, {"imaps", l.IMAPS, true},
		{"pop3", l.POP3, false}, {"pop3s", l.POP3S, true},
	} {
		if ml.addr == "" {
			continue
		}
		raw, err := net.Listen("tcp", ml.addr)
		if err != nil {
			return out, closers, fmt.Errorf("listen.%s = %q: %w", ml.key, ml.addr, err)
		}
		loopback := remoteIP(raw.Addr()).IsLoopback()
		insecure := mc.InsecureAuthOnLoopback && loopback
		var reject func(net.Conn, string)
		var serve func(net.Listener) error
		var shutdown func(context.Context) error
		log := s.log.With("listener", ml.key)
		switch ml.key {
		case "smtp", "submission", "submissions":
			mode := smtpd.Submission
			if ml.key == "smtp" {
				mode = smtpd.Inbound
			}
			srv := smtpd.New(smtpd.Options{Mode: mode, Hostname: s.cfg.Hostname, Auth: s.mail.auth, Directory: s.mail, Deliverer: s.mail,
				Events: s.bus, Logger: log, TLSConfig: s.tls, ImplicitTLS: ml.implicit, AllowInsecureAuth: insecure,
				MaxMessageBytes: mc.MaxMessageBytes, SpoolDir: spool})
			reject, serve, shutdown = smtpd.Reject, srv.Serve, srv.Shutdown
		case "imap", "imaps":
			srv := imapd.New(imapd.Options{Store: s.mail.store, Auth: s.mail.auth, Events: s.bus, Logger: log,
				TLSConfig: s.tls, ImplicitTLS: ml.implicit, AllowInsecureAuth: insecure, MaxLiteralBytes: mc.MaxMessageBytes})
			reject, serve, shutdown = imapd.Reject, srv.Serve, srv.Shutdown
		case "pop3", "pop3s":
			expire := "NEVER"
			srv := pop3d.NewServer(s.mail, pop3d.Options{TLSConfig: s.tls, ImplicitTLS: ml.implicit, AllowInsecureAuth: insecure,
				Expire: expire, IdleTimeout: time.Duration(mc.POP3IdleMinutes) * time.Minute,
				MaxSessions: mc.MaxConnections, MaxPerIP: mc.MaxConnectionsPerIP, Logger: log})
			serve = func(ln net.Listener) error {
				if err := srv.Serve(ln); !errors.Is(err, pop3d.ErrServerClosed) {
					return err
				}
				return nil
			}
			shutdown = srv.Shutdown
		}
		var ln net.Listener = raw
		if reject != nil { // pop3d enforces its own limits with RFC 3206 codes
			ln = netlimit.Wrap(raw, netlimit.Options{MaxConns: mc.MaxConnections, MaxPerIP: mc.MaxConnectionsPerIP, Reject: reject})
		}
		if ml.implicit {
			ln = tls.NewListener(ln, s.tls)
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
