package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"mailsetup/server/delivery"
	"mailsetup/server/dnsd"
	"mailsetup/server/netlimit"
)

// Run opens every configured listener, calls ready with them, and serves
// until ctx is cancelled; then it stops accepting, lets in-flight
// requests finish for up to ShutdownGrace, and returns.
func (s *Server) Run(ctx context.Context, ready func([]Listener)) error {
	r := &running{s: s, serveErrs: make(chan error, 8), stopSweep: func() {}, stopObs: func() {}}
	if err := r.startWeb(); err != nil {
		return r.fail(err)
	}
	if err := r.startDNS(); err != nil {
		return r.fail(err)
	}
	if s.mail != nil {
		unlock, err := r.startMailSystem(ctx)
		if err != nil {
			return r.fail(err)
		}
		defer unlock()
	}
	if s.cfg.hasLogSources() || s.mail != nil { // with mail, a reload may add sources
		unlock, err := r.startLogSources()
		if err != nil {
			return r.fail(err)
		}
		defer unlock()
	}
	if err := s.sockets.CloseUnused(); err != nil {
		return r.fail(err)
	}
	r.startACME()
	sctx, stopShared := context.WithCancel(ctx)
	sharedDone := s.runShared(sctx)
	if ready != nil {
		ready(r.listeners)
	}
	s.log.Info("serving", "listeners", len(r.listeners), "domains", len(s.Policies()))
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-r.serveErrs:
	}
	r.shutdown()
	stopShared()
	<-sharedDone
	return runErr
}

// running is what Run started: the listeners, how to close them, and
// the background work of the mail system.
type running struct {
	s         *Server
	listeners []Listener
	closers   []func(context.Context) error
	serveErrs chan error
	wg        sync.WaitGroup
	stopSweep func()          // the maintenance (expiry, index eviction)
	stopObs   func()          // the observations' snapshots
	obsDone   <-chan struct{} // closed once the last snapshot is written
}

// fail closes what was opened and returns err.
func (r *running) fail(err error) error {
	for _, c := range r.closers {
		_ = c(context.Background())
	}
	r.stopSweep()
	r.stopObs()
	return err
}

// serve runs one server's loop and reports its error.
func (r *running) serve(name string, loop func() error) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		if err := loop(); err != nil {
			r.serveErrs <- fmt.Errorf("%s: %w", name, err)
		}
	}()
}

// startWeb opens HTTP, HTTPS and the admin listener, within the
// descriptor budget.
func (r *running) startWeb() error {
	s := r.s
	webListeners := 0
	for _, a := range []string{s.cfg.Listen.HTTP, s.cfg.Listen.HTTPS} {
		if a != "" {
			webListeners++
		}
	}
	budget := planDescriptors(s.cfg, webListeners, s.log)
	s.rl.setWebBudget(budget, webListeners, s.cfg.Limits)
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mailsetup_web_connections_refused_total",
		Help: "Web connections refused or closed by the connection limits (http_limits.max_connections, within the descriptor budget, and max_connections_per_ip); idle keep-alive connections are closed first.",
	}, []string{"listener", "reason"})
	s.registry.MustRegister(refused)
	perIP := s.cfg.Limits.MaxConnectionsPerIP
	if a := s.cfg.Listen.HTTP; a != "" {
		if err := r.startHTTP("http", a, s.plainHTTP(), nil, budget.web, perIP, refused); err != nil {
			return err
		}
	}
	if a := s.cfg.Listen.HTTPS; a != "" {
		if err := r.startHTTP("https", a, s.web, s.tls, budget.web, perIP, refused); err != nil {
			return err
		}
	}
	if a := s.cfg.Listen.Admin; a != "" {
		return r.startHTTP("admin", a, s.adminMux(), nil, budget.admin, budget.admin, refused)
	}
	return nil
}

// adminMux serves metrics, health and profiling (the admin listener
// belongs on loopback or a management network).
func (s *Server) adminMux() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if why := s.degraded(); why != "" {
			fmt.Fprintln(w, "degraded: "+why)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return mux
}

// httpServer is an http.Server with the limits.
func (s *Server) httpServer(h http.Handler, lim HTTPLimitConfig) *http.Server {
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

// startHTTP opens one web listener. It is bounded, so that the web can
// never take the descriptors the mail listeners need; an idle keep-alive
// connection makes room for a new one (ConnState says which are idle).
func (r *running) startHTTP(name, addr string, h http.Handler, tlsConf *tls.Config, maxConns, perIP int, refused *prometheus.CounterVec) error {
	s := r.s
	raw, err := s.listenTCP(name, addr)
	if err != nil {
		return fmt.Errorf("listen.%s = %q: %w", name, addr, err)
	}
	// Behind a load balancer the client's address comes first, so that
	// the per-address limits below count clients, not the balancer.
	if raw, err = s.cfg.proxyListener(raw); err != nil {
		return fmt.Errorf("load_balancer.proxy_protocol_from: %w", err)
	}
	var reject func(net.Conn, string)
	if tlsConf == nil {
		reject = rejectHTTP
	}
	limited := netlimit.Wrap(raw, netlimit.Options{MaxConns: maxConns, MaxPerIP: perIP, Reject: reject, Logger: s.log.With("listener", name),
		OnReject: func(reason string) { refused.WithLabelValues(name, reason).Inc() }})
	if name != "admin" {
		s.rl.addWeb(limited)
	}
	var ln net.Listener = limited
	scheme := "http"
	if tlsConf != nil {
		ln = tls.NewListener(ln, tlsConf)
		scheme = "https"
	}
	// The server is built again when a reload changes http_limits'
	// timeouts (webswap.go).
	web := &swappableHTTP{ln: ln, build: func(lim HTTPLimitConfig) *http.Server {
		srv := s.httpServer(h, lim)
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
		return srv
	}}
	s.rl.addWebServer(web)
	r.listeners = append(r.listeners, Listener{Name: name, Addr: ln.Addr(), URL: scheme + "://" + ln.Addr().String()})
	r.closers = append(r.closers, web.shutdown)
	r.serve(name, func() error { return web.serve(s.cfg.Limits) })
	return nil
}

// startDNS opens the DNS responder, UDP and TCP on the same port (also
// when the config said port 0), and waits until it serves.
func (r *running) startDNS() error {
	s := r.s
	a := s.cfg.Listen.DNS
	if a == "" {
		return nil
	}
	pc, err := s.listenUDP("dns", a)
	if err != nil {
		return fmt.Errorf("listen.dns = %q (udp): %w", a, err)
	}
	tcpLn, err := s.listenTCP("dns", pc.LocalAddr().String())
	if err != nil {
		pc.Close()
		return fmt.Errorf("listen.dns = %q (tcp): %w", a, err)
	}
	d := dnsd.New(dnsd.Options{Policies: s.Policies, Logger: s.log.With("proto", "dns")})
	r.listeners = append(r.listeners, Listener{Name: "dns", Addr: pc.LocalAddr()})
	r.closers = append(r.closers, d.Shutdown)
	r.serve("dns", func() error { return d.Serve(pc, tcpLn) })
	select {
	case <-d.Started():
		return nil
	case err := <-r.serveErrs:
		return err
	}
}

// startMailSystem takes the data directory (one process owns the mail
// storage), clears what a crash left in the queue, starts the
// observations and the maintenance, and opens the mail listeners. The
// returned function releases the data directory.
func (r *running) startMailSystem(ctx context.Context) (unlock func(), err error) {
	s := r.s
	unlock, err = s.lockDataWaiting()
	if errors.Is(err, errLocked) {
		err = fmt.Errorf("%w: is another `mailsetup serve` (or `mailsetup expire`) running on it?", err)
	}
	if err != nil {
		return nil, err
	}
	// Nothing enqueues before the mail listeners start: what a crash
	// left in the queue (never acknowledged) can go.
	s.mail.Queue().Sweep(s.log.With("component", "queue"))
	octx, stopObs := context.WithCancel(context.Background())
	r.stopObs = stopObs
	r.obsDone = s.runObservations(octx)
	r.stopSweep = s.startMaintenance(ctx)
	if err := r.startDelivery(); err != nil {
		unlock()
		return nil, err
	}
	mls, mclosers, err := s.startMail(&r.wg, r.serveErrs)
	r.listeners = append(r.listeners, mls...)
	r.closers = append(r.closers, mclosers...)
	if err != nil {
		unlock()
		return nil, err
	}
	return unlock, nil
}

// startDelivery starts the outbound delivery agent on the queue, signing
// with the local domains' DKIM keys (PublishedPolicies opened them): it
// is told of every new item, and stops (its sessions cut off, their
// recipients tried again at the next start) when the servers stop.
func (r *running) startDelivery() error {
	s := r.s
	opts, err := s.cfg.deliveryOptions()
	if err != nil {
		return err
	}
	opts.Sign = func(from string, msg []byte) ([]byte, error) { return s.dkim.Load().Sign(from, msg) } // a reload may add keys
	opts.Queue = s.mail.Queue()
	opts.Notify = s.mail.DeliverToSender
	opts.Account = s.mail.AccountOf
	opts.Events = s.bus
	opts.Logger = s.log.With("component", "delivery")
	opts.Registry = s.registry
	agent, err := delivery.New(opts)
	if err != nil {
		return err
	}
	s.mail.OnQueued(agent.Queued)
	s.rl.setDelivery(agent) // a reload changes its limits
	dctx, stop := context.WithCancel(context.Background())
	go agent.Run(dctx)
	r.closers = append(r.closers, func(ctx context.Context) error {
		stop()
		select {
		case <-agent.Done():
			return nil
		case <-ctx.Done():
			return errors.New("the delivery agent did not stop in time")
		}
	})
	return nil
}

// shutdown stops the maintenance, gives the servers ShutdownGrace to
// finish, drains the event bus into the observations, writes their last
// snapshot and closes the audit log.
func (r *running) shutdown() {
	s := r.s
	s.log.Info("shutting down", "grace", ShutdownGrace)
	r.stopSweep() // a sweep stops between two accounts
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownGrace)
	defer cancel()
	for _, c := range r.closers {
		if err := c(sctx); err != nil {
			s.log.Warn("shutdown", "err", err)
		}
	}
	r.wg.Wait()
	s.bus.Close() // delivers what is queued, to the observations too
	if r.obsDone != nil {
		r.stopObs()
		<-r.obsDone // the last snapshot is written
	}
	if s.audit != nil {
		if err := s.audit.Close(); err != nil {
			s.log.Warn("closing the audit log", "err", err)
		}
	}
}
