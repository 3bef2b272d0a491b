// Package web is the HTTP side of mailsetup: the echo shell (routes,
// request metrics and logging, the error handler), the autoconfig
// endpoints clients fetch (Thunderbird autoconfig, Outlook Autodiscover
// POX and v2 JSON, the Apple profile, with their pre-rendered document
// cache, and the PACC document whose digest DNS publishes), health, the favicon and the pages' stylesheet. It only routes and renders: every
// setting comes from the domain policy (package autoconfig), rendered
// by the format packages. The pages are its parts: server/web/selfhelp
// (customers) and server/web/console (staff), which run their settings
// checks through server/web/check; New wires them into one route table.
//
// It may import autoconfig and its format packages, probe (the checks'
// options), templates and its parts; never a protocol server.
package web

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"mailsetup/autoconfig"
	"mailsetup/autoconfig/autodiscover"
	"mailsetup/autoconfig/mobileconfig"
	"mailsetup/autoconfig/mozilla"
	"mailsetup/probe"
	"mailsetup/server/web/check"
	"mailsetup/server/web/console"
	"mailsetup/server/web/request"
	"mailsetup/server/web/selfhelp"
	"mailsetup/templates"
	"mailsetup/templates/lang"
)

// ProfileSigner signs Apple profiles (CMS). Leave nil to serve them
// unsigned; Apple devices then show "Unverified" before installing.
type ProfileSigner struct {
	Cert  *x509.Certificate
	Key   crypto.PrivateKey
	Chain []*x509.Certificate
}

// Options configure the web app.
type Options struct {
	// Policies is required.
	Policies request.PolicySource
	// Logger gets one line per request (method, path, status, duration).
	// Request headers and bodies are never logged: Thunderbird sends the
	// user's password in HTTP Basic auth to Autodiscover.
	Logger *slog.Logger
	// Registerer receives the HTTP metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Signer signs Apple profiles when set.
	Signer *ProfileSigner
	// QuietAccess logs successful requests at debug level instead of
	// info (errors stay at info); it saves about 15% of a request's CPU.
	QuietAccess bool
	// Degraded, when set, says why the service is degraded ("" when it
	// is not); /healthz shows it (status 200: the service still answers).
	Degraded func() string
	// FormKey signs the forms' tokens; several replicas share it (the
	// database keeps it). Nil: a random key of this process.
	FormKey []byte

	// Auth checks a customer's password for the self-help check and the
	// staff probe, with the mail server's shared login throttle; nil
	// disables checks that take a password.
	Auth check.Authenticator
	// Probe is the base of every probe the pages run: Policy is set by
	// the app; RootCAs and Resolver come from the server. Discovery is
	// never enabled from the web.
	Probe probe.Options
	// SelfHelpChecksPerIP and SelfHelpChecksPerAddress limit the
	// customer settings checks per hour, per client IP (IPv6: its /64)
	// and per checked address; zero takes the defaults (30 and 10).
	SelfHelpChecksPerIP, SelfHelpChecksPerAddress int
	// SelfHelpShare, when set, carries the self-help checks taken to
	// other replicas.
	SelfHelpShare selfhelp.LimitShare
	// Staff enables the staff console and the support API; nil: both
	// answer 404.
	Staff *console.Options
	// Branding brands the customer pages; nil: none.
	Branding *Branding
	// LangDir holds an ISP's language catalogs for the customer pages
	// (<tag>.toml, see templates/lang), beside the embedded English and
	// German; "" or a missing folder: none.
	LangDir string
}

// App is the web application; it is an http.Handler.
type App struct {
	e        *echo.Echo
	policies request.PolicySource
	log      *slog.Logger
	signer   *ProfileSigner
	// accessLog: log successful requests at info (else debug).
	accessLog bool
	// brandFiles are the logo and the accent's stylesheet.
	brandFiles []brandFile
	// docs are the documents pre-rendered per policy; Refresh renders
	// them again when the policies change.
	docs    atomic.Pointer[docCaches]
	console *console.Console
	help    *selfhelp.Pages

	requests *prometheus.CounterVec
	// metrics caches the series of each route and status (routeKey):
	// looking them up by label values hashed the labels on every request.
	metrics  sync.Map
	duration *prometheus.HistogramVec
}

// New builds the app and its routes.
func New(opts Options) (*App, error) {
	if opts.Policies == nil {
		return nil, errors.New("web: Options.Policies is required")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	langs, err := lang.Load(opts.LangDir)
	if err != nil {
		return nil, err
	}
	pages, err := templates.ParseLang(langs)
	if err != nil {
		return nil, err
	}
	a := &App{e: echo.New(), policies: opts.Policies, log: log, signer: opts.Signer, accessLog: !opts.QuietAccess}
	pages.Brand, a.brandFiles = brand(opts.Branding)
	// One form key for the whole site: the customer's check and the
	// staff sign-in share the browser's form cookie.
	forms := request.NewForms(opts.FormKey)
	checks := check.New(check.Options{Policies: opts.Policies, Auth: opts.Auth, Probe: opts.Probe, Logger: log})
	selfHelp := selfhelp.New(selfhelp.Options{Policies: opts.Policies, Pages: pages, Forms: forms, Check: checks,
		ChecksPerIP: opts.SelfHelpChecksPerIP, ChecksPerAddress: opts.SelfHelpChecksPerAddress, Share: opts.SelfHelpShare})
	a.help = selfHelp
	a.console = console.New(opts.Staff, console.Env{Policies: opts.Policies, Pages: pages, Forms: forms, Check: checks, Logger: log})
	a.Refresh()
	a.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mailsetup_http_requests_total", Help: "HTTP requests by route and status code.",
	}, []string{"route", "code"})
	a.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "mailsetup_http_request_duration_seconds", Help: "HTTP request handling time by route.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .1, 1},
	}, []string{"route"})
	if opts.Registerer != nil {
		for _, c := range []prometheus.Collector{a.requests, a.duration, checks.Collector(), a.console.Collector()} {
			if err := opts.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("web: registering metrics: %w", err)
			}
		}
	}

	e := a.e
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = a.errorHandler
	e.Use(a.observe)

	selfHelp.Routes(e)
	e.GET("/healthz", func(c echo.Context) error {
		if opts.Degraded != nil {
			if why := opts.Degraded(); why != "" {
				return c.String(http.StatusOK, "degraded: "+why+"\n")
			}
		}
		return Health(c)
	})
	e.GET("/favicon.ico", favicon)
	e.GET(path.Dir(templates.StylesheetPath)+"/:name", a.staticFile)
	// Thunderbird autoconfig, both URL forms it tries (autoconfig.<domain>
	// and <domain>/.well-known/...).
	e.GET("/mail/config-v1.1.xml", a.thunderbird)
	e.GET("/.well-known/autoconfig/mail/config-v1.1.xml", a.thunderbird)
	// Outlook POX, any method (non-POST gets the error document and 405).
	e.Any(poxPath, a.autodiscoverPOX)
	e.GET(v2Path, a.autodiscoverV2)
	e.GET(v2Path+"/v1.0/:email", a.autodiscoverV2)
	e.GET("/apple/mail.mobileconfig", a.appleProfile)
	e.GET(autoconfig.PACCPath, a.pacc)
	e.GET("/.well-known/mta-sts.txt", a.mtaSTS)
	a.console.Routes(e)
	return a, nil
}

// docCaches are the pre-rendered documents of one generation of policies.
type docCaches struct {
	thunderbird, pox *docCache
}

// Refresh renders the pre-rendered documents again from the current
// policies (a config reload changed them).
func (a *App) Refresh() {
	list := a.policies.Policies()
	a.docs.Store(&docCaches{thunderbird: newDocCache(mozilla.Render, list), pox: newDocCache(autodiscover.WriteResponse, list)})
}

// SetStaff replaces the staff members, API tokens and idle timeout (a
// config reload) without a restart; see console.Console.SetStaff.
func (a *App) SetStaff(users, tokens map[string]string, idle time.Duration) {
	a.console.SetStaff(users, tokens, idle)
}

// SetSelfHelpLimits changes the self-help checks allowed per client
// address and per checked address per hour (a config reload).
func (a *App) SetSelfHelpLimits(perIP, perAddress int) { a.help.SetLimits(perIP, perAddress) }

// ServeHTTP implements http.Handler.
//
// The Autodiscover path is folded here rather than in an echo
// pre-middleware: echo wraps every request in two more closures when it
// has one.
func (a *App) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	foldAutodiscover(r)
	a.e.ServeHTTP(w, r)
}

// Health answers liveness checks.
func Health(c echo.Context) error {
	return c.String(http.StatusOK, "ok\n")
}

const (
	poxPath = "/autodiscover/autodiscover.xml"
	v2Path  = "/autodiscover/autodiscover.json"
)

// foldAutodiscover maps any letter case of the Autodiscover
// paths to ours: Outlook posts to /Autodiscover/Autodiscover.xml.
func foldAutodiscover(r *http.Request) {
	p := r.URL.Path
	if len(p) >= len("/autodiscover/") && strings.EqualFold(p[:len("/autodiscover/")], "/autodiscover/") {
		lower := strings.ToLower(p)
		switch {
		case lower == poxPath, lower == v2Path:
			r.URL.Path = lower
		case strings.HasPrefix(lower, v2Path+"/v1.0/"):
			// Keep the address's case; only the fixed part is folded.
			r.URL.Path = v2Path + "/v1.0/" + p[len(v2Path+"/v1.0/"):]
		}
		r.URL.RawPath = ""
	}
}

// observe logs and counts each request. Never logs headers or bodies.
func (a *App) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		code := c.Response().Status
		d := time.Since(start)
		m := a.routeMetrics(route, code)
		m.requests.Inc()
		m.duration.Observe(d.Seconds())
		r := c.Request()
		level := slog.LevelInfo
		if code < 400 && !a.accessLog {
			level = slog.LevelDebug
		}
		// The record is built directly (no caller PC: Logger.LogAttrs
		// spends a runtime.Callers on every line, about a tenth of a
		// request's cost here).
		if h := a.log.Handler(); h.Enabled(r.Context(), level) {
			rec := slog.NewRecord(start.Add(d), level, "http", 0)
			rec.AddAttrs(slog.String("method", r.Method), slog.String("path", r.URL.Path),
				slog.Int("status", code), slog.Duration("duration", d),
				slog.String("remote", r.RemoteAddr))
			_ = h.Handle(r.Context(), rec) // the handler never blocks; errors are its to count
		}
		return nil
	}
}

type routeKey struct {
	route string
	code  int
}

type routeSeries struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// routeMetrics returns the request counter and the duration histogram
// of a route and status. Routes are echo's patterns (a bounded set) and
// "unmatched".
func (a *App) routeMetrics(route string, code int) *routeSeries {
	k := routeKey{route, code}
	if m, ok := a.metrics.Load(k); ok {
		return m.(*routeSeries)
	}
	m := &routeSeries{requests: a.requests.WithLabelValues(route, strconv.Itoa(code)), duration: a.duration.WithLabelValues(route)}
	v, _ := a.metrics.LoadOrStore(k, m)
	return v.(*routeSeries)
}

// blob writes a whole document with its Content-Length: a document over
// net/http's 2 KiB buffer would otherwise go out chunked, which costs the
// server the framing and tells the client nothing about the size.
func blob(c echo.Context, code int, contentType string, b []byte) error {
	c.Response().Header()["Content-Length"] = []string{strconv.Itoa(len(b))}
	return c.Blob(code, contentType, b)
}

// errorHandler answers echo's own errors (404 no route, 405) as text.
func (a *App) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	code, msg := http.StatusInternalServerError, "internal error"
	var he *echo.HTTPError
	if errors.As(err, &he) {
		code = he.Code
		msg = fmt.Sprint(he.Message)
	} else {
		a.log.Error("handler failed", "path", c.Request().URL.Path, "err", err)
	}
	_ = c.String(code, msg+"\n")
}

// thunderbird serves clientConfig v1.1. Without ?emailaddress= (the
// Thunderbird pref that omits it) the domain comes from the Host header,
// autoconfig.<domain>, and the document uses %EMAILADDRESS%.
func (a *App) thunderbird(c echo.Context) error {
	var (
		p       autoconfig.Policy
		address string
	)
	if q := request.QueryParam(c, "emailaddress"); q != "" {
		var code int
		var msg string
		var addr autoconfig.Address
		p, addr, code, msg = request.Lookup(a.policies, "emailaddress", q)
		if code != 0 {
			return request.TextError(c, code, "%s", msg)
		}
		address = addr.String()
	} else {
		host := hostOnly(c.Request().Host)
		var ok bool
		p, ok = a.policies.Policy(strings.TrimPrefix(host, "autoconfig."))
		if !ok {
			return request.TextError(c, http.StatusBadRequest, "missing emailaddress parameter: add ?emailaddress=you@example.com")
		}
	}
	// Shared, never modified value slices: Header.Set would allocate one
	// per request (net/http copies the header before it writes it).
	h := c.Response().Header()
	h["Cache-Control"] = privateNoCache
	h["Content-Type"] = thunderbirdType
	return a.docs.Load().thunderbird.serve(c, mozilla.ContentType, p, address)
}

var (
	privateNoCache  = []string{"private, no-cache"}
	thunderbirdType = []string{mozilla.ContentType}
)

// mtaSTS serves the MTA-STS policy (RFC 8461 §3.3) of the domain whose
// mta-sts.<domain> name the request was sent to.
func (a *App) mtaSTS(c echo.Context) error {
	host := hostOnly(c.Request().Host)
	domain, ok := strings.CutPrefix(host, "mta-sts.")
	if !ok {
		return request.TextError(c, http.StatusNotFound, "the MTA-STS policy is served at https://mta-sts.<domain>/.well-known/mta-sts.txt, not at %s", host)
	}
	p, ok := a.policies.Policy(domain)
	if !ok || p.Sending == nil {
		return request.TextError(c, http.StatusNotFound, "no MTA-STS policy for %s here", domain)
	}
	c.Response().Header().Set("Cache-Control", "max-age=3600")
	return c.Blob(http.StatusOK, "text/plain; charset=utf-8", []byte(p.MTASTSPolicy()))
}

// autodiscoverPOX answers Outlook's POX request (MS-OXDSCLI).
func (a *App) autodiscoverPOX(c echo.Context) error {
	r := c.Request()
	if r.Method != http.MethodPost {
		c.Response().Header().Set("Allow", http.MethodPost)
		return poxError(c, http.StatusMethodNotAllowed, autodiscover.CodeInvalidRequest, "Invalid Request: Autodiscover takes a POST with an XML request body")
	}
	req, err := autodiscover.ParseRequest(r.Body)
	switch {
	case errors.Is(err, autodiscover.ErrTooLarge):
		return poxError(c, http.StatusRequestEntityTooLarge, autodiscover.CodeInvalidRequest, fmt.Sprintf("Invalid Request: body larger than %d bytes", autodiscover.MaxRequestBytes))
	case errors.Is(err, autodiscover.ErrSchemaNotSupported):
		return poxError(c, http.StatusBadRequest, autodiscover.CodeSchemaNotSupported, "Requested schema version not supported: this server answers outlook/responseschema/2006a only")
	case errors.Is(err, autodiscover.ErrNoAddress):
		return poxError(c, http.StatusBadRequest, autodiscover.CodeInvalidRequest, "Invalid Request: no EMailAddress in the request")
	case err != nil:
		return poxError(c, http.StatusBadRequest, autodiscover.CodeInvalidRequest, "Invalid Request: the body is not an Autodiscover request")
	}
	p, addr, code, msg := request.Lookup(a.policies, "EMailAddress", req.EMailAddress)
	if code != 0 {
		adCode := autodiscover.CodeInvalidRequest
		if code == http.StatusNotFound {
			adCode = autodiscover.CodeAddressNotFound
		}
		return poxError(c, code, adCode, msg)
	}
	c.Response().Header().Set("Cache-Control", "private, no-cache")
	return a.docs.Load().pox.serve(c, autodiscover.ContentType, p, addr.String())
}

func poxError(c echo.Context, status, code int, msg string) error {
	var buf bytes.Buffer
	if err := autodiscover.WriteError(&buf, code, msg, time.Now()); err != nil {
		return err
	}
	return blob(c, status, autodiscover.ContentType, buf.Bytes())
}

// autodiscoverV2 answers Autodiscover v2 with the POX URL of the
// address's domain: v2 cannot carry IMAP/POP/SMTP settings itself.
func (a *App) autodiscoverV2(c echo.Context) error {
	email := c.Param("email")
	if email == "" {
		email = queryFold(c, "email")
	}
	p, _, code, msg := request.Lookup(a.policies, "Email", email)
	if code != 0 {
		errCode := "InvalidUser"
		if code == http.StatusNotFound {
			errCode = "UserNotFound"
		}
		return c.JSON(code, map[string]string{"ErrorCode": errCode, "ErrorMessage": msg})
	}
	status, body := autodiscover.V2(queryFold(c, "protocol"), p.Web.BaseURL+"/Autodiscover/Autodiscover.xml")
	return blob(c, status, echo.MIMEApplicationJSON, body)
}

// queryFold returns a query parameter matched without regard to case
// (Outlook sends Protocol=, scripts send protocol=).
func queryFold(c echo.Context, name string) string {
	for k, v := range c.Request().URL.Query() {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

// appleProfile serves the .mobileconfig, signed when a signer is set.
func (a *App) appleProfile(c echo.Context) error {
	p, addr, code, msg := request.Lookup(a.policies, "email", c.QueryParam("email"))
	if code != 0 {
		return request.TextError(c, code, "%s", msg)
	}
	data, err := mobileconfig.Render(p, addr.String())
	if err != nil {
		return err
	}
	if a.signer != nil {
		data, err = mobileconfig.Sign(data, a.signer.Cert, a.signer.Key, a.signer.Chain)
		if err != nil {
			return fmt.Errorf("signing profile: %w", err)
		}
	}
	h := c.Response().Header()
	h.Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", mobileconfig.Filename(p)))
	h.Set("Cache-Control", "private, no-cache")
	return blob(c, http.StatusOK, mobileconfig.ContentType, data)
}

// pacc serves the PACC document of the domain named by the Host header,
// ua-auto-config.<domain> (or the domain itself): exactly the bytes whose
// digest the DNS responder and `mailsetup records` publish.
func (a *App) pacc(c echo.Context) error {
	host := hostOnly(c.Request().Host)
	p, ok := a.policies.Policy(strings.TrimPrefix(host, autoconfig.PACCHostLabel+"."))
	if !ok {
		return request.TextError(c, http.StatusNotFound, "no mail domain is configured for host %q: the document is served on %s.<domain>", host, autoconfig.PACCHostLabel)
	}
	doc, err := p.PACC()
	if err != nil {
		return request.TextError(c, http.StatusNotFound, "domain %s publishes no PACC document: %v", p.Domain, err)
	}
	c.Response().Header().Set("Cache-Control", "no-cache")
	return blob(c, http.StatusOK, autoconfig.PACCContentType, doc)
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return strings.ToLower(h)
	}
	return strings.ToLower(hostport)
}
