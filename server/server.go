// Package server is the composition root of the running service: it loads
// the configuration, derives the domain policies, opens the listeners (web
// over HTTP and HTTPS, the embedded DNS responder, the admin endpoint with
// metrics) and shuts them down gracefully.
package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"mailsetup/autoconfig"
	"mailsetup/probe"
	"mailsetup/server/dnsd"
	"mailsetup/server/events"
	"mailsetup/server/netlimit"
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
	cfg      *Config
	log      *slog.Logger
	policies []autoconfig.Policy
	byDomain map[string]autoconfig.Policy
	registry *prometheus.Registry
	web      *web.App
	tls      *tls.Config
	bus      *events.Bus
	mail     *mailSystem    // nil when no mail listener is configured
	obs      *observe.Store // observations; nil without mail
	audit    *os.File       // the staff audit log; nil without staff
	expiry   *expirer       // POP3 expiry; nil without mail
}

// New prepares a server from a validated config. It loads certificates
// and builds the handlers but opens no socket.
func New(cfg *Config, opts Options) (*Server, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: log, policies: cfg.Policies(), byDomain: map[string]autoconfig.Policy{}, registry: prometheus.NewRegistry()}
	for _, p := range s.policies {
		s.byDomain[p.Domain] = p
	}
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
	if cfg.hasMailListeners() {
		var err error
		s.mail, err = newMailSystem(cfg, s.policies, s.bus, log)
		if err != nil {
			return nil, err
		}
		s.expiry = &expirer{accounts: s.mail.accounts, store: s.mail.store, days: s.mail.expireDays,
			claim: s.mail.claimMaildrop, metrics: newExpireMetrics(s.registry)}
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
		SelfHelpChecksPerIP: cfg.SelfHelp.ChecksPerIPPerHour, SelfHelpChecksPerAddress: cfg.SelfHelp.ChecksPerAddressPerHour}
	if s.mail != nil {
		webOpts.Auth = s.mail.auth
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

// Policy implements web.PolicySource.
func (s *Server) Policy(domain string) (autoconfig.Policy, bool) {
	p, ok := s.byDomain[domain]
	return p, ok
}

// Policies implements web.PolicySource.
func (s *Server) Policies() []autoconfig.Policy { return s.policies }

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
			s.sweepLoop(ctx, expireFirstDelay, expireInterval)
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
				s.mail.store.Evict(10 * time.Minute)
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
	// Name is http, https, dns or admin.
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

// Run opens every configured listener, calls ready with them, and serves
// until ctx is cancelled; then it stops accepting, lets in-flight
// requests finish for up to ShutdownGrace, and returns.
func (s *Server) Run(ctx context.Context, ready func([]Listener)) error {
	var (
		listeners []Listener
		closers   []func(context.Context) error
		serveErrs = make(chan error, 8)
		wg        sync.WaitGroup
	)
	fail := func(err error) error {
		for _, c := range closers {
			_ = c(context.Background())
		}
		return err
	}
	lim := s.cfg.Limits
	httpServer := func(h http.Handler) *http.Server {
		return &http.Server{
			Handler:           h,
			ReadHeaderTimeout: time.Duration(lim.ReadHeaderSeconds) * time.Second,
			ReadTimeout:       time.Duration(lim.ReadSeconds) * time.Second,
			WriteTimeout:      time.Duration(lim.WriteSeconds) * time.Second,
			IdleTimeout:       time.Duration(lim.IdleSeconds) * time.Second,
			MaxHeaderBytes:    lim.MaxHeaderBytes,
			ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		}
	}
	webListeners := 0
	for _, a := range []string{s.cfg.Listen.HTTP, s.cfg.Listen.HTTPS} {
		if a != "" {
			webListeners++
		}
	}
	budget := planDescriptors(s.cfg, webListeners, s.log)
	webRefused := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mailsetup_web_connections_refused_total",
		Help: "Web connections refused or closed by the connection limits (http_limits.max_connections, within the descriptor budget, and max_connections_per_ip); idle keep-alive connections are closed first.",
	}, []string{"listener", "reason"})
	s.registry.MustRegister(webRefused)
	startHTTP := func(name, addr string, h http.Handler, tlsConf *tls.Config) error {
		raw, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen.%s = %q: %w", name, addr, err)
		}
		// Bounded, so that the web can never take the descriptors the
		// mail listeners need; an idle keep-alive connection makes room
		// for a new one (ConnState below says which are idle).
		maxConns, perIP := budget.web, lim.MaxConnectionsPerIP
		if name == "admin" {
			maxConns, perIP = budget.admin, budget.admin
		}
		var reject func(net.Conn, string)
		if tlsConf == nil {
			reject = rejectHTTP
		}
		limited := netlimit.Wrap(raw, netlimit.Options{MaxConns: maxConns, MaxPerIP: perIP, Reject: reject, Logger: s.log.With("listener", name),
			OnReject: func(reason string) { webRefused.WithLabelValues(name, reason).Inc() }})
		var ln net.Listener = limited
		scheme := "http"
		if tlsConf != nil {
			ln = tls.NewListener(ln, tlsConf)
			scheme = "https"
		}
		srv := httpServer(h)
		srv.ConnState = func(c net.Conn, st http.ConnState) {
			nc := netlimit.Of(c)
			if nc == nil {
				return
			}
			switch st {
			case http.StateActive:
				nc.LoggedIn()
			case http.StateIdle:
				nc.Idle()
			}
		}
		listeners = append(listeners, Listener{Name: name, Addr: ln.Addr(), URL: scheme + "://" + ln.Addr().String()})
		closers = append(closers, srv.Shutdown)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				serveErrs <- fmt.Errorf("%s: %w", name, err)
			}
		}()
		return nil
	}
	if a := s.cfg.Listen.HTTP; a != "" {
		if err := startHTTP("http", a, s.web, nil); err != nil {
			return fail(err)
		}
	}
	if a := s.cfg.Listen.HTTPS; a != "" {
		if err := startHTTP("https", a, s.web, s.tls); err != nil {
			return fail(err)
		}
	}
	if a := s.cfg.Listen.Admin; a != "" {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}))
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
		// Profiling for operators (the admin listener belongs on loopback
		// or a management network).
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
		if err := startHTTP("admin", a, mux, nil); err != nil {
			return fail(err)
		}
	}
	if a := s.cfg.Listen.DNS; a != "" {
		pc, err := net.ListenPacket("udp", a)
		if err != nil {
			return fail(fmt.Errorf("listen.dns = %q (udp): %w", a, err))
		}
		// TCP on the same port as UDP, also when the config said port 0.
		tcpLn, err := net.Listen("tcp", pc.LocalAddr().String())
		if err != nil {
			pc.Close()
			return fail(fmt.Errorf("listen.dns = %q (tcp): %w", a, err))
		}
		d := dnsd.New(dnsd.Options{Policies: s.Policies, Logger: s.log.With("proto", "dns")})
		listeners = append(listeners, Listener{Name: "dns", Addr: pc.LocalAddr()})
		closers = append(closers, d.Shutdown)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := d.Serve(pc, tcpLn); err != nil {
				serveErrs <- fmt.Errorf("dns: %w", err)
			}
		}()
		select {
		case <-d.Started():
		case err := <-serveErrs:
			return fail(err)
		}
	}
	stopSweep := func() {}
	obsDone := make(<-chan struct{})
	stopObs := func() {}
	if s.mail != nil {
		// One process owns the mail storage.
		unlock, err := lockData(s.cfg)
		if errors.Is(err, errLocked) {
			err = fmt.Errorf("%w: is another `mailsetup serve` (or `mailsetup expire`) running on it?", err)
		}
		if err != nil {
			return fail(err)
		}
		defer unlock()
		// Nothing enqueues before the mail listeners start: what a crash
		// left in the queue (never acknowledged) can go.
		s.mail.queue.Sweep(s.log.With("component", "queue"))
		var octx context.Context
		octx, stopObs = context.WithCancel(context.Background())
		defer stopObs()
		obsDone = s.runObservations(octx)
		stopSweep = s.startMaintenance(ctx)
		defer stopSweep()
		mls, mclosers, err := s.startMail(&wg, serveErrs)
		listeners = append(listeners, mls...)
		closers = append(closers, mclosers...)
		if err != nil {
			return fail(err)
		}
	}
	if ready != nil {
		ready(listeners)
	}
	s.log.Info("serving", "listeners", len(listeners), "domains", len(s.policies))

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-serveErrs:
	}
	s.log.Info("shutting down", "grace", ShutdownGrace)
	stopSweep() // a sweep stops between two accounts
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownGrace)
	defer cancel()
	for _, c := range closers {
		if err := c(sctx); err != nil {
			s.log.Warn("shutdown", "err", err)
		}
	}
	wg.Wait()
	s.bus.Close() // delivers what is queued, to the observations too
	if s.mail != nil {
		stopObs()
		<-obsDone // the last snapshot is written
	}
	if s.audit != nil {
		if err := s.audit.Close(); err != nil {
			s.log.Warn("closing the audit log", "err", err)
		}
	}
	return runErr
}

// rejectHTTP answers a plain-HTTP connection over the limits.
func rejectHTTP(c net.Conn, reason string) {
	body := reason + ", try again later\n"
	fmt.Fprintf(c, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nRetry-After: 10\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
}
