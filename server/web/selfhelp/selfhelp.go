// Package selfhelp is the customer's side of the web: the start page,
// the settings and step-by-step instructions per mail program
// (/help/...), the settings check form (/check/..., run through
// server/web/check, with its per-IP and per-address limits) and the
// settings as JSON (/settings/...). Every value on its pages comes from
// the domain policy.
//
// It may import autoconfig, finding, probe, server/auth (the wait's
// words), templates, server/web/request and server/web/check; never
// server/web, server/web/console or a protocol server.
package selfhelp

import (
	"bytes"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"mailsetup/autoconfig"
	"mailsetup/server/web/check"
	"mailsetup/server/web/request"
	"mailsetup/templates"
	"mailsetup/templates/lang"
)

// The customer self-help pages: the start page asks for the address;
// /help/{address} shows the domain's settings and the list of clients;
// /help/{address}/{client} gives step-by-step instructions with the
// exact field names of that client's dialogs; /check/{address} is the
// settings check (selfhelp_check.go); /settings/{address} is the same
// settings as JSON for scripts. Every value on them comes from the
// domain policy.

// Default limits of the settings check, per hour.
const (
	DefaultChecksPerIP      = 30
	DefaultChecksPerAddress = 10
)

// Options configure the pages.
type Options struct {
	Policies request.PolicySource
	Pages    *templates.Set
	// Forms signs the check form's token (shared with the rest of the
	// site).
	Forms *request.Forms
	// Check runs the settings checks.
	Check *check.Service
	// ChecksPerIP and ChecksPerAddress limit the settings checks per
	// hour, per client IP (IPv6: its /64) and per checked address; zero
	// takes the defaults.
	ChecksPerIP, ChecksPerAddress int
	// Share, when set, carries the checks taken to other replicas.
	Share LimitShare
}

// Pages are the self-help pages.
type Pages struct {
	policies request.PolicySource
	pages    *templates.Set
	forms    *request.Forms
	check    *check.Service
	// auth is the check's authenticator: nil when passwords cannot be
	// checked (the form then has no password field).
	auth check.Authenticator
	// limits limits the checks per IP and per address.
	limits *checkLimiter
	share  LimitShare // nil: this process only
}

// checkLimits are the checks per IP and per address with their defaults.
func checkLimits(perIP, perAddr int) (int, int) {
	if perIP <= 0 {
		perIP = DefaultChecksPerIP
	}
	if perAddr <= 0 {
		perAddr = DefaultChecksPerAddress
	}
	return perIP, perAddr
}

// SetLimits changes the checks allowed per IP and per address per hour
// (a config reload); 0 takes the default.
func (a *Pages) SetLimits(perIP, perAddress int) {
	a.limits.set(checkLimits(perIP, perAddress))
}

// New builds the pages.
func New(opts Options) *Pages {
	perIP, perAddr := checkLimits(opts.ChecksPerIP, opts.ChecksPerAddress)
	p := &Pages{policies: opts.Policies, pages: opts.Pages, forms: opts.Forms, check: opts.Check, auth: opts.Check.Auth(),
		limits: newCheckLimiter(perIP, perAddr, time.Now), share: opts.Share}
	if p.share != nil {
		p.share.Follow(p.limits.take)
	}
	return p
}

// Routes registers the self-help pages.
func (a *Pages) Routes(e *echo.Echo) {
	e.GET("/", a.helpStart)
	e.GET("/help", a.helpLookup)
	e.GET("/help/:address", a.helpDomain)
	e.GET("/help/:address/:client", a.helpClient)
	e.GET("/check/:address", a.helpCheckForm)
	e.POST("/check/:address", a.helpCheckRun)
	e.GET("/settings/:address", a.settingsJSON)
}

// pageHeaders are set on every self-help page: nothing external, no
// framing, and only our own script (the optional copy buttons,
// templates.ScriptPath).
func pageHeaders(c echo.Context, cache string) {
	h := c.Response().Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; connect-src 'none'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", cache)
	langHeaders(c)
}

// render runs one of the page methods into a buffer, so that a template
// error becomes a 500 and not half a page.
func (a *Pages) render(c echo.Context, code int, cache string, fn func(*bytes.Buffer) error) error {
	var buf bytes.Buffer
	if err := fn(&buf); err != nil {
		return err
	}
	pageHeaders(c, cache)
	return c.HTMLBlob(code, buf.Bytes())
}

// errorPage answers a customer's request with an error page in the
// customer layout and language: msg says what went wrong, back (when
// set) is the page to go back to.
func (a *Pages) errorPage(c echo.Context, code int, msg, back string) error {
	p := templates.HelpErrorPage{Frame: a.frame(c, a.language(c).S("error.title", nil)), Message: msg, Back: back}
	return a.render(c, code, "no-store", func(b *bytes.Buffer) error { return a.pages.HelpError(b, p) })
}

// helpLookupResult is an address checked for the pages: the policy, or
// the status and a message for the customer.
type helpLookupResult struct {
	policy  autoconfig.Policy
	address autoconfig.Address
	code    int
	msg     string
}

// helpAddress validates an address typed by a customer and finds its
// policy, with messages written for the customer.
func (a *Pages) helpAddress(l *lang.Localizer, value string) helpLookupResult {
	addr, err := autoconfig.ParseAddress(value)
	switch {
	case errors.Is(err, autoconfig.ErrEmptyAddress):
		return helpLookupResult{code: http.StatusBadRequest, msg: l.S("address.empty", nil)}
	case err != nil:
		// The parser's reason stays in English: it quotes the address.
		return helpLookupResult{code: http.StatusBadRequest, msg: l.S("address.malformed", strings.TrimPrefix(err.Error(), autoconfig.ErrMalformedAddress.Error()+": "))}
	}
	p, ok := a.policies.Policy(addr.Domain)
	if !ok {
		return helpLookupResult{address: addr, code: http.StatusNotFound, msg: l.S("address.unknown-domain", addr.Domain)}
	}
	return helpLookupResult{policy: p, address: addr}
}

func (a *Pages) startPage(c echo.Context, address, msg string) templates.HelpStartPage {
	// The served domains are not listed: a provider may host thousands,
	// and the list is nobody's business.
	return templates.HelpStartPage{Frame: a.frame(c, a.language(c).S("title.start", nil)), Address: address, Error: msg}
}

// helpStart is the start page: the address form.
func (a *Pages) helpStart(c echo.Context) error {
	p := a.startPage(c, c.QueryParam("address"), "")
	return a.render(c, http.StatusOK, "no-cache", func(b *bytes.Buffer) error { return a.pages.HelpStart(b, p) })
}

// helpLookup answers the start page's form: a valid address of a
// served domain goes on to its overview; anything else shows the form
// again with the reason (400 malformed, 404 unknown domain).
func (a *Pages) helpLookup(c echo.Context) error {
	value := c.QueryParam("address")
	r := a.helpAddress(a.language(c), value)
	if r.code != 0 {
		p := a.startPage(c, value, r.msg)
		return a.render(c, r.code, "no-store", func(b *bytes.Buffer) error { return a.pages.HelpStart(b, p) })
	}
	return c.Redirect(http.StatusSeeOther, helpURL(r.address.String()))
}

// helpPageFor looks up the :address of a help page: the overview's
// view, whose parts (the frame titled with the message title, what
// every page about the address has) the other pages take. On failure
// it has answered with the start page and the reason, and ok is false.
func (a *Pages) helpPageFor(c echo.Context, title string) (templates.HelpDomainPage, autoconfig.Policy, bool, error) {
	l := a.language(c)
	value := request.PathAddress(c)
	r := a.helpAddress(a.language(c), value)
	if r.code != 0 {
		p := a.startPage(c, value, r.msg)
		return templates.HelpDomainPage{}, r.policy, false, a.render(c, r.code, "no-store", func(b *bytes.Buffer) error { return a.pages.HelpStart(b, p) })
	}
	s := helpSettings(l, r.policy, r.address.String(), c.QueryParam("incoming"))
	page := templates.HelpDomainPage{Frame: a.frame(c, l.S(title, s.Address)), HelpAddress: templates.HelpAddress{Settings: s}}
	for _, cl := range templates.HelpClients {
		cl.URL = s.HelpURL + "/" + cl.ID
		cl.Name = l.S("client."+cl.ID+".name", nil)
		if cl.NoPOPExpiry != "" {
			cl.NoPOPExpiry = l.S("client."+cl.ID+".nopop", nil)
		}
		page.Clients = append(page.Clients, cl)
	}
	if q := c.QueryParam("incoming"); (q == "imap" || q == "pop3") && strings.EqualFold(q, s.In.Protocol) {
		// The customer said which protocol they use: the links keep it.
		q = "?incoming=" + q
		for i := range page.Clients {
			page.Clients[i].URL += q
		}
		page.Settings.HelpURL += q
	}
	return page, r.policy, true, nil
}

// helpDomain is an address's overview: the settings and the clients.
func (a *Pages) helpDomain(c echo.Context) error {
	page, _, ok, err := a.helpPageFor(c, "title.domain")
	if !ok {
		return err
	}
	return a.render(c, http.StatusOK, "private, no-cache", func(b *bytes.Buffer) error { return a.pages.HelpDomain(b, page) })
}

// helpClient is one client's step-by-step instructions, titled
// title.client.<id>.
func (a *Pages) helpClient(c echo.Context) error {
	id := c.Param("client")
	known := slices.ContainsFunc(templates.HelpClients, func(cl templates.HelpClient) bool { return cl.ID == id })
	title := "title.client." + id
	if !known {
		title = "title.domain"
	}
	d, pol, ok, err := a.helpPageFor(c, title)
	if !ok {
		return err
	}
	if !known {
		return a.errorPage(c, http.StatusNotFound, a.language(c).S("error.unknown-client", id), d.Settings.HelpURL)
	}
	page := templates.HelpClientPage{Frame: d.Frame, HelpAddress: d.HelpAddress}
	if id == "apple" && pol.Web.BaseURL != "" {
		page.ProfileQR = profileQR(pol.Web.BaseURL + d.Settings.ProfileURL)
	}
	for _, cl := range page.Clients {
		if cl.ID == id {
			page.Client = cl
		}
	}
	return a.render(c, http.StatusOK, "private, no-cache", func(b *bytes.Buffer) error { return a.pages.HelpClient(b, page) })
}

func helpURL(address string) string { return "/help/" + url.PathEscape(address) }

// helpServer is an endpoint in the words of the dialogs.
func helpServer(l *lang.Localizer, e autoconfig.Endpoint) templates.HelpServer {
	return templates.HelpServer{Protocol: strings.ToUpper(string(e.Protocol)), Host: e.Host, Port: e.Port,
		Security: securityWords(l, e.Security), TLS: e.Security == autoconfig.TLS}
}

// securityWords is a connection security as the dialogs say it:
// "SSL/TLS", "STARTTLS", "None".
func securityWords(l *lang.Localizer, s autoconfig.Security) string {
	return l.S("security."+string(s), nil)
}

// firstTLS returns the first implicit-TLS endpoint of list, else the
// first (what the Apple profile carries).
func firstTLS(list []autoconfig.Endpoint) (autoconfig.Endpoint, bool) {
	for _, e := range list {
		if e.Security == autoconfig.TLS {
			return e, true
		}
	}
	if len(list) > 0 {
		return list[0], true
	}
	return autoconfig.Endpoint{}, false
}

// helpSettings turns the policy into the pages' view of one address.
// incoming, "imap" or "pop3" when the customer said which one they use
// (?incoming=), picks In when the domain offers it; else In is the
// policy's preferred protocol.
func helpSettings(l *lang.Localizer, p autoconfig.Policy, address, incoming string) templates.HelpSettings {
	esc := url.PathEscape(address)
	s := templates.HelpSettings{
		Address: address, Domain: p.Domain, DisplayName: p.DisplayName, Username: p.UsernameFor(address),
		Prefer:         strings.ToUpper(string(p.Prefer)),
		POP:            templates.HelpPOP{Offered: len(p.POP3) > 0, LeaveOnServer: p.POP.LeaveOnServer, DeleteAfterDays: p.POP.DeleteAfterDays, ExpireDays: p.POP.ExpireDays},
		HelpURL:        "/help/" + esc,
		CheckURL:       "/check/" + esc,
		JSONURL:        "/settings/" + esc,
		ProfileURL:     "/apple/mail.mobileconfig?email=" + url.QueryEscape(address),
		ThunderbirdURL: "/mail/config-v1.1.xml?emailaddress=" + url.QueryEscape(address),
	}
	if s.DisplayName == "" {
		s.DisplayName = p.Domain
	}
	for _, e := range p.Incoming() {
		s.Incoming = append(s.Incoming, helpServer(l, e))
	}
	for _, e := range p.Submission {
		s.Outgoing = append(s.Outgoing, helpServer(l, e))
	}
	use := p.Prefer
	if in, ok := p.Preferred(); ok {
		s.In = helpServer(l, in)
	}
	if e := p.Endpoints(autoconfig.Protocol(incoming)); len(e) > 0 && (incoming == "imap" || incoming == "pop3") {
		use, s.In = autoconfig.Protocol(incoming), helpServer(l, e[0])
	}
	if len(p.Submission) > 0 {
		s.Out = helpServer(l, p.Submission[0])
	}
	if e, ok := firstTLS(p.Endpoints(use)); ok {
		s.InTLS = helpServer(l, e)
	} else {
		s.InTLS = s.In
	}
	if e, ok := firstTLS(p.Submission); ok {
		s.OutTLS = helpServer(l, e)
	}
	if len(p.IMAP) > 0 {
		v := helpServer(l, p.IMAP[0])
		s.IMAP = &v
	}
	if len(p.POP3) > 0 {
		v := helpServer(l, p.POP3[0])
		s.POP3 = &v
	}
	s.Phone = s.In
	if s.IMAP != nil {
		s.Phone = *s.IMAP
	}
	return s
}

// settingsDoc is the JSON of /settings/{address}.
type settingsDoc struct {
	Address     string `json:"address"`
	Domain      string `json:"domain"`
	DisplayName string `json:"display_name"`
	// Username is what every client must type: the full address.
	Username string `json:"username"`
	// Prefer is the access protocol to use: "imap" or "pop3".
	Prefer string `json:"prefer"`
	// Incoming lists the access servers in the order to try them (the
	// preferred protocol first); Outgoing the submission servers.
	Incoming []settingsEndpoint `json:"incoming"`
	Outgoing []settingsEndpoint `json:"outgoing"`
	// OutgoingAuth is always true: submission requires a login with
	// the same username and password as incoming mail.
	OutgoingAuth bool     `json:"outgoing_requires_auth"`
	Auth         []string `json:"auth"`
	POP3         struct {
		// LeaveOnServer: POP3 clients keep a copy, deleting it
		// DeleteAfterDays after download.
		LeaveOnServer   bool `json:"leave_on_server"`
		DeleteAfterDays int  `json:"delete_after_days"`
	} `json:"pop3"`
	URLs struct {
		Thunderbird  string `json:"thunderbird"`
		AppleProfile string `json:"apple_profile"`
		Autodiscover string `json:"autodiscover"`
		Help         string `json:"help"`
	} `json:"urls"`
}

type settingsEndpoint struct {
	Protocol string `json:"protocol"`
	Host     string `json:"host"`
	Port     int    `json:"port"`
	Security string `json:"security"`
}

// settingsJSON is the policy of one address as JSON.
func (a *Pages) settingsJSON(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "private, no-cache")
	// The API stays English.
	r := a.helpAddress(a.pages.Localizer(templates.Lang), request.PathAddress(c))
	if r.code != 0 {
		return c.JSON(r.code, map[string]string{"error": r.msg})
	}
	p, address := r.policy, r.address.String()
	d := settingsDoc{Address: address, Domain: p.Domain, DisplayName: p.DisplayName, Username: p.UsernameFor(address),
		Prefer: string(p.Prefer), OutgoingAuth: true, Incoming: []settingsEndpoint{}, Outgoing: []settingsEndpoint{}, Auth: []string{}}
	conv := func(e autoconfig.Endpoint) settingsEndpoint {
		return settingsEndpoint{Protocol: string(e.Protocol), Host: e.Host, Port: e.Port, Security: string(e.Security)}
	}
	for _, e := range p.Incoming() {
		d.Incoming = append(d.Incoming, conv(e))
	}
	for _, e := range p.Submission {
		d.Outgoing = append(d.Outgoing, conv(e))
	}
	for _, m := range p.Auth {
		d.Auth = append(d.Auth, string(m))
	}
	d.POP3.LeaveOnServer, d.POP3.DeleteAfterDays = p.POP.LeaveOnServer, p.POP.DeleteAfterDays
	base := p.Web.BaseURL
	d.URLs.Thunderbird = base + "/mail/config-v1.1.xml?emailaddress=" + url.QueryEscape(address)
	d.URLs.AppleProfile = base + "/apple/mail.mobileconfig?email=" + url.QueryEscape(address)
	d.URLs.Autodiscover = base + "/Autodiscover/Autodiscover.xml"
	d.URLs.Help = base + helpURL(address)
	return c.JSON(http.StatusOK, d)
}
