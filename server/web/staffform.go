package web

import (
	"fmt"
	"strings"

	"mailsetup/probe"
	"mailsetup/templates"
)

// The console's probe form has the self-help check's fields and is
// parsed by the same parseCheckForm: what the caller reads out of the
// client. Every field may stay empty ("not known") and is then not
// compared.

// fieldErrors joins a form's field errors into one message.
func fieldErrors(errs []templates.HelpFieldError) error {
	if len(errs) == 0 {
		return nil
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Message
	}
	return fmt.Errorf("%s", strings.Join(msgs, " "))
}

// reported returns the client settings of a parsed form, nil when
// nothing was reported (live checks only).
func reported(in checkInput) *probe.ClientSettings {
	if in.client == (probe.ClientSettings{}) {
		return nil
	}
	cs := in.client
	return &cs
}

// validateClient checks the API's client settings with the form's rules.
func validateClient(cs *probe.ClientSettings) error {
	var errs []templates.HelpFieldError
	fail := func(field, format string, args ...any) {
		errs = append(errs, templates.HelpFieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	checkProtoField(strings.ToLower(cs.Incoming.Protocol), "in_proto", "Incoming protocol", fail)
	checkHostField(cs.Incoming.Host, "in_host", "Incoming server", fail)
	checkHostField(cs.Outgoing.Host, "out_host", "Outgoing server", fail)
	for _, p := range []struct {
		field, label string
		port         int
	}{{"in_port", "Incoming port", cs.Incoming.Port}, {"out_port", "Outgoing port", cs.Outgoing.Port}} {
		if p.port < 0 || p.port > 65535 {
			fail(p.field, "%s: %d is not a port; want 1 to 65535.", p.label, p.port)
		}
	}
	checkSecurityField(strings.ToLower(cs.Incoming.Security), "in_security", "Incoming connection security", fail)
	checkSecurityField(strings.ToLower(cs.Outgoing.Security), "out_security", "Outgoing connection security", fail)
	checkUserField(cs.Incoming.Username, "in_user", "Username", fail)
	checkUserField(cs.Outgoing.Username, "out_user", "Outgoing username", fail)
	if d := cs.Incoming.DeleteAfterDays; d != nil && (*d < 0 || *d > maxDeleteAfter) {
		fail("delete_after", "Remove from server after: %d days; want 0 (never) to %d.", *d, maxDeleteAfter)
	}
	return fieldErrors(errs)
}
