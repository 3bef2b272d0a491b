// Package server is the composition root of the running service: it loads
// the configuration, derives the domain policies, opens the listeners (web
// over HTTP and HTTPS, the embedded DNS responder, the admin endpoint with
// metrics) and shuts them down gracefully.
//
// Imports: every package under server/ it composes, probe (the settings
// check), autoconfig and finding; nothing imports it but cmd/mailsetup.
package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"mailsetup/autoconfig"
	"mailsetup/probe"
	"mailsetup/server/database"
	"mailsetup/server/events"
	"mailsetup/server/mailbackend"
	"mailsetup/server/observe"
	"mailsetup/server/web"
)

// Options are what the command hands the server besides the config.
type Options struct {
	// Logger is the service's logger; nil discards.
	Logger *slog.Logger
	// LogDropped reports log records lost by a slow or failing sink (exported as
	// mailsetup_log_dropped_total); nil exports nothing.
	LogDropped func() uint64
}

// Server is the running service.
type Server struct {
	cfg *Config
	log *slog.Logger
	// live holds the domain policies the web and DNS read; a reload
	// that keeps the same domains replaces them (policies.go).
	live     livePolicies
	registry *prometheus.Registry
	web      *web.App
	tls      *tls.Config
	bus      *events.Bus
	mail     *mailbackend.Backend // nil when no mail listener is configured
	obs      *observe.Store       // observations; nil without mail and log sources
	audit    *os.File             // the staff audit log; nil without staff
	expiry   *mailbackend.Expirer // POP3 expiry; nil without mail
	db       *database.DB         // database.url; nil without
	feed     *database.Feed       // the replicas' changes; nil without db
}

// New prepares a server from a validated config. It loads certificates
// and builds the handlers but opens no socket.
func New(cfg *Config, opts Options) (*Server, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: log, registry: prometheus.NewRegistry()}
	s.live.now = time.Now
	s.live.replace(cfg.Policies())
	s.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if opts.LogDropped != nil {
		s.registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "mailsetup_log_dropped_total",
			Help: "Log records lost because the log sink was too slow or its writes failed (a full disk, a FIFO nobody reads); mail and requests never wait for logging.",
		}, func() float64 { return float64(opts.LogDropped()) }))
	}
	if cfg.Listen.HTTPS != "" {
		cert, err := tls.LoadX509KeyPair(cfg.Path(cfg.TLS.CertFile), cfg.Path(cfg.TLS.KeyFile))
		if err != nil {
			return nil, fmt.Errorf("tls: loading tls.cert_file %q and tls.key_file %q: %w", cfg.TLS.CertFile, cfg.TLS.KeyFile, err)
		}
		s.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	var signer *web.ProfileSigner
	if cfg.ProfileSigning.CertFile != "" {
		var err error
		signer, err = loadSigner(cfg.Path(cfg.ProfileSigning.CertFile), cfg.Path(cfg.ProfileSigning.KeyFile))
		if err != nil {
			return nil, fmt.Errorf("profile_signing: %w", err)
		}
	}
	s.bus = events.NewBus(8192)
	s.registerEventMetrics()
	shared, err := s.openShared()
	if err != nil {
		return nil, err
	}
	if cfg.hasMailListeners() {
		s.mail, err = openMail(cfg, s.Policies(), s.bus, log, shared, s.feed)
		if err != nil {
			return nil, err
		}
		s.expiry = s.mail.Expirer(mailbackend.NewExpireMetrics(s.registry))
	}
	if s.mail != nil || cfg.hasLogSources() {
		if err := s.openObservations(); err != nil {
			return nil, err
		}
	}
	staff, err := s.staffOptions()
	if err != nil {
		return nil, err
	}
	roots, err := ProbeRoots(cfg)
	if err != nil {
		return nil, err
	}
	webOpts := web.Options{Policies: s, Logger: log.With("proto", "http"), Registerer: s.registry, Signer: signer, QuietAccess: !*cfg.Log.Access,
		Probe: probe.Options{RootCAs: roots, Resolver: cfg.probeResolver()}, Staff: staff,
		Degraded:            s.degraded,
		SelfHelpChecksPerIP: cfg.SelfHelp.ChecksPerIPPerHour, SelfHelpChecksPerAddress: cfg.SelfHelp.ChecksPerAddressPerHour}
	if s.mail != nil {
		webOpts.Auth = s.mail.Auth()
	}
	if s.feed != nil {
		webOpts.SelfHelpShare = s.feed.SelfHelpShare()
	}
	app, err := web.New(webOpts)
	if err != nil {
		return nil, err
	}
	s.web = app
	return s, nil
}

// loadSigner reads a PEM certificate (chain) and its private key.
func loadSigner(certFile, keyFile string) (*web.ProfileSigner, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("loading cert_file %q and key_file %q: %w", certFile, keyFile, err)
	}
	certs := make([]*x509.Certificate, 0, len(pair.Certificate))
	for _, der := range pair.Certificate {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("parsing %q: %w", certFile, err)
		}
		certs = append(certs, c)
	}
	return &web.ProfileSigner{Cert: certs[0], Key: pair.PrivateKey, Chain: certs[1:]}, nil
}

// Policy implements request.PolicySource (the web's).
func (s *Server) Policy(domain string) (autoconfig.Policy, bool) {
	return s.live.Policy(domain)
}

// Policies implements request.PolicySource (the web's) and is the DNS
// responder's source of records.
func (s *Server) Policies() []autoconfig.Policy { return s.live.Policies() }

// startMaintenance starts the mail store's background work: the POP3
// expiry sweep (when a domain has expire_days) and dropping the indexes
// of idle mailboxes. The returned function stops both and waits for a
// running sweep to stop between two accounts; calling it twice is fine.
func (s *Server) startMaintenance(ctx context.Context) func() {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	if s.cfg.expiryConfigured() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.expiry.Run(ctx, expireFirstDelay, expireInterval, s.cfg.Mail.ExpireDryRun, s.log)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(5 * time.Minute)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				s.mail.Store().Evict(10 * time.Minute)
			}
		}
	}()
	return func() {
		cancel()
		wg.Wait()
	}
}

// Listener is one open listening socket, for the start-up report.
type Listener struct {
	// Name is http, https, dns, admin, a mail listener's, or syslog
	// (an [[observe.source]]'s listener).
	Name string
	// Addr is the address actually bound (the port is known even when
	// the config said 0).
	Addr net.Addr
	// URL is the base URL for web listeners.
	URL string
}

// ShutdownGrace is how long in-flight requests get to finish after
// SIGTERM before connections are closed.
const ShutdownGrace = 10 * time.Second

// rejectHTTP answers a plain-HTTP connection over the limits.
func rejectHTTP(c net.Conn, reason string) {
	body := reason + ", try again later\n"
	fmt.Fprintf(c, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nRetry-After: 10\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
}
