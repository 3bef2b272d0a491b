package web

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"mailsetup/autoconfig"
	"mailsetup/probe"
)

// probeForm is the console's probe form: what the caller reads out of
// the client's account settings. Every field may stay empty ("the
// caller does not know"), and is then not compared.
type probeForm struct {
	InProtocol, InHost, InPort, InSecurity, InUsername string
	// InLeave and OutAuth are "", "yes" or "no".
	InLeave, InDeleteDays                               string
	OutHost, OutPort, OutSecurity, OutAuth, OutUsername string
}

func defaultProbeForm(string) probeForm { return probeForm{} }

func probeFormFrom(c echo.Context) probeForm {
	v := func(k string) string { return strings.TrimSpace(c.FormValue(k)) }
	return probeForm{
		InProtocol: v("in_protocol"), InHost: v("in_host"), InPort: v("in_port"), InSecurity: v("in_security"),
		InUsername: v("in_username"), InLeave: v("in_leave"), InDeleteDays: v("in_delete_days"),
		OutHost: v("out_host"), OutPort: v("out_port"), OutSecurity: v("out_security"), OutAuth: v("out_auth"),
		OutUsername: v("out_username"),
	}
}

// settings validates the form; the error names the field and the value.
func (f probeForm) settings() (*probe.ClientSettings, error) {
	var cs probe.ClientSettings
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }

	switch f.InProtocol {
	case "", "imap", "pop3":
		cs.Incoming.Protocol = f.InProtocol
	default:
		bad("Incoming protocol %q: choose IMAP or POP3", f.InProtocol)
	}
	host := func(label, v string) string {
		if v == "" {
			return ""
		}
		if err := autoconfig.ValidHost(strings.ToLower(v)); err != nil {
			bad("%s %q: %v", label, v, err)
			return ""
		}
		return strings.ToLower(v)
	}
	port := func(label, v string) int {
		if v == "" {
			return 0
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 65535 {
			bad("%s %q: want a number from 1 to 65535", label, v)
			return 0
		}
		return n
	}
	security := func(label, v string) string {
		switch strings.ToLower(v) {
		case "", "ssl", "tls", "starttls", "none":
			return strings.ToLower(v)
		}
		bad("%s %q: choose SSL/TLS, STARTTLS or None", label, v)
		return ""
	}
	yesNo := func(label, v string) *bool {
		switch v {
		case "":
			return nil
		case "yes", "no":
			b := v == "yes"
			return &b
		}
		bad("%s %q: choose yes or no", label, v)
		return nil
	}
	cs.Incoming.Host = host("Incoming server", f.InHost)
	cs.Incoming.Port = port("Incoming port", f.InPort)
	cs.Incoming.Security = security("Incoming connection security", f.InSecurity)
	cs.Incoming.Username = f.InUsername
	cs.Incoming.LeaveOnServer = yesNo("Leave a copy on the server", f.InLeave)
	if f.InDeleteDays != "" {
		n, err := strconv.Atoi(f.InDeleteDays)
		if err != nil || n < 0 || n > 3650 {
			bad("Delete from server after %q days: want a number from 0 (never) to 3650", f.InDeleteDays)
		} else {
			cs.Incoming.DeleteAfterDays = &n
		}
	}
	cs.Outgoing.Host = host("Outgoing server", f.OutHost)
	cs.Outgoing.Port = port("Outgoing port", f.OutPort)
	cs.Outgoing.Security = security("Outgoing connection security", f.OutSecurity)
	cs.Outgoing.Auth = yesNo("Outgoing server requires authentication", f.OutAuth)
	cs.Outgoing.Username = f.OutUsername
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	if cs == (probe.ClientSettings{}) {
		return nil, nil // nothing reported: live checks only
	}
	return &cs, nil
}
