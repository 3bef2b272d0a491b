package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"mailsetup/server/events"
	"mailsetup/server/logwatch"
)

// hasLogSources: the config reads other mail servers' logs.
func (c *Config) hasLogSources() bool { return len(c.Observe.Sources) > 0 }

// startLogSources starts each [[observe.source]]: its lines become
// events on the bus. Without the embedded mail server it also takes the
// data directory (the observations' snapshot lives there) and saves the
// observations; unlock releases it.
func (r *running) startLogSources() (unlock func(), err error) {
	s := r.s
	unlock = func() {}
	if s.mail == nil {
		unlock, err = lockData(s.cfg)
		if errors.Is(err, errLocked) {
			err = fmt.Errorf("%w: is another `mailsetup serve` running on it?", err)
		}
		if err != nil {
			return nil, err
		}
		octx, stopObs := context.WithCancel(context.Background())
		r.stopObs = stopObs
		r.obsDone = s.runObservations(octx)
	}
	lines := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mailsetup_observe_lines_total",
		Help: "Lines read from the [[observe.source]] logs, by source and result: event (became an observation), context (remembered for a later line), ignored (a line of the program that says nothing used), other (another program's line in a shared file), unknown, too-long (over 64 KiB), binary, bad-time (no timestamp or one more than a day ahead).",
	}, []string{"source", "result"})
	s.registry.MustRegister(lines)
	sources := &logSources{s: s, lines: lines, running: map[string]*logSource{}, errs: r.serveErrs}
	r.closers = append(r.closers, func(context.Context) error { sources.stopAll(); return nil })
	ls, err := sources.apply(s.cfg.Observe.Sources)
	r.listeners = append(r.listeners, ls...)
	if err != nil {
		sources.stopAll()
		unlock()
		return nil, err
	}
	s.sources.Store(sources) // a reload applies its list from now on
	if len(s.cfg.Observe.Sources) > 0 {
		s.log.Info("reading mail server logs", "sources", len(s.cfg.Observe.Sources))
	}
	return unlock, nil
}

// logSources are the running [[observe.source]]s; a config reload
// applies a new list (apply).
type logSources struct {
	s     *Server
	lines *prometheus.CounterVec
	errs  chan<- error // a source's reader failing stops the service, as at start

	mu      sync.Mutex
	running map[string]*logSource // by label
}

// logSource is one running source.
type logSource struct {
	src  ObserveSource
	stop context.CancelFunc
	done chan struct{}
}

// apply makes the running sources those of list: a source whose
// settings did not change keeps running (a file is not read again, no
// line is lost), a removed or changed one stops (its reader ends, its
// syslog socket and connections are closed) before a new or changed one
// starts. A new file is read from its end, as at start. It returns the
// syslog listeners it opened; an error (a syslog address that cannot be
// bound) names the source, and the other sources are applied.
func (ls *logSources) apply(list []ObserveSource) ([]Listener, error) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	want := map[string]ObserveSource{}
	for _, src := range list {
		want[src.label()] = src
	}
	for name, rs := range ls.running {
		if src, ok := want[name]; !ok || src != rs.src {
			rs.stop()
			<-rs.done
			delete(ls.running, name)
			for _, res := range logwatch.Results() {
				ls.lines.DeleteLabelValues(name, string(res))
			}
			ls.s.log.Info("observe source stopped", "source", name)
		}
	}
	var out []Listener
	var errs []error
	for _, src := range list {
		name := src.label()
		if _, ok := ls.running[name]; ok {
			continue
		}
		l, err := ls.start(src)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if l != nil {
			out = append(out, *l)
		}
	}
	return out, errors.Join(errs...)
}

// start starts one source (caller holds mu).
func (ls *logSources) start(src ObserveSource) (*Listener, error) {
	s := ls.s
	name := src.label()
	for _, res := range logwatch.Results() {
		ls.lines.WithLabelValues(name, string(res)) // from 0
	}
	lines := ls.lines
	w := logwatch.New(logwatch.Options{Name: name, Kind: logwatch.Kind(src.Kind), Sink: s.bus, Logger: s.log.With("component", "observe"),
		Parser: logwatch.ParserOptions{IsLocal: s.served},
		Count:  func(source string, res logwatch.Result) { lines.WithLabelValues(source, string(res)).Inc() }})
	var serve func(ctx context.Context) error
	var listener *Listener
	if src.Syslog != "" {
		l, err := logwatch.Listen(src.Syslog)
		if err != nil {
			return nil, fmt.Errorf("observe source %q: syslog = %q: %w", name, src.Syslog, err)
		}
		network, _, _ := logwatch.ParseListen(src.Syslog)
		listener = &Listener{Name: "syslog", Addr: l.LocalAddr(),
			URL: fmt.Sprintf("%s %s (%s lines, source %q)", network, l.LocalAddr(), src.Kind, name)}
		serve = func(ctx context.Context) error { return w.Serve(ctx, l) }
	} else {
		path := s.cfg.Path(src.File)
		serve = func(ctx context.Context) error { return w.File(ctx, path, logwatch.DefaultPoll) }
	}
	s.log.Info("observe source started", "source", name, "kind", src.Kind, "file", src.File, "syslog", src.Syslog)
	ctx, stop := context.WithCancel(context.Background())
	rs := &logSource{src: src, stop: stop, done: make(chan struct{})}
	ls.running[name] = rs
	go func() {
		defer close(rs.done)
		if err := serve(ctx); err != nil {
			select {
			case ls.errs <- fmt.Errorf("observe %s: %w", name, err):
			default:
				s.log.Error("observe source failed", "source", name, "err", err)
			}
		}
	}()
	return listener, nil
}

// stopAll stops every source and waits for their readers.
func (ls *logSources) stopAll() {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	for name, rs := range ls.running {
		rs.stop()
		<-rs.done
		delete(ls.running, name)
	}
}

// served reports whether domain is one of the configured domains.
func (s *Server) served(domain string) bool {
	_, ok := s.live.Policy(strings.ToLower(domain))
	return ok
}

// seenInLogs is the observations' filter without local accounts: an
// event of an address of a configured domain (any address the logs show
// is an account for the console), or a login refused for the username's
// form (kept under the local part).
func (s *Server) seenInLogs(e events.Event) bool {
	if e.Account != "" {
		return s.served(domainOf(e.Account))
	}
	return e.Kind == events.Auth && (e.Form == events.FormLocalPart || e.Form == events.FormUnknownDomain)
}
