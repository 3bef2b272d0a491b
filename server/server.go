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
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"mailsetup/autoconfig"
	"mailsetup/probe"
	"mailsetup/server/acmecert"
	"mailsetup/server/database"
	"mailsetup/server/dkim"
	"mailsetup/server/events"
	"mailsetup/server/listenfd"
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
	// LogLevel is the logger's level, set again on reload; nil: fixed.
	LogLevel *slog.LevelVar
	// Sockets are the listening sockets handed over by systemd or by the
	// previous process of an upgrade, by listen.* key; nil: none.
	Sockets *listenfd.Set
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
	mail     *mailbackend.Backend            // nil when no mail listener is configured
	obs      *observe.Store                  // observations; nil without mail and log sources
	obsMark  uint64                          // the observations as loaded (keepObservations)
	audit    *os.File                        // the staff audit log; nil without staff
	expiry   *mailbackend.Expirer            // POP3 expiry; nil without mail
	acme     *acmecert.Manager               // the certificates' source with tls.acme; nil without
	sockets  *listenfd.Set                   // sockets handed over; nil: none
	open     openSockets                     // the listening sockets, for Upgrade
	logLevel *slog.LevelVar                  // nil: the level is fixed
	cert     atomic.Pointer[tls.Certificate] // tls.cert_file's, replaced on reload
	// stopAccepting is closed by Upgrade: the listeners accept no more.
	stopAccepting chan struct{}
	stopOnce      sync.Once
	dkim          atomic.Pointer[dkim.Keys]  // the local domains' DKIM keys; nil without mail
	db            *database.DB               // database.url; nil without
	feed          *database.Feed             // the replicas' changes; nil without db
	rl            reloadable                 // what a reload changes in the listeners (reload.go)
	sources       atomic.Pointer[logSources] // the [[observe.source]]s; nil without
}

// New prepares a server from a validated config. It loads certificates
// and builds the handlers but opens no socket.
func New(cfg *Config, opts Options) (*Server, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	policies, keys, err := PublishedPolicies(cfg)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, sockets: opts.Sockets, logLevel: opts.LogLevel, stopAccepting: make(chan struct{}), registry: prometheus.NewRegistry()}
	s.live.now = time.Now
	s.dkim.Store(keys)
	s.live.replace(policies)
	s.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if opts.LogDropped != nil {
		s.registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "mailsetup_log_dropped_total",
			Help: "Log records lost because the log sink was too slow or its writes failed (a full disk, a FIFO nobody reads); mail and requests never wait for logging.",
		}, func() float64 { return float64(opts.LogDropped()) }))
	}
	if cfg.acmeOn() {
		o, err := cfg.acmeOptions()
		if err != nil {
			return nil, err
		}
		o.Logger, o.Registerer = log.With("component", "acme"), s.registry
		if s.acme, err = acmecert.New(o); err != nil {
			return nil, err
		}
		s.tls = s.acme.TLSConfig()
	} else if cfg.Listen.HTTPS != "" || cfg.hasMailListeners() {
		if err := s.loadCert(cfg); err != nil {
			return nil, err
		}
		s.tls = &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return s.cert.Load(), nil }, MinVersion: tls.VersionTLS12}
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
		SelfHelpChecksPerIP: cfg.SelfHelp.ChecksPerIPPerHour, SelfHelpChecksPerAddress: cfg.SelfHelp.ChecksPerAddressPerHour,
		Branding: cfg.branding(), LangDir: filepath.Join(cfg.Path(cfg.DataDir), "lang")}
	if s.mail != nil {
		webOpts.Auth = s.mail.Auth()
	}
	if s.feed != nil {
		webOpts.SelfHelpShare = s.feed.SelfHelpShare()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		key, err := s.db.Secret(ctx, "web-forms")
		cancel()
		if err != nil {
			return nil, fmt.Errorf("database: the web forms' key: %w", err)
		}
		webOpts.FormKey = key
	}
	app, err := web.New(webOpts)
	if err != nil {
		return nil, err
	}
	s.web = app
	return s, nil
}

// loadCert reads tls.cert_file and tls.key_file; on reload a new pair
// replaces the served one only when both load.
func (s *Server) loadCert(cfg *Config) error {
	cert, err := tls.LoadX509KeyPair(cfg.Path(cfg.TLS.CertFile), cfg.Path(cfg.TLS.KeyFile))
	if err != nil {
		return fmt.Errorf("tls: loading tls.cert_file %q and tls.key_file %q: %w", cfg.TLS.CertFile, cfg.TLS.KeyFile, err)
	}
	s.cert.Store(&cert)
	return nil
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
	// It runs even when no domain has expire_days yet: a reload may
	// give one some.
	s.rl.dryRun.Store(s.cfg.Mail.ExpireDryRun)
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.expiry.Run(ctx, expireFirstDelay, expireInterval, s.rl.dryRun.Load, s.log)
	}()
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
