package probe

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"mailsetup/autoconfig"
	"mailsetup/finding"
	"mailsetup/internal/bound"
)

// Defaults for Options.
const (
	DefaultStepTimeout = 10 * time.Second
	DefaultTimeout     = 30 * time.Second
	// ExpiryWarning is how close to its expiry a certificate gets a
	// tls.expires-soon warning.
	ExpiryWarning = 14 * 24 * time.Hour
)

// ErrUnknownDomain: the address's domain has no policy and
// Options.Discover is off.
var ErrUnknownDomain = errors.New("domain not configured")

// runner is one probe run in progress.
type runner struct {
	opts Options
	// stop is the caller's context: when it ends, the probe was stopped
	// (rather than out of time).
	stop     context.Context
	pol      autoconfig.Policy
	address  string
	local    string
	password string
	client   *ClientSettings
	// discovered: pol came from Options.Discover; popUnknown: the source
	// says nothing about POP3 retention.
	discovered, popUnknown bool

	mu    sync.Mutex
	steps []Step
	// bareOnly: the server refused the full address and accepted the
	// bare local part with the same password (server.username-form);
	// the later logins use the bare form.
	bareOnly bool
	// live is the connection security the reported ports really speak
	// (checkReportedMode), by side: "incoming", "outgoing".
	live     map[string]autoconfig.Security
	findings []finding.Finding
}

// stepState collects what one step saw.
type stepState struct {
	evidence []string
	findings []finding.Finding
	err      string
	cut      bool // see runner.cut
}

func (s *stepState) note(format string, args ...any) {
	s.evidence = append(s.evidence, fmt.Sprintf(format, args...))
}

func (s *stepState) find(f finding.Finding) { s.findings = append(s.findings, f) }

func (s *stepState) fail(err error) { s.err = err.Error() }

// Run probes the settings of req.Address against its domain's policy: the
// reported client settings (if any), then the live servers, DNS and the
// autoconfig document. The error is only for a probe that could not run
// (bad address, domain without a policy, ctx cancelled); everything the
// probe found is in the report.
func Run(ctx context.Context, req Request, opts Options) (*Report, error) {
	addr, err := autoconfig.ParseAddress(req.Address)
	if err != nil {
		return nil, fmt.Errorf("probe: address: %w", err)
	}
	var pol autoconfig.Policy
	ok := false
	if opts.Policy != nil {
		pol, ok = opts.Policy(addr.Domain)
	}
	switch {
	case !ok && opts.Discover:
	case opts.Policy == nil:
		return nil, fmt.Errorf("probe: %s: %w (no policies given)", addr.Domain, ErrUnknownDomain)
	case !ok:
		return nil, fmt.Errorf("probe: %s: %w", addr.Domain, ErrUnknownDomain)
	}
	if opts.StepTimeout <= 0 {
		opts.StepTimeout = DefaultStepTimeout
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	// Stopped before it began: no report (stopped while running: the
	// partial report, Report.Interrupted).
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("probe: %w", err)
	}
	started := opts.Now()
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()

	r := &runner{opts: opts, stop: parent, pol: pol, address: addr.String(), local: addr.Local, password: req.Password, client: req.Client,
		live: map[string]autoconfig.Security{}}
	source := "policy"
	if !ok {
		pol, source, err = r.discover(ctx, addr)
		if err != nil {
			if perr := parent.Err(); perr != nil {
				return nil, fmt.Errorf("probe: %w", perr)
			}
			return nil, err
		}
		r.pol, r.discovered = pol, true
	}
	rep := &Report{Address: addr.String(), Domain: addr.Domain, Source: source, Started: started, Client: req.Client}
	rep.Expected = expectedOf(pol, addr.String())
	if r.discovered && pol.Username == autoconfig.LocalPart {
		rep.Expected.Username = addr.Local
	}
	if r.popUnknown && len(pol.POP3) > 0 {
		rep.Expected.POP3RetentionUnknown = true
	}

	var wg, modes sync.WaitGroup
	for _, e := range slices.Concat(pol.IMAP, pol.POP3, pol.Submission) {
		if !r.allowed(e.Host) {
			continue
		}
		wg.Go(func() {
			r.record(ctx, endpointStep(KindConnect, e), func(ctx context.Context, s *stepState) { r.connect(ctx, e, s) }, nil)
		})
	}
	// Ports whose reported connection security is in doubt: find out live
	// which mode the server speaks there.
	if c := req.Client; c != nil {
		inProto := autoconfig.Protocol(strings.ToLower(c.Incoming.Protocol))
		if inProto == "" {
			inProto = pol.Prefer
		}
		for _, p := range []struct {
			proto    autoconfig.Protocol
			host     string
			port     int
			security string
			side     string
		}{
			{inProto, c.Incoming.Host, c.Incoming.Port, NormalizeSecurity(c.Incoming.Security), "incoming"},
			{autoconfig.SMTP, c.Outgoing.Host, c.Outgoing.Port, NormalizeSecurity(c.Outgoing.Security), "outgoing"},
		} {
			if !r.modeInDoubt(p.proto, p.host, p.port, p.security) {
				continue
			}
			st := Step{Name: fmt.Sprintf("connection security of %s port %s:%d", p.side, p.host, p.port), Kind: KindSecurityMode,
				Endpoint: &Endpoint{Protocol: p.proto, Host: p.host, Port: p.port, Security: autoconfig.Security(p.security)}}
			modes.Go(func() {
				r.record(ctx, st, func(ctx context.Context, s *stepState) {
					if live := r.checkReportedMode(ctx, s, p.proto, p.host, p.port, p.security); live != "" {
						r.mu.Lock()
						r.live[p.side] = live
						r.mu.Unlock()
					}
				}, nil)
			})
		}
	}
	// The reported settings are compared once the live modes are known:
	// port.security-mismatch says what the port really speaks.
	if req.Client != nil {
		wg.Go(func() {
			modes.Wait()
			r.record(ctx, Step{Name: "compare reported settings", Kind: KindCompare}, nil, func(s *stepState) {
				s.findings = r.compare(*req.Client)
				s.note("compared the reported settings with the %s settings of %s", source, addr.Domain)
			})
		})
	}
	// The DNS records and the published document are checked against a
	// configured policy only: discovered settings came from them.
	if opts.Resolver != "" && !r.discovered {
		wg.Go(func() { r.record(ctx, Step{Name: "dns records", Kind: KindDNS}, r.checkDNS, nil) })
	}
	if pol.Web.BaseURL != "" && r.allowed(pol.Web.Host()) {
		wg.Go(func() { r.record(ctx, Step{Name: "autoconfig document", Kind: KindAutoconfig}, r.checkAutoconfig, nil) })
		if !r.discovered {
			wg.Go(func() {
				r.record(ctx, Step{Name: "autodiscover document", Kind: KindAutodiscover}, r.checkAutodiscover, nil)
			})
		}
	}
	if req.Password != "" {
		wg.Go(func() { r.logins(ctx) })
	}
	wg.Wait()
	modes.Wait()
	// Stopped: the report holds the steps done and the cut ones.
	rep.Interrupted = parent.Err() != nil

	rep.Steps = r.sortedSteps()
	rep.Findings = finding.Merge(r.usernameForm(r.findings))
	finding.Sort(rep.Findings)
	if rep.Findings == nil {
		rep.Findings = []finding.Finding{}
	}
	for _, f := range rep.Findings {
		rep.Worst = max(rep.Worst, f.Severity)
	}
	for _, s := range rep.Steps {
		rep.Worst = max(rep.Worst, s.Severity)
	}
	rep.Duration = opts.Now().Sub(started)
	return rep, nil
}

// loginName is the username the logins use: the full address, or the
// bare local part when discovered settings name that form.
func (r *runner) loginName() string {
	r.mu.Lock()
	bare := r.bareOnly
	r.mu.Unlock()
	if bare || r.discovered && r.pol.Username == autoconfig.LocalPart {
		return r.local
	}
	return r.address
}

// sortedSteps returns the steps in report order (stepOrder). The caller
// holds r.mu or runs no step concurrently.
func (r *runner) sortedSteps() []Step {
	out := slices.Clone(r.steps)
	slices.SortStableFunc(out, r.compareSteps)
	return out
}

// compareSteps orders two steps by their kind in stepOrder, then within
// the kind by their endpoint: connections in the policy's order, the
// incoming port's security before the outgoing (SMTP) one's, logins in
// loginOrder. Other steps keep the order they were recorded in: the
// discovery attempts run one after another.
func (r *runner) compareSteps(a, b Step) int {
	if c := cmp.Compare(slices.Index(stepOrder, a.Kind), slices.Index(stepOrder, b.Kind)); c != 0 || a.Endpoint == nil || b.Endpoint == nil {
		return c
	}
	var rank func(Endpoint) int
	switch a.Kind {
	case KindConnect:
		all := slices.Concat(r.pol.IMAP, r.pol.POP3, r.pol.Submission)
		rank = func(e Endpoint) int {
			return slices.IndexFunc(all, func(p autoconfig.Endpoint) bool { return fromPolicy(p) == e })
		}
	case KindSecurityMode:
		rank = func(e Endpoint) int {
			if e.Protocol == autoconfig.SMTP {
				return 1
			}
			return 0
		}
	case KindLogin:
		order := r.loginOrder()
		rank = func(e Endpoint) int { return slices.Index(order, e.Protocol) }
	default:
		return 0
	}
	return cmp.Compare(rank(*a.Endpoint), rank(*b.Endpoint))
}

// compare is Compare against r.pol; for discovered settings it leaves
// out what the source does not say (POP3 retention for Autodiscover and
// SRV) and accepts the username form the document names.
func (r *runner) compare(c ClientSettings) []finding.Finding {
	r.mu.Lock()
	live := liveModes{in: r.live["incoming"], out: r.live["outgoing"]}
	r.mu.Unlock()
	fs := compareLive(r.pol, r.address, c, live)
	if !r.discovered {
		return fs
	}
	fs = slices.DeleteFunc(fs, func(f finding.Finding) bool {
		switch f.ID {
		case "pop3.leave-forever", "pop3.delete-after-too-long", "pop3.leave-against-policy":
			return r.popUnknown
		case "username.not-full-address":
			return r.pol.Username == autoconfig.LocalPart
		}
		return false
	})
	if len(fs) == 0 {
		fs = append(fs, finding.New("settings.ok", nil, "every reported setting matches the discovered settings"))
	}
	return fs
}

// record runs step st (its name, kind and endpoint) with its own timeout
// and stores its result. fn does the work; direct, when set, runs instead
// without a context. The report orders the steps by their fields
// (sortedSteps), not by when they finished.
func (r *runner) record(ctx context.Context, st Step, fn func(context.Context, *stepState), direct func(*stepState)) {
	start := time.Now()
	var s stepState
	if direct != nil {
		direct(&s)
	} else {
		sctx, cancel := context.WithTimeout(ctx, r.opts.StepTimeout)
		fn(sctx, &s)
		// A connection's deadline is the context's: the read that timed
		// out may return a moment before the context says so.
		if dl, _ := sctx.Deadline(); sctx.Err() != nil || !time.Now().Before(dl) {
			r.cut(&s, ctx)
		}
		cancel()
	}
	st.Duration, st.Evidence, st.Error, st.NotFinished = time.Since(start), s.evidence, s.err, s.cut
	for _, f := range s.findings {
		st.Severity = max(st.Severity, f.Severity)
	}
	r.mu.Lock()
	r.steps = append(r.steps, st)
	r.findings = append(r.findings, s.findings...)
	r.mu.Unlock()
	if r.opts.OnStep != nil {
		r.opts.OnStep(st)
	}
}

// cut marks a step whose context ended before it did: by the step's
// own time limit, the probe's, or the probe being stopped. What a
// stopped step found is dropped (its failures are the stop's doing);
// what a step out of time found stays (a server that does not answer in
// time is a finding).
func (r *runner) cut(s *stepState, probeCtx context.Context) {
	s.cut = true
	why := fmt.Sprintf("its time limit (%s) ran out", r.opts.StepTimeout)
	switch {
	case r.stop.Err() != nil:
		why = "the probe was stopped"
		s.findings = nil
	case probeCtx.Err() != nil || pastDeadline(probeCtx):
		why = fmt.Sprintf("the probe's time limit (%s) ran out", r.opts.Timeout)
	}
	if s.err != "" {
		s.err = "not finished: " + why + " (" + s.err + ")"
	} else {
		s.err = "not finished: " + why
	}
}

func pastDeadline(ctx context.Context) bool {
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}

// allowed: only hosts the policy names, narrowed by Options.AllowedHost.
func (r *runner) allowed(host string) bool {
	named := host == r.pol.Web.Host() || slices.ContainsFunc(slices.Concat(r.pol.IMAP, r.pol.POP3, r.pol.Submission), func(e autoconfig.Endpoint) bool { return e.Host == host })
	if !named {
		return false
	}
	return r.opts.AllowedHost == nil || r.opts.AllowedHost(host)
}

func expectedOf(p autoconfig.Policy, address string) Expected {
	conv := func(list []autoconfig.Endpoint) []Endpoint {
		var out []Endpoint
		for _, e := range list {
			out = append(out, fromPolicy(e))
		}
		return out
	}
	return Expected{IMAP: conv(p.IMAP), POP3: conv(p.POP3), Submission: conv(p.Submission), Prefer: string(p.Prefer),
		Username: p.UsernameFor(address), POP3LeaveOnServer: p.POP.LeaveOnServer, POP3DeleteAfterDays: p.POP.DeleteAfterDays}
}

// dial opens a TCP connection bounded by ctx, with the connection's
// deadline set to ctx's. Options.Resolve may map the host to another
// address (a testing hook).
func (r *runner) dial(ctx context.Context, e autoconfig.Endpoint) (net.Conn, error) {
	c, err := r.dialAddr(ctx, net.JoinHostPort(e.Host, strconv.Itoa(e.Port)))
	if err != nil {
		return nil, err
	}
	return bound.Conn(ctx, c), nil
}

// dialAddr dials host:port over TCP, through Options.Resolve when set.
func (r *runner) dialAddr(ctx context.Context, hostport string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", hostport, err)
	}
	if r.opts.Resolve != nil {
		if to, ok := r.opts.Resolve(host); ok {
			host = to
		}
	}
	d := r.opts.Dialer
	if d == nil {
		d = &net.Dialer{}
	}
	return d.DialContext(ctx, "tcp", net.JoinHostPort(host, port))
}

// unreachable records server.unreachable for a failed connect.
func unreachable(s *stepState, e autoconfig.Endpoint, err error) {
	s.fail(fmt.Errorf("connect %s:%d: %w", e.Host, e.Port, err))
	s.find(finding.New("server.unreachable", finding.Vars{"value": fmt.Sprintf("%s:%d", e.Host, e.Port)}, s.err))
}

// ExitCode maps a report to the monitoring-plugin convention: 0 OK (ok
// and info), 1 WARNING, 2 CRITICAL. 3 UNKNOWN is for a Run error (and a
// nil report).
func ExitCode(r *Report) int {
	if r == nil || r.Interrupted {
		return 3
	}
	switch r.Worst {
	case finding.OK, finding.Info:
		return 0
	case finding.Warning:
		return 1
	}
	return 2
}

// clientEndpoint returns the policy endpoint of proto the client reports
// (same host and port), else the policy's first one.
func (r *runner) clientEndpoint(proto autoconfig.Protocol) (autoconfig.Endpoint, bool) {
	list := slices.DeleteFunc(slices.Clone(r.pol.Endpoints(proto)), func(e autoconfig.Endpoint) bool { return !r.allowed(e.Host) })
	if len(list) == 0 {
		return autoconfig.Endpoint{}, false
	}
	if c := r.client; c != nil {
		host, port := c.Incoming.Host, c.Incoming.Port
		if proto == autoconfig.SMTP {
			host, port = c.Outgoing.Host, c.Outgoing.Port
		}
		for _, e := range list {
			if e.Port == port && (host == "" || strings.EqualFold(host, e.Host)) {
				return e, true
			}
		}
	}
	return list[0], true
}

// loginOutcome is what a login step learned about the credentials.
type loginOutcome int

const (
	loginOK loginOutcome = iota
	loginRefused
	loginOther
)

// loginOrder is the order in which logins tries the protocols: the one
// the client uses for incoming mail (or the preferred one) first, then
// IMAP, POP3, SMTP.
func (r *runner) loginOrder() []autoconfig.Protocol {
	first := r.pol.Prefer
	if r.client != nil {
		switch p := autoconfig.Protocol(strings.ToLower(r.client.Incoming.Protocol)); p {
		case autoconfig.IMAP, autoconfig.POP3:
			if len(r.pol.Endpoints(p)) > 0 {
				first = p
			}
		}
	}
	order := []autoconfig.Protocol{first}
	for _, p := range []autoconfig.Protocol{autoconfig.IMAP, autoconfig.POP3, autoconfig.SMTP} {
		if p != first {
			order = append(order, p)
		}
	}
	return order
}

// logins checks the password: first on the protocol the client uses for
// incoming mail (or the preferred one), and only if that worked or failed
// for another reason than the credentials, on the other services. One
// refused password is not tried again elsewhere, so the probe never adds
// to a lockout.
func (r *runner) logins(ctx context.Context) {
	order := r.loginOrder()
	run := func(p autoconfig.Protocol) loginOutcome {
		e, ok := r.clientEndpoint(p)
		if !ok {
			return loginOther
		}
		out := loginOther
		r.record(ctx, endpointStep(KindLogin, e), func(ctx context.Context, s *stepState) {
			r.withModeCheck(ctx, e, s, func(ctx context.Context, s *stepState) {
				switch p {
				case autoconfig.IMAP:
					out = r.loginIMAP(ctx, e, s)
				case autoconfig.POP3:
					out = r.loginPOP3(ctx, e, s)
				default:
					out = r.loginSMTP(ctx, e, s)
				}
			})
		}, nil)
		return out
	}
	if run(order[0]) == loginRefused {
		for _, p := range order[1:] {
			if e, ok := r.clientEndpoint(p); ok {
				r.record(ctx, endpointStep(KindLogin, e), nil, func(s *stepState) {
					s.note("skipped: the password was refused on %s; not tried again, so the probe does not add to a lockout", order[0])
				})
			}
		}
		return
	}
	var wg sync.WaitGroup
	for _, p := range order[1:] {
		wg.Go(func() { run(p) })
	}
	wg.Wait()
}
