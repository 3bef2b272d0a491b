package selfhelp

import (
	"bytes"
	"errors"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"mailsetup/autoconfig"
	"mailsetup/finding"
	"mailsetup/probe"
	"mailsetup/probe/clients"
	"mailsetup/server/web/check"
	"mailsetup/server/web/request"
	"mailsetup/templates"
	"mailsetup/templates/lang"
)

// The customer's settings check. The form mirrors a client's account
// settings; the check runs the probe against the address's own domain
// policy, with AllowedHost narrowed to the hosts the configured policies
// name: the host names the customer types are compared, never dialled.
//
// The password, when given, is first verified through the mail
// server's authenticator (which counts failures in the login throttle
// shared with IMAP, POP3 and SMTP, against the customer's own IP); only
// a verified password goes to the probe's logins. A wrong one never
// reaches the mail servers from here, so the probe's loopback address
// never collects failures for everybody. The password is not logged,
// stored, or written back into the form.

// maxCheckForm bounds the form body.
const maxCheckForm = 16 << 10

// checkPage builds the check page of an address, or answers with the
// start page and the reason (ok false).
func (a *Pages) checkPage(c echo.Context) (templates.HelpCheckPage, autoconfig.Policy, bool, error) {
	d, pol, ok, err := a.helpPageFor(c, "title.check")
	if !ok {
		return templates.HelpCheckPage{}, pol, false, err
	}
	page := templates.HelpCheckPage{Frame: d.Frame, HelpAddress: d.HelpAddress,
		Check: templates.HelpCheck{PasswordAvailable: a.auth != nil && request.SecretsAllowed(c)}}
	page.CSRF = a.forms.Token(c)
	if a.auth != nil && !request.SecretsAllowed(c) {
		page.Check.SecureURL = pol.Web.BaseURL + "/check/" + url.PathEscape(page.Settings.Address)
	}
	return page, pol, true, nil
}

func (a *Pages) renderCheck(c echo.Context, code int, page templates.HelpCheckPage) error {
	return a.render(c, code, "no-store", func(b *bytes.Buffer) error { return a.pages.HelpCheck(b, page) })
}

// helpCheckForm shows the empty check form.
func (a *Pages) helpCheckForm(c echo.Context) error {
	page, pol, ok, err := a.checkPage(c)
	if !ok {
		return err
	}
	if c.QueryParam("clients") != "" {
		// What each mail program would set up: limited like a check.
		address := page.Settings.Address
		if wait, ok := a.allow(request.Remote(c), address); !ok {
			c.Response().Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
			page.Check.ClientsError = a.language(c).S("check.rate-limited", waitWords(a.language(c), wait))
			return a.renderCheck(c, http.StatusTooManyRequests, page)
		}
		rep, err := a.check.Clients(c.Request().Context(), address, pol)
		switch {
		case errors.Is(err, check.ErrBusy):
			c.Response().Header().Set("Retry-After", "60")
			page.Check.ClientsError = a.language(c).S("check.busy", nil)
			return a.renderCheck(c, http.StatusServiceUnavailable, page)
		case err != nil:
			page.Check.ClientsError = a.language(c).S("check.clients-failed", nil)
		}
		if rep != nil {
			localizeClients(a.language(c), rep)
		}
		page.Check.Clients = rep
	}
	return a.renderCheck(c, http.StatusOK, page)
}

// localizeClients puts the customer's copy of a clients report in the
// page's language: each finding's title, fix and evidence, with the
// mail programs' names and the settings they would set up in the
// page's words where a finding names them.
func localizeClients(l *lang.Localizer, rep *clients.ClientsReport) {
	localize := func(fs []finding.Finding, words func(string) string) {
		for i := range fs {
			fs[i].Title, fs[i].Fix = l.FindingIn(fs[i], words)
			fs[i].Evidence = l.Evidence(fs[i], words)
		}
	}
	localize(rep.Findings, nil)
	for i := range rep.Clients {
		v := &rep.Clients[i]
		said := map[string]string{v.Client: l.S("clients.name."+v.ID, nil)}
		for _, st := range []*clients.Settings{v.Expected, v.Settings} {
			if st != nil {
				said[st.String()] = clientSettingsWords(l, *st)
			}
		}
		localize(v.Findings, func(s string) string {
			if w, ok := said[s]; ok {
				return w
			}
			return s
		})
	}
}

// clientSettingsWords says what a mail program would set up, as the
// clients view does (clients.incoming, clients.outgoing,
// clients.username).
func clientSettingsWords(l *lang.Localizer, st clients.Settings) string {
	var parts []string
	for _, p := range []struct {
		id string
		e  *autoconfig.Endpoint
	}{{"clients.incoming", st.Incoming}, {"clients.outgoing", st.Outgoing}} {
		if p.e != nil {
			parts = append(parts, l.S(p.id, map[string]any{"Protocol": strings.ToUpper(string(p.e.Protocol)), "Host": p.e.Host, "Port": p.e.Port, "Security": securityWords(l, p.e.Security)}))
		}
	}
	if st.Username != "" {
		parts = append(parts, l.S("clients.username", st.Username))
	}
	return strings.Join(parts, ", ")
}

// helpCheckRun runs the check a customer posted.
func (a *Pages) helpCheckRun(c echo.Context) error {
	r := c.Request()
	r.Body = http.MaxBytesReader(c.Response(), r.Body, maxCheckForm)
	// The way back: this address's check page (the path's address is
	// checked on that page).
	back := "/check/" + url.PathEscape(request.PathAddress(c))
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return a.errorPage(c, http.StatusRequestEntityTooLarge, a.language(c).S("error.form-too-large", maxCheckForm), back)
		}
		return a.errorPage(c, http.StatusBadRequest, a.language(c).S("error.form-unreadable", nil), back)
	}
	if err := a.forms.Check(c); err != nil {
		var he *echo.HTTPError
		if errors.As(err, &he) && he.Code == http.StatusForbidden {
			return a.errorPage(c, http.StatusForbidden, a.language(c).S("error.form-expired", nil), back)
		}
		return err
	}
	page, pol, ok, err := a.checkPage(c)
	if !ok {
		return err
	}
	l := a.language(c)
	address := page.Settings.Address
	in := check.ParseForm(r.PostForm)
	ch := &page.Check
	ch.Form, ch.FieldErrors = in.Form, in.Errs
	for i, e := range ch.FieldErrors {
		ch.FieldErrors[i].Message = l.FieldError(e.Field, e.Kind, e.Value, e.Max, e.Message)
	}
	if len(in.Errs) > 0 {
		return a.renderCheck(c, http.StatusBadRequest, page)
	}
	ip := request.Remote(c)
	password := in.Password
	if password != "" && a.auth != nil {
		// A blocked address or IP is told at once; nothing is tried.
		if wait := a.auth.Throttle().Blocked(ip, address); wait > 0 {
			return a.throttled(c, page, wait)
		}
	}
	if wait, ok := a.allow(ip, address); !ok {
		c.Response().Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		ch.Notice = l.S("check.rate-limited", waitWords(l, wait))
		return a.renderCheck(c, http.StatusTooManyRequests, page)
	}

	run := a.streamCheck(c, page, check.Request{Address: address, Password: password, Client: &in.Client, Remote: ip, TLS: c.IsTLS(), Source: "self-help"})
	res, err := run.res, run.err
	// finish answers with the page: the rest of it when the steps went
	// out already, else the whole page with code.
	finish := func(code int) error {
		if run.streamed {
			ch.Steps, ch.Took = run.steps, l.S("check.took", l.Number(run.took.Seconds(), 1))
			return a.pages.HelpCheckFinish(c.Response(), page)
		}
		return a.renderCheck(c, code, page)
	}
	switch {
	case errors.Is(err, probe.ErrUnknownDomain) && !run.streamed:
		return a.errorPage(c, http.StatusNotFound, l.S("address.unknown-domain", page.Settings.Domain), "/")
	case errors.Is(err, check.ErrBusy) && !run.streamed:
		c.Response().Header().Set("Retry-After", "60")
		ch.Notice = l.S("check.busy", nil)
		return a.renderCheck(c, http.StatusServiceUnavailable, page)
	case err != nil && run.streamed:
		// Mid-page: the customer went away, or the check broke off.
		ch.Notice = l.S("check.broke-off", nil)
		return finish(http.StatusOK)
	case err != nil:
		return err // the customer went away (ctx), or a bad address: logged as an internal error
	case res.Throttled > 0:
		return a.throttled(c, page, res.Throttled)
	case res.Insecure:
		ch.Notice = l.S("check.password-insecure", nil)
	case res.NoAuth:
		ch.Notice = l.S("check.password-no-auth", nil)
	case res.AuthFailed:
		ch.Notice = l.S("check.password-failed", nil)
	}
	ch.PasswordChecked = res.PasswordChecked
	rep := res.Report

	ch.Done = true
	for _, f := range rep.Findings {
		title, fix := l.Finding(f)
		hf := templates.HelpFinding{ID: f.ID, Severity: f.Severity.String(), Title: title, Fix: fix, Evidence: l.Evidence(f, nil), Server: f.Fault == finding.FaultServer}
		switch {
		case f.Severity >= finding.Warning:
			ch.Problems = append(ch.Problems, hf)
		case f.Severity == finding.Info:
			ch.Notes = append(ch.Notes, hf)
		}
	}
	ch.Right = append(rightSettings(l, pol, address, in.Client), rightSteps(l, rep.Steps)...)
	ch.Wrong = wrongFields(l, pol, address, in.Client)
	return finish(http.StatusOK)
}

// checkRun is a check's outcome, and whether its page was streamed.
type checkRun struct {
	res      check.Result
	err      error
	streamed bool
	steps    int
	took     time.Duration
}

// streamCheck runs the check and, once the probe has started (and the
// password is not throttled, which answers 429), sends the page up to
// the list of steps and then each step as it finishes, flushed: a check
// takes seconds, and the customer sees it progress without JavaScript.
// The caller writes the rest (HelpCheckFinish) when streamed is set.
// The probe never waits for the page: a step that finds the buffer
// full is only in the result.
func (a *Pages) streamCheck(c echo.Context, page templates.HelpCheckPage, req check.Request) checkRun {
	started, steps := make(chan check.Result, 1), make(chan probe.Step, 64)
	req.OnStart = func(r check.Result) { started <- r }
	req.OnStep = func(s probe.Step) {
		select {
		case steps <- s:
		default:
		}
	}
	done := make(chan checkRun, 1)
	begin := time.Now()
	go func() {
		res, err := a.check.Run(c.Request().Context(), req)
		done <- checkRun{res: res, err: err}
	}()
	var run checkRun
	select {
	case st := <-started:
		if st.Throttled > 0 {
			return <-done
		}
	case run = <-done:
		return run
	}
	w := c.Response()
	pageHeaders(c, "no-store")
	w.Header().Set(echo.HeaderContentType, echo.MIMETextHTMLCharsetUTF8)
	w.WriteHeader(http.StatusOK)
	l := a.language(c)
	write := func(s probe.Step) {
		st := templates.HelpCheckStep{Lang: l.Code(), Text: stepWords(l, s), State: "ok"}
		switch {
		case s.NotFinished:
			st.State = "unfinished"
		case s.Severity >= finding.Warning || s.Error != "":
			st.State = "problem"
		}
		_ = a.pages.HelpCheckStep(w, st)
		run.steps++
		flush(w)
	}
	// A write error (the customer went away) ends the request's
	// context, which stops the check.
	_ = a.pages.HelpCheckStart(w, page)
	flush(w)
	for {
		select {
		case s := <-steps:
			write(s)
			continue
		case r := <-done:
			// Every step was sent before Run returned.
			for len(steps) > 0 {
				write(<-steps)
			}
			r.streamed, r.steps, r.took = true, run.steps, time.Since(begin)
			return r
		}
	}
}

// flush sends what was written so far; a writer that cannot flush
// sends it with the rest (echo's Flush would panic).
func flush(w *echo.Response) {
	w.Committed = true
	_ = http.NewResponseController(w.Writer).Flush()
}

// stepWords says what a check step did, for the list of steps.
func stepWords(l *lang.Localizer, s probe.Step) string {
	e := s.Endpoint
	var server map[string]any
	if e != nil {
		server = map[string]any{"Protocol": strings.ToUpper(string(e.Protocol)), "Server": e.HostPort(),
			"Security": securityWords(l, e.Security), "Port": e.Port}
	}
	switch {
	case s.Kind == probe.KindConnect && e != nil:
		return l.S("step.connect", server)
	case s.Kind == probe.KindLogin && e != nil:
		return l.S("step.login", server)
	case s.Kind == probe.KindSecurityMode && e != nil:
		return l.S("step.security-mode", server)
	case s.Kind == probe.KindCompare:
		return l.S("step.compare", nil)
	case s.Kind == probe.KindDNS:
		return l.S("step.dns", nil)
	case s.Kind == probe.KindAutoconfig:
		return l.S("step.autoconfig", nil)
	case s.Kind == probe.KindAutodiscover:
		return l.S("step.autodiscover", nil)
	case s.Kind == probe.KindDiscover:
		return l.S("step.discover", nil)
	}
	// A kind these words do not know: its name in English, else a
	// word for any step.
	return l.S("step.other", s.Name)
}

// throttled answers a check whose password may not be tried now.
func (a *Pages) throttled(c echo.Context, page templates.HelpCheckPage, wait time.Duration) error {
	c.Response().Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
	l := a.language(c)
	page.Check.Notice = l.S("check.throttled", waitWords(l, wait))
	return a.renderCheck(c, http.StatusTooManyRequests, page)
}

// rightSettings lists the parts of the reported settings that match
// the policy: each group of fields compared on its own.
func rightSettings(l *lang.Localizer, p autoconfig.Policy, address string, c probe.ClientSettings) []string {
	ok := func(cs probe.ClientSettings) bool {
		fs := probe.Compare(p, address, cs)
		return len(fs) == 1 && fs[0].ID == "settings.ok"
	}
	var out []string
	in, outg := c.Incoming, c.Outgoing
	if in.Protocol != "" || in.Host != "" || in.Port != 0 || in.Security != "" {
		if ok(probe.ClientSettings{Incoming: probe.Incoming{Protocol: in.Protocol, Host: in.Host, Port: in.Port, Security: in.Security}}) {
			out = append(out, l.S("right.incoming", serverWords(l, strings.ToUpper(in.Protocol), in.Host, in.Port, in.Security)))
		}
	}
	if in.Username != "" && ok(probe.ClientSettings{Incoming: probe.Incoming{Username: in.Username}}) {
		out = append(out, l.S("right.incoming-user", in.Username))
	}
	if in.LeaveOnServer != nil && ok(probe.ClientSettings{Incoming: probe.Incoming{Protocol: in.Protocol, LeaveOnServer: in.LeaveOnServer, DeleteAfterDays: in.DeleteAfterDays}}) {
		if *in.LeaveOnServer && in.DeleteAfterDays != nil {
			out = append(out, l.SN("right.leave", *in.DeleteAfterDays, nil))
		} else if !*in.LeaveOnServer {
			out = append(out, l.S("right.no-leave", nil))
		}
	}
	if outg.Host != "" || outg.Port != 0 || outg.Security != "" {
		if ok(probe.ClientSettings{Outgoing: probe.Outgoing{Host: outg.Host, Port: outg.Port, Security: outg.Security}}) {
			out = append(out, l.S("right.outgoing", serverWords(l, "SMTP", outg.Host, outg.Port, outg.Security)))
		}
	}
	if outg.Auth != nil && *outg.Auth {
		out = append(out, l.S("right.auth", nil))
	}
	if outg.Username != "" && (outg.Auth == nil || *outg.Auth) && ok(probe.ClientSettings{Outgoing: probe.Outgoing{Username: outg.Username}}) {
		out = append(out, l.S("right.outgoing-user", outg.Username))
	}
	return out
}

func serverWords(l *lang.Localizer, proto, host string, port int, security string) string {
	var parts []string
	for _, s := range []string{proto, host} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	if port != 0 {
		parts = append(parts, l.S("right.port", port))
	}
	if security != "" {
		parts = append(parts, securityWords(l, autoconfig.Security(security)))
	}
	return strings.Join(parts, ", ")
}

// rightSteps says in words which live checks passed, from each step's
// kind and endpoint (never its name, which is for people). Servers that
// all answered are one line.
func rightSteps(l *lang.Localizer, steps []probe.Step) []string {
	var out, servers []string
	connects, plain := 0, false
	for _, s := range steps {
		e := s.Endpoint
		isConnect := s.Kind == probe.KindConnect && e != nil
		if isConnect {
			connects++
			plain = plain || e.Security == autoconfig.None
		}
		if s.Severity != finding.OK || s.Error != "" {
			continue
		}
		switch {
		case isConnect:
			server := map[string]any{"Protocol": strings.ToUpper(string(e.Protocol)), "Server": e.HostPort(),
				"Security": securityWords(l, e.Security), "Certificate": e.Security != autoconfig.None}
			servers = append(servers, l.S("right.server-answers", server))
		case s.Kind == probe.KindLogin && e != nil:
			out = append(out, l.S("right.password-works", map[string]any{"Protocol": strings.ToUpper(string(e.Protocol)), "Server": e.HostPort()}))
		case s.Kind == probe.KindDNS:
			out = append(out, l.S("right.dns", nil))
		case s.Kind == probe.KindAutoconfig:
			out = append(out, l.S("right.autoconfig", nil))
		case s.Kind == probe.KindAutodiscover:
			out = append(out, l.S("right.autodiscover", nil))
		case s.Kind == probe.KindCompare:
		default:
			out = append(out, l.S("right.step-ok", stepWords(l, s)))
		}
	}
	if connects > 1 && len(servers) == connects {
		servers = []string{l.SN("right.all-servers", connects, map[string]any{"Certificate": !plain})}
	}
	return append(servers, out...)
}
