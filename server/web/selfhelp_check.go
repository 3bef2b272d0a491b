package web

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/labstack/echo/v4"

	"mailsetup/autoconfig"
	"mailsetup/finding"
	"mailsetup/probe"
	"mailsetup/server/auth"
	"mailsetup/templates"
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

const (
	// checkTimeout bounds one check: the page must answer within the
	// HTTP write timeout (10 s by default).
	checkTimeout     = 8 * time.Second
	checkStepTimeout = 5 * time.Second
	// maxCheckForm bounds the form body.
	maxCheckForm = 16 << 10
	// maxPassword bounds the password field.
	maxPassword = 1024
	// maxDeleteAfter is the largest "remove after" days the form takes.
	maxDeleteAfter = 3650
)

// checkPage builds the check page of an address, or answers with the
// start page and the reason (ok false).
func (a *App) checkPage(c echo.Context) (templates.HelpPage, autoconfig.Policy, bool, error) {
	page, pol, ok, err := a.helpPageFor(c, "Check the settings of %s")
	if !ok {
		return page, pol, false, err
	}
	page.Check = &templates.HelpCheck{CSRF: a.formToken(c), PasswordAvailable: a.auth != nil && secretsAllowed(c)}
	if a.auth != nil && !secretsAllowed(c) {
		page.Check.SecureURL = pol.Web.BaseURL + "/check/" + url.PathEscape(page.Settings.Address)
	}
	return page, pol, true, nil
}

func (a *App) renderCheck(c echo.Context, code int, page templates.HelpPage) error {
	return a.render(c, code, "no-store", func(b *bytes.Buffer) error { return a.pages.HelpCheck(b, page) })
}

// helpCheckForm shows the empty check form.
func (a *App) helpCheckForm(c echo.Context) error {
	page, _, ok, err := a.checkPage(c)
	if !ok {
		return err
	}
	return a.renderCheck(c, http.StatusOK, page)
}

// helpCheckRun runs the check a customer posted.
func (a *App) helpCheckRun(c echo.Context) error {
	r := c.Request()
	r.Body = http.MaxBytesReader(c.Response(), r.Body, maxCheckForm)
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return textError(c, http.StatusRequestEntityTooLarge, "the form is larger than %d bytes", maxCheckForm)
		}
		return textError(c, http.StatusBadRequest, "the form could not be read: send it from the check page")
	}
	if err := a.checkFormToken(c); err != nil {
		return err
	}
	page, pol, ok, err := a.checkPage(c)
	if !ok {
		return err
	}
	address := page.Settings.Address
	in := parseCheckForm(r.PostForm)
	ch := page.Check
	ch.Form, ch.FieldErrors = in.form, in.errs
	if len(in.errs) > 0 {
		return a.renderCheck(c, http.StatusBadRequest, page)
	}
	ip := remoteAddr(c)
	password := in.password
	if password != "" && a.auth != nil {
		// A blocked address or IP is told at once; nothing is tried.
		if wait := a.auth.Throttle().Blocked(ip, address); wait > 0 {
			return a.throttled(c, page, wait)
		}
	}
	if wait, ok := a.checks.allow(ip, address); !ok {
		c.Response().Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		ch.Notice = fmt.Sprintf("You have run many checks in a short time. Please try again in %s.", auth.WaitWords(wait))
		return a.renderCheck(c, http.StatusTooManyRequests, page)
	}

	res, err := a.checkSettings(r.Context(), checkRequest{Address: address, Password: password, Client: &in.client, Remote: ip, TLS: c.IsTLS(), Source: "self-help"})
	switch {
	case errors.Is(err, probe.ErrUnknownDomain):
		return textError(c, http.StatusNotFound, "no settings for %s", address)
	case errors.Is(err, errChecksBusy):
		c.Response().Header().Set("Retry-After", "60")
		ch.Notice = "Many people are checking their settings right now. Please try again in a minute."
		return a.renderCheck(c, http.StatusServiceUnavailable, page)
	case err != nil:
		return err // the customer went away (ctx), or a bad address: logged as an internal error
	case res.Throttled > 0:
		return a.throttled(c, page, res.Throttled)
	case res.Insecure:
		ch.Notice = "Your password was not used: this page came over an unencrypted connection. Open the check over HTTPS to test the password. The rest of the check ran without it."
	case res.NoAuth:
		ch.Notice = "Your password was not tested: this server cannot check passwords. The rest of the check ran without it."
	case res.AuthFailed:
		ch.Notice = "Your password could not be tested just now. The rest of the check ran without it."
	}
	ch.PasswordChecked = res.PasswordChecked
	rep := res.Report

	ch.Done = true
	for _, f := range rep.Findings {
		hf := templates.HelpFinding{ID: f.ID, Severity: f.Severity.String(), Title: f.Title, Fix: f.Fix, Evidence: f.Evidence}
		switch {
		case f.Severity >= finding.Warning:
			ch.Problems = append(ch.Problems, hf)
		case f.Severity == finding.Info:
			ch.Notes = append(ch.Notes, hf)
		}
	}
	ch.Right = append(rightSettings(pol, address, in.client), rightSteps(rep.Steps)...)
	return a.renderCheck(c, http.StatusOK, page)
}

// throttled answers a check whose password may not be tried now.
func (a *App) throttled(c echo.Context, page templates.HelpPage, wait time.Duration) error {
	c.Response().Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
	page.Check.Notice = fmt.Sprintf("Too many failed logins for this address or from your network: passwords are not tested for a while. Try again in %s, or check your settings now without the password. Also correct the password on every device that checks this mailbox: an old device with a wrong password keeps the account blocked.", auth.WaitWords(wait))
	return a.renderCheck(c, http.StatusTooManyRequests, page)
}

// checkInput is the parsed form.
type checkInput struct {
	form     templates.HelpCheckForm
	client   probe.ClientSettings
	password string
	errs     []templates.HelpFieldError
}

// parseCheckForm validates every field and converts the form into the
// probe's client settings. Fields left empty are not compared.
func parseCheckForm(v map[string][]string) checkInput {
	get := func(name string) string {
		if vs := v[name]; len(vs) > 0 {
			return strings.TrimSpace(vs[0])
		}
		return ""
	}
	var in checkInput
	fail := func(field, format string, args ...any) {
		in.errs = append(in.errs, templates.HelpFieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	f := &in.form
	f.InProto, f.InHost, f.InPort, f.InSecurity, f.InUser = strings.ToLower(get("in_proto")), get("in_host"), get("in_port"), strings.ToLower(get("in_security")), get("in_user")
	f.Leave, f.DeleteAfter = strings.ToLower(get("leave")), get("delete_after")
	f.OutHost, f.OutPort, f.OutSecurity, f.OutAuth, f.OutUser = get("out_host"), get("out_port"), strings.ToLower(get("out_security")), strings.ToLower(get("out_auth")), get("out_user")
	if vs := v["password"]; len(vs) > 0 {
		in.password = vs[0] // as typed: spaces may be part of it
	}

	cl := &in.client
	cl.Incoming.Protocol = checkProtoField(f.InProto, "in_proto", "Account type", fail)
	cl.Incoming.Host = checkHostField(f.InHost, "in_host", "Incoming server", fail)
	cl.Incoming.Port = checkPortField(f.InPort, "in_port", "Incoming port", fail)
	cl.Incoming.Security = checkSecurityField(f.InSecurity, "in_security", "Incoming connection security", fail)
	cl.Incoming.Username = checkUserField(f.InUser, "in_user", "Username", fail)
	cl.Incoming.LeaveOnServer = checkYesNoField(f.Leave, "leave", "Leave a copy of messages on the server", fail)
	days := 0
	if f.DeleteAfter != "" {
		n, err := strconv.Atoi(f.DeleteAfter)
		if err != nil || n < 0 || n > maxDeleteAfter {
			fail("delete_after", "Remove from server after: %q is not a number of days; type a number like 7, or leave it empty if that box is not ticked.", f.DeleteAfter)
		}
		days = n
	}
	if cl.Incoming.LeaveOnServer != nil && *cl.Incoming.LeaveOnServer {
		cl.Incoming.DeleteAfterDays = &days
	}
	cl.Outgoing.Host = checkHostField(f.OutHost, "out_host", "Outgoing server", fail)
	cl.Outgoing.Port = checkPortField(f.OutPort, "out_port", "Outgoing port", fail)
	cl.Outgoing.Security = checkSecurityField(f.OutSecurity, "out_security", "Outgoing connection security", fail)
	cl.Outgoing.Auth = checkYesNoField(f.OutAuth, "out_auth", "Outgoing server requires authentication", fail)
	cl.Outgoing.Username = checkUserField(f.OutUser, "out_user", "Outgoing username", fail)
	if len(in.password) > maxPassword {
		fail("password", "Password: longer than %d characters; this is not a mail password.", maxPassword)
		in.password = ""
	}
	return in
}

// checkHostField validates a server name as typed: a host name or an IP
// address, without port or scheme. It returns the name to compare.
func checkHostField(v, field, label string, fail func(string, string, ...any)) string {
	if v == "" {
		return ""
	}
	h := strings.TrimSuffix(strings.ToLower(v), ".")
	if ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")); err == nil {
		return ip.String()
	}
	if err := autoconfig.ValidHost(h); err != nil {
		fail(field, "%s: %q is not a server name; type only the name, like mail.example.com, without http:// or a port (%v).", label, v, err)
		return ""
	}
	return h
}

// checkProtoField takes "", imap or pop3 (lower case).
func checkProtoField(v, field, label string, fail func(string, string, ...any)) string {
	switch v {
	case "", "imap", "pop3":
		return v
	}
	fail(field, "%s: choose IMAP or POP3.", label)
	return ""
}

// checkYesNoField takes "" (not known), yes or no.
func checkYesNoField(v, field, label string, fail func(string, string, ...any)) *bool {
	switch v {
	case "":
		return nil
	case "yes", "no":
		b := v == "yes"
		return &b
	}
	fail(field, "%s: choose yes or no.", label)
	return nil
}

func checkPortField(v, field, label string, fail func(string, string, ...any)) int {
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 65535 {
		fail(field, "%s: %q is not a port; type a number from 1 to 65535, like 993.", label, v)
		return 0
	}
	return n
}

func checkSecurityField(v, field, label string, fail func(string, string, ...any)) string {
	switch v {
	case "":
		return ""
	case "tls", "ssl", "ssl/tls":
		return string(autoconfig.TLS)
	case "starttls":
		return string(autoconfig.STARTTLS)
	case "none":
		return string(autoconfig.None)
	}
	fail(field, "%s: choose SSL/TLS, STARTTLS or None.", label)
	return ""
}

func checkUserField(v, field, label string, fail func(string, string, ...any)) string {
	if len(v) > autoconfig.MaxAddressLength {
		fail(field, "%s: longer than %d characters; type your email address.", label, autoconfig.MaxAddressLength)
		return ""
	}
	if strings.ContainsFunc(v, unicode.IsControl) {
		fail(field, "%s: contains a control character; type your email address.", label)
		return ""
	}
	return v
}

// rightSettings lists the parts of the reported settings that match
// the policy: each group of fields compared on its own.
func rightSettings(p autoconfig.Policy, address string, c probe.ClientSettings) []string {
	ok := func(cs probe.ClientSettings) bool {
		fs := probe.Compare(p, address, cs)
		return len(fs) == 1 && fs[0].ID == "settings.ok"
	}
	var out []string
	in, outg := c.Incoming, c.Outgoing
	if in.Protocol != "" || in.Host != "" || in.Port != 0 || in.Security != "" {
		if ok(probe.ClientSettings{Incoming: probe.Incoming{Protocol: in.Protocol, Host: in.Host, Port: in.Port, Security: in.Security}}) {
			out = append(out, "Incoming server: "+serverWords(strings.ToUpper(in.Protocol), in.Host, in.Port, in.Security))
		}
	}
	if in.Username != "" && ok(probe.ClientSettings{Incoming: probe.Incoming{Username: in.Username}}) {
		out = append(out, "Incoming username: "+in.Username)
	}
	if in.LeaveOnServer != nil && ok(probe.ClientSettings{Incoming: probe.Incoming{Protocol: in.Protocol, LeaveOnServer: in.LeaveOnServer, DeleteAfterDays: in.DeleteAfterDays}}) {
		if *in.LeaveOnServer && in.DeleteAfterDays != nil {
			out = append(out, fmt.Sprintf("Leave a copy on the server, removed after %d days", *in.DeleteAfterDays))
		} else if !*in.LeaveOnServer {
			out = append(out, "No copy left on the server")
		}
	}
	if outg.Host != "" || outg.Port != 0 || outg.Security != "" {
		if ok(probe.ClientSettings{Outgoing: probe.Outgoing{Host: outg.Host, Port: outg.Port, Security: outg.Security}}) {
			out = append(out, "Outgoing server: "+serverWords("SMTP", outg.Host, outg.Port, outg.Security))
		}
	}
	if outg.Auth != nil && *outg.Auth {
		out = append(out, "Outgoing server requires authentication: yes")
	}
	if outg.Username != "" && (outg.Auth == nil || *outg.Auth) && ok(probe.ClientSettings{Outgoing: probe.Outgoing{Username: outg.Username}}) {
		out = append(out, "Outgoing username: "+outg.Username)
	}
	return out
}

func serverWords(proto, host string, port int, security string) string {
	var parts []string
	for _, s := range []string{proto, host} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	if port != 0 {
		parts = append(parts, "port "+strconv.Itoa(port))
	}
	if security != "" {
		parts = append(parts, autoconfig.Security(security).Label())
	}
	return strings.Join(parts, ", ")
}

// rightSteps says in words which live checks passed, from each step's
// kind and endpoint (never its name, which is for people). Servers that
// all answered are one line.
func rightSteps(steps []probe.Step) []string {
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
			servers = append(servers, fmt.Sprintf("The %s server %s answers (%s)%s", strings.ToUpper(string(e.Protocol)), e.HostPort(), e.Security.Label(), certWords(e.Security)))
		case s.Kind == probe.KindLogin && e != nil:
			out = append(out, fmt.Sprintf("Your password works on the %s server %s", strings.ToUpper(string(e.Protocol)), e.HostPort()))
		case s.Kind == probe.KindDNS:
			out = append(out, "The domain's DNS records for automatic setup are right")
		case s.Kind == probe.KindAutoconfig:
			out = append(out, "Automatic setup for Thunderbird and similar programs is published correctly")
		case s.Kind == probe.KindAutodiscover:
			out = append(out, "Automatic setup for Outlook is published correctly")
		case s.Kind == probe.KindCompare:
		default:
			out = append(out, s.Name+": OK")
		}
	}
	if connects > 1 && len(servers) == connects {
		line := fmt.Sprintf("All %d mail servers answer, with valid certificates", connects)
		if plain {
			line = fmt.Sprintf("All %d mail servers answer", connects)
		}
		servers = []string{line}
	}
	return append(servers, out...)
}

func certWords(security autoconfig.Security) string {
	if security == autoconfig.None {
		return ""
	}
	return " with a valid certificate"
}
