// Package check is the one settings-check service of the web: the
// self-help page, the staff console and the support API all run their
// checks through Service.Run. It owns the machine-wide bound on checks
// running at once, the password check through the mail server's
// authenticator (counted in the shared login throttle) before any
// probe login, the probe limited to the hosts the configured policies
// name, and the checks' metric; and the parsing of the client settings
// a form or the API reports (form.go).
//
// It may import autoconfig, finding, probe (and probe/clients), server/auth, templates (the
// form's view types) and server/web/request; never server/web, its
// other parts, or a protocol server.
package check

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"mailsetup/autoconfig"
	"mailsetup/finding"
	"mailsetup/probe"
	"mailsetup/probe/clients"
	"mailsetup/server/auth"
	"mailsetup/server/events"
	"mailsetup/server/web/request"
)

// Authenticator is the mail server's login check (server/auth).
type Authenticator interface {
	Authenticate(ctx context.Context, at auth.Attempt) (string, error)
	Throttle() *auth.Throttle
}

// Options configure the service.
type Options struct {
	// Policies is required: a check runs for a configured domain only,
	// against the hosts the policies name.
	Policies request.PolicySource
	// Auth checks a customer's password with the mail server's shared
	// login throttle; nil disables checks that take a password.
	Auth Authenticator
	// Probe is the base of every probe: Policy is set from Policies;
	// RootCAs and Resolver come from the server. Discovery is never
	// enabled from the web.
	Probe probe.Options
	// Logger gets the password checks that failed for an internal
	// reason.
	Logger *slog.Logger
}

// Service runs the settings checks.
type Service struct {
	log   *slog.Logger
	auth  Authenticator
	probe probe.Options
	// slots bounds the checks running at once.
	slots chan struct{}
	// policyHosts are the hosts the configured policies name (the only
	// ones a check contacts).
	policyHosts map[string]bool
	// checksRun counts the checks by source and outcome.
	checksRun *prometheus.CounterVec
}

// New builds the service.
func New(opts Options) *Service {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{log: log, auth: opts.Auth, probe: opts.Probe,
		slots: make(chan struct{}, maxConcurrentChecks), policyHosts: hostSet(opts.Policies.Policies())}
	s.probe.Discover = false
	s.probe.Policy = opts.Policies.Policy
	s.checksRun = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mailsetup_settings_checks_total",
		Help: "Settings checks (probes) run from the web, by source (self-help, staff, api) and worst finding (ok, info, warning, critical, error).",
	}, []string{"source", "worst"})
	return s
}

// Collector is the checks' metric, for the web app to register.
func (a *Service) Collector() prometheus.Collector { return a.checksRun }

// Auth is the authenticator passwords are checked with; nil when the
// server has no mail accounts.
func (a *Service) Auth() Authenticator { return a.auth }

// hostSet is every host the policies name (mail endpoints and the web
// host), lower case: the only hosts a check from the web may contact.
func hostSet(ps []autoconfig.Policy) map[string]bool {
	set := map[string]bool{}
	for _, p := range ps {
		for _, list := range [][]autoconfig.Endpoint{p.IMAP, p.POP3, p.Submission} {
			for _, ep := range list {
				set[strings.ToLower(ep.Host)] = true
			}
		}
		if h := p.Web.Host(); h != "" {
			set[strings.ToLower(h)] = true
		}
	}
	return set
}

// Request is one settings check from the self-help page, the staff
// console or the API.
type Request struct {
	Address  string
	Password string
	Client   *probe.ClientSettings
	// Remote is who asks: the customer, or the staff member.
	Remote netip.Addr
	TLS    bool
	// Source is self-help, staff or api (for the metrics).
	Source string
	// OnStart, when set, is called once the password was dealt with and
	// the probe starts, with what Result knows by then (Throttled,
	// Insecure, NoAuth, AuthFailed, PasswordChecked).
	OnStart func(Result)
	// OnStep, when set, hears of each probe step as it finishes
	// (probe.Options.OnStep: concurrently, must not block): the page
	// shows the check's progress with it.
	OnStep func(probe.Step)
}

// ErrBusy: every check slot stayed taken while the request waited.
var ErrBusy = echo.NewHTTPError(http.StatusServiceUnavailable,
	"too many settings checks are running right now: try again in a minute")

const (
	// maxConcurrentChecks bounds the checks running at once.
	maxConcurrentChecks = 8
	// checkQueueWait is how long a check waits for a slot.
	checkQueueWait = 3 * time.Second
	// checkTimeout bounds one check: the page must answer within the
	// HTTP write timeout (10 s by default).
	checkTimeout     = 8 * time.Second
	checkStepTimeout = 5 * time.Second
)

// Result is a check's report and what became of the password.
type Result struct {
	Report *probe.Report
	// PasswordChecked: the password was right and the probe logged in
	// with it.
	PasswordChecked bool
	// Throttled > 0: the shared login throttle blocks the address or
	// the account; the password was not tried (login.throttled).
	Throttled time.Duration
	// NoAuth: a password was given, but this server has no mail
	// accounts to check it against; it was not used.
	NoAuth bool
	// AuthFailed: checking the password failed for an internal reason
	// (logged); it was not used.
	AuthFailed bool
	// Insecure: a password came over plain HTTP from another machine;
	// it was not used.
	Insecure bool
}

// Run runs the probe for a configured domain only, against its
// own servers only (the policies' hosts; never a host the form names,
// never discovery). A password is first checked with the mail server's
// authenticator on behalf of the person asking: their address takes the
// shared throttle's count, and the probe's own logins, which come from
// this machine, never fail and never lock anybody out. A wrong password
// becomes login.failed without any login by the probe. The password is
// never logged, stored or put into the report.
func (a *Service) Run(ctx context.Context, req Request) (Result, error) {
	var res Result
	// Checks are bounded machine-wide: each one may hash a password
	// (argon2id, 19 MiB) and opens about ten connections.
	select {
	case a.slots <- struct{}{}:
		defer func() { <-a.slots }()
	case <-time.After(checkQueueWait):
		return res, ErrBusy
	case <-ctx.Done():
		return res, ctx.Err()
	}
	var extra []finding.Finding
	password := ""
	switch {
	case req.Password == "":
	case !req.TLS && !req.Remote.IsLoopback():
		res.Insecure = true
	case a.auth == nil:
		res.NoAuth = true
	default:
		_, err := a.auth.Authenticate(ctx, auth.Attempt{Proto: events.ProtoWeb, Remote: req.Remote, TLS: req.TLS, Username: req.Address, Password: req.Password})
		var throttled *auth.ThrottledError
		switch {
		case err == nil:
			password, res.PasswordChecked = req.Password, true
		case errors.As(err, &throttled):
			res.Throttled = throttled.RetryAfter
			extra = append(extra, finding.New("login.throttled", map[string]string{"value": throttled.Error()},
				"the password was not tried: "+throttled.Error()))
		case errors.Is(err, auth.ErrBadCredentials):
			extra = append(extra, finding.New("login.failed", map[string]string{"address": req.Address, "value": "the password was refused"},
				fmt.Sprintf("the password given for %s was checked by the mail server and refused", req.Address)))
		default:
			res.AuthFailed = true
			a.log.Error("settings check: password check failed", "address", req.Address, "err", err)
		}
	}
	opts := a.probe
	opts.Discover = false
	prev := opts.AllowedHost
	opts.AllowedHost = func(host string) bool {
		return a.policyHosts[strings.ToLower(host)] && (prev == nil || prev(host))
	}
	// The answer must be written within the HTTP write timeout.
	if opts.Timeout <= 0 || opts.Timeout > checkTimeout {
		opts.Timeout = checkTimeout
	}
	if opts.StepTimeout <= 0 || opts.StepTimeout > checkStepTimeout {
		opts.StepTimeout = checkStepTimeout
	}
	opts.OnStep = req.OnStep
	if req.OnStart != nil {
		req.OnStart(res)
	}
	rep, err := probe.Run(ctx, probe.Request{Address: req.Address, Password: password, Client: req.Client}, opts)
	if err != nil {
		a.checksRun.WithLabelValues(req.Source, "error").Inc()
		return res, err
	}
	defer func() { a.checksRun.WithLabelValues(req.Source, rep.Worst.String()).Inc() }()
	if len(extra) > 0 {
		// settings.ok no longer holds with a refused or untried password.
		rep.Findings = slices.DeleteFunc(append(extra, rep.Findings...), func(f finding.Finding) bool { return f.ID == "settings.ok" })
		slices.SortStableFunc(rep.Findings, func(x, y finding.Finding) int { return cmp.Compare(y.Severity, x.Severity) })
		for _, f := range rep.Findings {
			rep.Worst = max(rep.Worst, f.Severity)
		}
	}
	res.Report = rep
	return res, nil
}

// clientsLookupTimeout bounds each lookup of a client simulation, so
// that the whole one fits checkTimeout even with a few hosts silent.
const clientsLookupTimeout = 2 * time.Second

// Clients shows what each mail program would set up for address
// (probe/clients.Simulate) for the page's section "What each mail
// program would set up": bounded like a check (a slot, checkTimeout),
// its lookups through the server's resolver, only to the domain's own
// names and the hosts its policy or DNS name.
func (a *Service) Clients(ctx context.Context, address string, p autoconfig.Policy) (*clients.ClientsReport, error) {
	if a.probe.Resolver == "" {
		return nil, errors.New("no DNS resolver is configured (listen.dns)")
	}
	select {
	case a.slots <- struct{}{}:
		defer func() { <-a.slots }()
	case <-time.After(checkQueueWait):
		return nil, ErrBusy
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	return clients.Simulate(ctx, address, p, clients.Options{Resolver: a.probe.Resolver, RootCAs: a.probe.RootCAs,
		Timeout: clientsLookupTimeout, Now: a.probe.Now, HTTPSPort: a.probe.HTTPSPort})
}
