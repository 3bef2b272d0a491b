// Package console is the staff's side of the web: the console under
// /staff/ (sign-in with its throttle, sessions, the start page with the
// accounts in trouble, an account's observations and login blocks, the
// probe form and its reports), the support API under /api/v1/ (bearer
// tokens), and the audit log of both. Staff members and tokens can be
// replaced at run time (SetStaff, a config reload).
//
// It may import autoconfig, finding, probe, templates, server/accounts
// (password hashes), server/auth (the throttle), server/observe (what
// the mail server saw), server/web/request and server/web/check; never
// server/web, server/web/selfhelp or a protocol server.
package console

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"mailsetup/autoconfig"
	"mailsetup/finding"
	"mailsetup/probe"
	"mailsetup/server/accounts"
	"mailsetup/server/auth"
	"mailsetup/server/observe"
	"mailsetup/server/web/check"
	"mailsetup/server/web/request"
	"mailsetup/templates"
)

// Options enable the staff console (/staff/) and the support API
// (/api/v1/). Without users the console answers 404; without tokens the
// API does.
type Options struct {
	// Users maps a staff member's name to an argon2id password hash.
	Users map[string]string
	// Tokens maps the SHA-256 (lower-case hex) of an API token to the
	// token's name.
	Tokens map[string]string
	// IdleTimeout signs a staff member out after this long without a
	// request (default 30 minutes).
	IdleTimeout time.Duration
	// Sessions, when set, keeps the sessions where other replicas find
	// them (the database); nil keeps them in this process only.
	Sessions SessionStore
	// SignIns, when set, is the sign-in throttle (NewSignInThrottle with
	// a share, for several replicas).
	SignIns *auth.Throttle
	// Audit receives one JSON line per sign-in, lookup and probe; nil
	// keeps only the in-memory list shown on /staff/audit.
	Audit io.Writer
	// AuditBefore are the latest entries of the audit file from before
	// this start, oldest first, for /staff/audit.
	AuditBefore []AuditEntry
	// AuditShare, when set, carries the audit entries to the other
	// replicas and theirs here.
	AuditShare AuditShare
	// Observations returns what the mail server saw of an account; nil
	// when the server runs without mail listeners.
	Observations func(address string) (observe.Account, bool)
	// Search returns up to limit accounts whose address or an alias
	// contains q (lower case), sorted; nil: lookups need the full
	// address.
	Search func(q string, limit int) []string
	// Recent lists up to n accounts whose clients had trouble within
	// the window, most recent first; nil shows no list.
	Recent func(n int, window time.Duration) []observe.Trouble
	// Redownloads lists per domain the accounts whose POP3 clients
	// downloaded messages again within the window (at most a day); nil
	// shows none.
	Redownloads func(window time.Duration) []observe.DomainRedownloads
	// Overview counts per domain and day the accounts whose clients
	// made the incident's mistakes (observe.Store.Overview); nil: the
	// overview page says the server observes nothing.
	Overview func(observe.OverviewOptions) observe.OverviewReport
	// OverviewMaxAge is how long the console shows a computed overview
	// again for the same query (the page, its CSV and the API alike):
	// 0 is DefaultOverviewMaxAge, below 0 computes it every time.
	OverviewMaxAge time.Duration
	// Account returns the account's own data (exists, aliases, quota,
	// mailbox size); nil shows none.
	Account func(address string) AccountInfo
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// AccountInfo is what the console shows of the account itself: the
// account page's view of it, declared with the page in templates.
type AccountInfo = templates.StaffAccountInfo

// Env is what the console takes from the web app.
type Env struct {
	Policies request.PolicySource
	Pages    *templates.Set
	// Forms signs the sign-in form's token (shared with the rest of
	// the site).
	Forms *request.Forms
	// Check runs the probes of the console and the API.
	Check  *check.Service
	Logger *slog.Logger
}

// Console is the staff console and the support API.
type Console struct {
	policies request.PolicySource
	log      *slog.Logger
	pages    *templates.Set
	forms    *request.Forms
	check    *check.Service
	// auth is the check's authenticator, whose throttle the account page
	// shows and lifts; nil without mail accounts.
	auth  check.Authenticator
	staff *staffState // nil without staff
	// auditErrors counts audit lines that could not be written.
	auditErrors prometheus.Counter
}

// New builds the console; with opts nil the console and the API answer
// 404, saying how to turn them on.
func New(opts *Options, env Env) *Console {
	log := env.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Console{policies: env.Policies, log: log, pages: env.Pages, forms: env.Forms, check: env.Check, auth: env.Check.Auth()}
	a.auditErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "mailsetup_audit_write_errors_total",
		Help: "Staff audit log lines that could not be written (the file system is full or failing); alert on any.",
	})
	if opts != nil {
		a.staff = newStaffState(*opts, log, a.auditFailed)
	}
	return a
}

// Collector is the audit log's error metric, for the web app to
// register.
func (a *Console) Collector() prometheus.Collector { return a.auditErrors }

// auditFailed reports an audit line that could not be written.
func (a *Console) auditFailed(err error) {
	a.auditErrors.Inc()
	a.log.Error("writing the staff audit log failed", "err", err)
}

// NewSignInThrottle is the throttle of staff sign-ins (its What is
// "staff sign-in"); share carries it to other replicas, may be nil.
func NewSignInThrottle(log *slog.Logger, now func() time.Time, share auth.ThrottleShare) *auth.Throttle {
	return auth.NewThrottle(auth.ThrottleOptions{IPLimit: 10, AccountLimit: 10, NewAddressLimit: 5, Window: 10 * time.Minute, Logger: log, What: "staff sign-in", Share: share}, now)
}

// staffState is the console's state when staff is configured.
type staffState struct {
	opts Options
	// creds are the staff members and tokens, replaced as a whole by
	// SetStaff (a config reload) while requests read them.
	creds    atomic.Pointer[staffCreds]
	sessions *staffSessions
	audit    *auditLog
	// signins throttles failed sign-ins per address and name.
	signins *auth.Throttle
	// dummyHash is checked for unknown names, so that a wrong name costs
	// as long as a wrong password.
	dummyHash func() string
}

// staffCreds are the configured staff members and API tokens.
type staffCreds struct {
	users  map[string]string // name -> argon2id hash
	tokens map[string]string // SHA-256 hex -> name
}

func newStaffState(opts Options, log *slog.Logger, failed func(error)) *staffState {
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 30 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	opts.Overview = cachedOverview(opts.Overview, opts.Now, opts.OverviewMaxAge)
	st := &staffState{
		opts:     opts,
		sessions: &staffSessions{idle: opts.IdleTimeout, now: opts.Now, store: opts.Sessions, m: map[string]*staffSession{}},
		audit:    &auditLog{w: opts.Audit, failed: failed, share: opts.AuditShare},
		signins:  opts.SignIns,
		// Made at the first unknown name, not at start: argon2id takes
		// 19 MiB and tens of milliseconds.
		dummyHash: sync.OnceValue(func() string {
			h, err := accounts.HashPassword(request.NewRandom(24))
			if err != nil {
				panic(err) // crypto/rand does not fail on supported platforms
			}
			return h
		}),
	}
	st.sessions.known = func(user string) bool { _, ok := st.creds.Load().users[user]; return ok }
	if st.signins == nil {
		st.signins = NewSignInThrottle(log, opts.Now, nil)
	}
	st.creds.Store(&staffCreds{users: maps.Clone(opts.Users), tokens: maps.Clone(opts.Tokens)})
	st.audit.seed(opts.AuditBefore)
	if opts.AuditShare != nil {
		opts.AuditShare.Follow(st.audit.other)
	}
	return st
}

// SetStaff replaces the staff members, API tokens and idle timeout
// (a config reload) without a restart. Sessions of members no longer
// configured, or whose password changed, end at once; the others stay
// signed in. It does nothing when the console was built without
// Options.
func (a *Console) SetStaff(users, tokens map[string]string, idle time.Duration) {
	if a.staff == nil {
		return
	}
	old := a.staff.creds.Swap(&staffCreds{users: maps.Clone(users), tokens: maps.Clone(tokens)})
	if idle <= 0 {
		idle = 30 * time.Minute
	}
	a.staff.sessions.reconfigure(idle, func(user string) bool {
		h, ok := users[user]
		return ok && h == old.users[user]
	})
}

var (
	errConsoleOff = echo.NewHTTPError(http.StatusNotFound, "the staff console is off: no staff member is configured; add a [[staff.user]] entry to the config (`mailsetup staff hash NAME` prints one) and reload (SIGHUP) or restart")
	apiOffText    = "the support API is off: no API token is configured; add a [[staff.token]] entry to the config (`mailsetup staff token NAME` prints one) and reload (SIGHUP) or restart"
)

// Routes registers the console and the API. Whether they are on is
// decided per request (consoleOn, apiOn), so that a reload can turn them
// on or off.
func (a *Console) Routes(e *echo.Echo) {
	if a.staff == nil {
		e.Any("/staff", func(echo.Context) error { return errConsoleOff })
		e.Any("/staff/*", func(echo.Context) error { return errConsoleOff })
		e.Any("/api/v1/*", func(c echo.Context) error { return c.JSON(http.StatusNotFound, apiError{Error: apiOffText}) })
		return
	}
	// Console forms are small: a larger body is refused (413) before
	// anything reads it.
	limit := bodyLimit(64 << 10)
	{
		e.GET("/staff", func(c echo.Context) error { return c.Redirect(http.StatusMovedPermanently, "/staff/") }, a.consoleOn)
		e.Any("/staff/*", func(echo.Context) error { return echo.ErrNotFound }, a.consoleOn)
		e.GET("/staff/signin", a.staffSignInForm, a.consoleOn)
		e.POST("/staff/signin", a.staffSignIn, a.consoleOn, limit)
		g := e.Group("/staff", a.consoleOn, limit, a.requireStaff)
		g.GET("/", a.staffHome)
		g.POST("/signout", a.staffSignOut)
		g.GET("/lookup", a.staffLookup)
		g.GET("/accounts/:address", a.staffAccount)
		g.POST("/accounts/:address/probe", a.staffProbe)
		g.POST("/accounts/:address/unblock", a.staffUnblock)
		g.GET("/reports/:id", a.staffReport)
		g.GET("/audit", a.staffAudit)
		g.GET("/overview", a.staffOverview)
		g.GET("/overview.csv", a.staffOverviewCSV)
	}
	{
		e.Any("/api/v1/*", func(c echo.Context) error { return apiFail(c, http.StatusNotFound, "no such API route") }, a.apiOn)
		api := e.Group("/api/v1", a.apiOn, limit, a.requireToken)
		api.GET("/accounts/:address/observations", a.apiObservations)
		api.POST("/probe", a.apiProbe)
		api.GET("/troubles", a.apiTroubles)
		api.GET("/overview", a.apiOverview)
	}
}

// bodyLimit refuses request bodies larger than n bytes: 413 when the
// length is announced, and a read error (the form then counts as not
// sent) when a chunked body runs over.
func bodyLimit(n int64) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			if r.ContentLength > n {
				return echo.NewHTTPError(http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body is larger than %d bytes", n))
			}
			r.Body = http.MaxBytesReader(c.Response(), r.Body, n)
			return next(c)
		}
	}
}

// consoleOn answers 404 with how to turn the console on while no staff
// member is configured.
func (a *Console) consoleOn(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if len(a.staff.creds.Load().users) == 0 {
			return errConsoleOff
		}
		return next(c)
	}
}

// apiOn answers 404 with how to turn the API on while no token is
// configured.
func (a *Console) apiOn(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if len(a.staff.creds.Load().tokens) == 0 {
			return c.JSON(http.StatusNotFound, apiError{Error: apiOffText})
		}
		return next(c)
	}
}

// staffPage answers with a console page that render writes (one of
// the typed templates.Set.Staff* methods), whole or not at all.
func staffPage(c echo.Context, status int, render func(io.Writer) error) error {
	var buf bytes.Buffer
	if err := render(&buf); err != nil {
		return err
	}
	return c.HTMLBlob(status, buf.Bytes())
}

func (a *Console) auditAdd(c echo.Context, staff, action, target, detail string) {
	a.staff.audit.add(AuditEntry{Time: a.staff.opts.Now().UTC(), Staff: staff, Action: action, Target: target,
		Remote: request.Remote(c).String(), Detail: detail})
}

// signInPage is the sign-in form's view: nobody is signed in, and the
// form's token is the signed cookie token.
func (a *Console) signInPage(c echo.Context, next string) templates.StaffSignInPage {
	return templates.StaffSignInPage{StaffFrame: templates.StaffFrame{Frame: templates.Frame{Title: "Sign in", CSRF: a.forms.Token(c)}},
		Next: localNext(next)}
}

// signIn answers with the sign-in form.
func (a *Console) signIn(c echo.Context, status int, p templates.StaffSignInPage) error {
	return staffPage(c, status, func(w io.Writer) error { return a.pages.StaffSignIn(w, p) })
}

func (a *Console) staffSignInForm(c echo.Context) error {
	staffHeaders(c)
	return a.signIn(c, http.StatusOK, a.signInPage(c, c.QueryParam("next")))
}

func (a *Console) staffSignIn(c echo.Context) error {
	staffHeaders(c)
	if err := a.forms.Check(c); err != nil {
		return err
	}
	name, password := strings.TrimSpace(c.FormValue("name")), c.FormValue("password")
	page := a.signInPage(c, c.FormValue("next"))
	if len(name) > 64 || len(password) > 1024 {
		page.Error = "The name or the password is far too long."
		return a.signIn(c, http.StatusBadRequest, page)
	}
	page.Name = name
	if !request.SecretsAllowed(c) {
		page.Error = "Sign in over HTTPS: this connection is not encrypted, so the password was not checked."
		return a.signIn(c, http.StatusForbidden, page)
	}
	remote := request.Remote(c)
	if wait := a.staff.signins.Blocked(remote, name); wait > 0 {
		page.Error = fmt.Sprintf("Too many failed sign-ins: try again in %s.", auth.WaitWords(wait))
		c.Response().Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		return a.signIn(c, http.StatusTooManyRequests, page)
	}
	hash, known := a.staff.creds.Load().users[name]
	if !known {
		hash = a.staff.dummyHash()
	}
	ok, err := accounts.CheckPassword(hash, password)
	if err != nil {
		return fmt.Errorf("staff %q: %w", name, err)
	}
	if !ok || !known {
		a.staff.signins.Fail(remote, name)
		a.auditAdd(c, name, "sign-in-failed", "", "")
		page.Error = "The name or the password is wrong."
		return a.signIn(c, http.StatusUnauthorized, page)
	}
	a.staff.signins.Succeed(remote, name)
	s, err := a.staff.sessions.create(name)
	if err != nil {
		a.log.Error("saving a staff session", "err", err)
		page.Error = "Signing in is not possible right now: the sessions' database is unavailable. Try again in a minute."
		return a.signIn(c, http.StatusServiceUnavailable, page)
	}
	setStaffCookie(c, s.id)
	a.auditAdd(c, name, "sign-in", "", "")
	return c.Redirect(http.StatusSeeOther, page.Next)
}

func (a *Console) staffSignOut(c echo.Context) error {
	s := staffOf(c)
	a.staff.sessions.signOut(s.id)
	setStaffCookie(c, "")
	a.auditAdd(c, s.user, "sign-out", "", "")
	return c.Redirect(http.StatusSeeOther, "/staff/signin")
}

// frameOf is the frame of a page titled title for the signed-in staff
// member: the forms carry the session's token.
func frameOf(c echo.Context, title string) templates.StaffFrame {
	s := staffOf(c)
	return templates.StaffFrame{Frame: templates.Frame{Title: title, CSRF: s.csrf}, User: s.user}
}

func (a *Console) staffHome(c echo.Context) error {
	return a.renderHome(c, http.StatusOK, "", "", nil)
}

func (a *Console) renderHome(c echo.Context, status int, address, msg string, matches []string) error {
	s := staffOf(c)
	p := templates.StaffHomePage{StaffFrame: frameOf(c, "Find an account"), Address: address, Error: msg, Matches: matches}
	filter, offset, err := servedQuery(c)
	if err != nil && msg == "" {
		p.Error, status = err.Error(), http.StatusBadRequest
	}
	var all []string
	for _, pol := range a.policies.Policies() {
		all = append(all, pol.Domain)
	}
	servedDomains(&p, all, filter, offset)
	if f := a.staff.opts.Recent; f != nil {
		p.Troubles, p.ShowTroubles = troublesView(f(20, 24*time.Hour)), true
	}
	if f := a.staff.opts.Redownloads; f != nil {
		p.Redownloads = redownloadsView(f(24 * time.Hour))
	}
	for _, e := range a.staff.audit.latest(auditRecent) {
		if e.Staff == s.user && (e.Action == "lookup" || e.Action == "probe") && len(p.Recent) < 10 {
			p.Recent = append(p.Recent, templates.StaffAuditEntry(e))
		}
	}
	return staffPage(c, status, func(w io.Writer) error { return a.pages.StaffHome(w, p) })
}

// staffLookup is the search form's target: a full address opens the
// account; part of one lists the accounts that contain it.
func (a *Console) staffLookup(c echo.Context) error {
	q := strings.TrimSpace(c.QueryParam("address"))
	addr, err := autoconfig.ParseAddress(q)
	if err != nil {
		if f := a.staff.opts.Search; f != nil && len(q) >= 2 && len(q) <= 254 && !strings.ContainsFunc(q, unicode.IsControl) {
			matches := f(strings.ToLower(q), maxMatches)
			a.auditAdd(c, staffOf(c).user, "search", q, fmt.Sprintf("%d matches", len(matches)))
			if len(matches) == 0 {
				return a.renderHome(c, http.StatusNotFound, q, fmt.Sprintf("No account contains %q. Ask the caller to spell the address.", q), nil)
			}
			return a.renderHome(c, http.StatusOK, q, "", matches)
		}
		return a.renderHome(c, http.StatusBadRequest, q, fmt.Sprintf("%q is not an email address: %v", q, err), nil)
	}
	if _, ok := a.policies.Policy(addr.Domain); !ok {
		return a.renderHome(c, http.StatusNotFound, q, fmt.Sprintf("The domain %s is not served here.", addr.Domain), nil)
	}
	// Accounts are case-insensitive; the console shows them lower case.
	return c.Redirect(http.StatusSeeOther, "/staff/accounts/"+url.PathEscape(strings.ToLower(addr.String())))
}

// maxMatches bounds a partial search's list.
const maxMatches = 20

// staffAccountParam parses the :address parameter of a console URL.
func (a *Console) staffAccountParam(c echo.Context) (autoconfig.Address, autoconfig.Policy, error) {
	p, addr, code, msg := request.Lookup(a.policies, "address", strings.ToLower(request.PathAddress(c)))
	if code != 0 {
		return addr, p, echo.NewHTTPError(code, msg)
	}
	return addr, p, nil
}

// blocks returns the throttle's blocks that concern an account now, and
// the addresses among them.
func (a *Console) blocks(address string, obs observe.Account) ([]templates.StaffLoginBlock, []netip.Addr) {
	if a.auth == nil {
		return nil, nil
	}
	th := a.auth.Throttle()
	var out []templates.StaffLoginBlock
	failed, fresh := th.AccountWait(address)
	if failed > 0 {
		out = append(out, templates.StaffLoginBlock{What: "the account " + address + " from addresses that failed against it (addresses it logged in from lately are not held off)", Wait: auth.WaitWords(failed)})
	}
	if fresh > 0 {
		out = append(out, templates.StaffLoginBlock{What: "the account " + address + " from new addresses (addresses it logged in from lately are not held off)", Wait: auth.WaitWords(fresh)})
	}
	var ips []netip.Addr
	since := a.staff.opts.Now().Add(-24 * time.Hour)
	for _, f := range obs.Failures {
		if f.Last.Before(since) || slices.Contains(ips, f.Remote) || !f.Remote.IsValid() {
			continue
		}
		if w := th.Blocked(f.Remote, ""); w > 0 {
			ips = append(ips, f.Remote)
			out = append(out, templates.StaffLoginBlock{What: "every login from " + f.Remote.String(), Wait: auth.WaitWords(w)})
		}
	}
	return out, ips
}

func (a *Console) accountData(c echo.Context, addr autoconfig.Address, p autoconfig.Policy) templates.StaffAccountPage {
	page := templates.StaffAccountPage{StaffFrame: frameOf(c, addr.String()), Address: addr.String(), Policy: p}
	if f := a.staff.opts.Account; f != nil {
		page.Account = f(addr.String())
	}
	var obs observe.Account
	if f := a.staff.opts.Observations; f != nil {
		obs, page.Observed = f(addr.String())
		page.Observations, page.Findings = observationsView(obs), obs.Findings
		if page.Observed {
			tl := templates.TimelineChart(addr.String(), timelineView(obs.Timeline))
			page.Timeline = &tl
		}
	}
	page.Blocks, _ = a.blocks(addr.String(), obs)
	return page
}

// staffUnblock lifts the login blocks that concern an account (once the
// customer has corrected the password on every device).
func (a *Console) staffUnblock(c echo.Context) error {
	addr, _, err := a.staffAccountParam(c)
	if err != nil {
		return err
	}
	if a.auth == nil {
		return echo.NewHTTPError(http.StatusNotFound, "this server has no mail logins to unblock")
	}
	var obs observe.Account
	if f := a.staff.opts.Observations; f != nil {
		obs, _ = f(addr.String())
	}
	blocks, ips := a.blocks(addr.String(), obs)
	a.auth.Throttle().Clear(addr.String(), ips...)
	what := make([]string, len(blocks))
	for i, b := range blocks {
		what[i] = b.What
	}
	a.auditAdd(c, staffOf(c).user, "unblock", addr.String(), strings.Join(what, "; "))
	return c.Redirect(http.StatusSeeOther, "/staff/accounts/"+url.PathEscape(addr.String()))
}

func (a *Console) staffAccount(c echo.Context) error {
	addr, p, err := a.staffAccountParam(c)
	if err != nil {
		return err
	}
	a.auditAdd(c, staffOf(c).user, "lookup", addr.String(), "")
	page := a.accountData(c, addr, p)
	if c.QueryParam("clients") != "" {
		// What each mail program would set up (probe/clients), on request:
		// it takes a check slot and a few seconds.
		rep, err := a.check.Clients(c.Request().Context(), addr.String(), p)
		if err != nil {
			page.ClientsError = "Could not look it up: " + err.Error()
		}
		page.Clients = rep
		a.auditAdd(c, staffOf(c).user, "clients", addr.String(), "")
	}
	return a.account(c, http.StatusOK, page)
}

// account answers with an account's page.
func (a *Console) account(c echo.Context, status int, p templates.StaffAccountPage) error {
	return staffPage(c, status, func(w io.Writer) error { return a.pages.StaffAccount(w, p) })
}

// staffProbe runs the probe with what the caller reads out of the
// client, stores the report in the session and shows it.
func (a *Console) staffProbe(c echo.Context) error {
	addr, p, err := a.staffAccountParam(c)
	if err != nil {
		return err
	}
	params, err := c.FormParams()
	if err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "the form could not be read: send it from the account page")
	}
	in := check.ParseForm(params)
	if ferr := check.FieldErrors(in.Errs); ferr != nil {
		page := a.accountData(c, addr, p)
		page.Form, page.Error = in.Form, ferr.Error()
		return a.account(c, http.StatusBadRequest, page)
	}
	s := staffOf(c)
	rep, err := a.runProbe(c, s.user, "probe",
		check.Request{Address: addr.String(), Password: in.Password, Client: in.Reported(), Source: "staff"})
	if err != nil {
		return err
	}
	id := s.addReport(rep)
	return c.Redirect(http.StatusSeeOther, "/staff/reports/"+id)
}

// runProbe runs a check for the console or the API and audits it as
// action by who: whether a password came with it, and the worst finding.
func (a *Console) runProbe(c echo.Context, who, action string, req check.Request) (*probe.Report, error) {
	req.Remote, req.TLS = request.Remote(c), c.IsTLS()
	res, err := a.check.Run(c.Request().Context(), req)
	if err != nil {
		return nil, err
	}
	detail := "without password"
	if req.Password != "" {
		detail = "with password"
	}
	a.auditAdd(c, who, action, req.Address, fmt.Sprintf("%s; worst %s", detail, res.Report.Worst))
	return res.Report, nil
}

func (a *Console) staffReport(c echo.Context) error {
	s := staffOf(c)
	id, asJSON := strings.CutSuffix(c.Param("id"), ".json")
	rep, ok := s.report(id)
	if !ok {
		return echo.NewHTTPError(http.StatusNotFound, "no such report in this session: reports are kept for the session that ran them (the last 20)")
	}
	if asJSON {
		c.Response().Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", "probe-"+rep.Address+".json"))
		return c.JSONPretty(http.StatusOK, rep, "  ")
	}
	page := templates.StaffReportPage{StaffFrame: frameOf(c, "Probe of "+rep.Address), ID: id, Report: rep, Print: c.QueryParam("print") != ""}
	page.Steps = append([]probe.Step(nil), rep.Steps...)
	sort.SliceStable(page.Steps, func(i, j int) bool { return page.Steps[i].Severity > page.Steps[j].Severity })
	for _, f := range rep.Findings {
		if f.Severity == finding.OK {
			page.Right = append(page.Right, f)
		} else {
			page.Wrong = append(page.Wrong, f)
		}
	}
	return staffPage(c, http.StatusOK, func(w io.Writer) error { return a.pages.StaffReport(w, page) })
}

func (a *Console) staffAudit(c echo.Context) error {
	p := templates.StaffAuditPage{StaffFrame: frameOf(c, "Audit log")}
	for _, e := range a.staff.audit.latest(200) {
		p.Entries = append(p.Entries, templates.StaffAuditEntry(e))
	}
	return staffPage(c, http.StatusOK, func(w io.Writer) error { return a.pages.StaffAudit(w, p) })
}
