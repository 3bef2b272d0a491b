package check

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode"

	"mailsetup/autoconfig"
	"mailsetup/probe"
	"mailsetup/templates"
)

// The client settings a customer or a caller reads out of the mail
// program, from the self-help check form, the console's probe form (the
// same fields) or the API's JSON, validated with one set of rules.
// Every field may stay empty ("not known") and is then not compared.

const (
	// maxPassword bounds the password field.
	maxPassword = 1024
	// maxDeleteAfter is the largest "remove after" days the form takes.
	maxDeleteAfter = 3650
)

// Input is the parsed form.
type Input struct {
	// Form is the form as typed (the password left out), to fill it in
	// again.
	Form     templates.HelpCheckForm
	Client   probe.ClientSettings
	Password string
	Errs     []templates.HelpFieldError
}

// ParseForm validates every field and converts the form into the
// probe's client settings. Fields left empty are not compared.
func ParseForm(v map[string][]string) Input {
	get := func(name string) string {
		if vs := v[name]; len(vs) > 0 {
			return strings.TrimSpace(vs[0])
		}
		return ""
	}
	var in Input
	fail := func(e templates.HelpFieldError, format string, args ...any) {
		e.Message = fmt.Sprintf(format, args...)
		in.Errs = append(in.Errs, e)
	}
	f := &in.Form
	f.InProto, f.InHost, f.InPort, f.InSecurity, f.InUser = strings.ToLower(get("in_proto")), get("in_host"), get("in_port"), strings.ToLower(get("in_security")), get("in_user")
	f.Leave, f.DeleteAfter = strings.ToLower(get("leave")), get("delete_after")
	f.OutHost, f.OutPort, f.OutSecurity, f.OutAuth, f.OutUser = get("out_host"), get("out_port"), strings.ToLower(get("out_security")), strings.ToLower(get("out_auth")), get("out_user")
	if vs := v["password"]; len(vs) > 0 {
		in.Password = vs[0] // as typed: spaces may be part of it
	}

	cl := &in.Client
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
			fail(templates.HelpFieldError{Field: "delete_after", Kind: templates.FieldErrDays, Value: f.DeleteAfter},
				"Remove from server after: %q is not a number of days; type a number like 7, or leave it empty if that box is not ticked.", f.DeleteAfter)
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
	if len(in.Password) > maxPassword {
		fail(templates.HelpFieldError{Field: "password", Kind: templates.FieldErrTooLong, Max: maxPassword},
			"Password: longer than %d characters; this is not a mail password.", maxPassword)
		in.Password = ""
	}
	return in
}

// failFunc records a field's error: its field, kind and value, and the
// English message.
type failFunc func(e templates.HelpFieldError, format string, args ...any)

// checkHostField validates a server name as typed: a host name or an IP
// address, without port or scheme. It returns the name to compare.
func checkHostField(v, field, label string, fail failFunc) string {
	if v == "" {
		return ""
	}
	h := strings.TrimSuffix(strings.ToLower(v), ".")
	if ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")); err == nil {
		return ip.String()
	}
	if err := autoconfig.ValidHost(h); err != nil {
		fail(templates.HelpFieldError{Field: field, Kind: templates.FieldErrHost, Value: v},
			"%s: %q is not a server name; type only the name, like mail.example.com, without http:// or a port (%v).", label, v, err)
		return ""
	}
	return h
}

// checkProtoField takes "", imap or pop3 (lower case).
func checkProtoField(v, field, label string, fail failFunc) string {
	switch v {
	case "", "imap", "pop3":
		return v
	}
	fail(templates.HelpFieldError{Field: field, Kind: templates.FieldErrChoice}, "%s: choose IMAP or POP3.", label)
	return ""
}

// checkYesNoField takes "" (not known), yes or no.
func checkYesNoField(v, field, label string, fail failFunc) *bool {
	switch v {
	case "":
		return nil
	case "yes", "no":
		b := v == "yes"
		return &b
	}
	fail(templates.HelpFieldError{Field: field, Kind: templates.FieldErrChoice}, "%s: choose yes or no.", label)
	return nil
}

func checkPortField(v, field, label string, fail failFunc) int {
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 65535 {
		fail(templates.HelpFieldError{Field: field, Kind: templates.FieldErrPort, Value: v}, "%s: %q is not a port; type a number from 1 to 65535, like 993.", label, v)
		return 0
	}
	return n
}

func checkSecurityField(v, field, label string, fail failFunc) string {
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
	fail(templates.HelpFieldError{Field: field, Kind: templates.FieldErrChoice}, "%s: choose SSL/TLS, STARTTLS or None.", label)
	return ""
}

func checkUserField(v, field, label string, fail failFunc) string {
	if len(v) > autoconfig.MaxAddressLength {
		fail(templates.HelpFieldError{Field: field, Kind: templates.FieldErrTooLong, Max: autoconfig.MaxAddressLength},
			"%s: longer than %d characters; type your email address.", label, autoconfig.MaxAddressLength)
		return ""
	}
	if strings.ContainsFunc(v, unicode.IsControl) {
		fail(templates.HelpFieldError{Field: field, Kind: templates.FieldErrControl}, "%s: contains a control character; type your email address.", label)
		return ""
	}
	return v
}

// FieldErrors joins a form's field errors into one message.
func FieldErrors(errs []templates.HelpFieldError) error {
	if len(errs) == 0 {
		return nil
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Message
	}
	return fmt.Errorf("%s", strings.Join(msgs, " "))
}

// Reported returns the client settings of a parsed form, nil when
// nothing was reported (live checks only).
func (in Input) Reported() *probe.ClientSettings {
	if in.Client == (probe.ClientSettings{}) {
		return nil
	}
	cs := in.Client
	return &cs
}

// ValidateClient checks the API's client settings with the form's rules.
func ValidateClient(cs *probe.ClientSettings) error {
	var errs []templates.HelpFieldError
	fail := func(e templates.HelpFieldError, format string, args ...any) {
		e.Message = fmt.Sprintf(format, args...)
		errs = append(errs, e)
	}
	checkProtoField(strings.ToLower(cs.Incoming.Protocol), "in_proto", "Incoming protocol", fail)
	checkHostField(cs.Incoming.Host, "in_host", "Incoming server", fail)
	checkHostField(cs.Outgoing.Host, "out_host", "Outgoing server", fail)
	for _, p := range []struct {
		field, label string
		port         int
	}{{"in_port", "Incoming port", cs.Incoming.Port}, {"out_port", "Outgoing port", cs.Outgoing.Port}} {
		if p.port < 0 || p.port > 65535 {
			fail(templates.HelpFieldError{Field: p.field, Kind: templates.FieldErrPort}, "%s: %d is not a port; want 1 to 65535.", p.label, p.port)
		}
	}
	checkSecurityField(strings.ToLower(cs.Incoming.Security), "in_security", "Incoming connection security", fail)
	checkSecurityField(strings.ToLower(cs.Outgoing.Security), "out_security", "Outgoing connection security", fail)
	checkUserField(cs.Incoming.Username, "in_user", "Username", fail)
	checkUserField(cs.Outgoing.Username, "out_user", "Outgoing username", fail)
	if d := cs.Incoming.DeleteAfterDays; d != nil && (*d < 0 || *d > maxDeleteAfter) {
		fail(templates.HelpFieldError{Field: "delete_after", Kind: templates.FieldErrDays}, "Remove from server after: %d days; want 0 (never) to %d.", *d, maxDeleteAfter)
	}
	return FieldErrors(errs)
}
