package server

import (
	"context"
	"errors"
	"fmt"
	"strings"

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
	ctx, stop := context.WithCancel(context.Background())
	r.closers = append(r.closers, func(context.Context) error { stop(); return nil })
	for _, src := range s.cfg.Observe.Sources {
		name := src.label()
		for _, res := range logwatch.Results() {
			lines.WithLabelValues(name, string(res)) // from 0
		}
		w := logwatch.New(logwatch.Options{Name: name, Kind: logwatch.Kind(src.Kind), Sink: s.bus, Logger: s.log.With("component", "observe"),
			Parser: logwatch.ParserOptions{IsLocal: s.served},
			Count:  func(source string, res logwatch.Result) { lines.WithLabelValues(source, string(res)).Inc() }})
		if src.Syslog != "" {
			l, err := logwatch.Listen(src.Syslog)
			if err != nil {
				stop()
				unlock()
				return nil, fmt.Errorf("observe source %q: syslog = %q: %w", name, src.Syslog, err)
			}
			network, _, _ := logwatch.ParseListen(src.Syslog)
			r.listeners = append(r.listeners, Listener{Name: "syslog", Addr: l.LocalAddr(),
				URL: fmt.Sprintf("%s %s (%s lines, source %q)", network, l.LocalAddr(), src.Kind, name)})
			r.serve("observe "+name, func() error { return w.Serve(ctx, l) })
			continue
		}
		path := s.cfg.Path(src.File)
		r.serve("observe "+name, func() error { return w.File(ctx, path, logwatch.DefaultPoll) })
	}
	s.log.Info("reading mail server logs", "sources", len(s.cfg.Observe.Sources))
	return unlock, nil
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
