package selfhelp

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"mailsetup/autoconfig"
	"mailsetup/probe"
	"mailsetup/templates"
	"mailsetup/templates/lang"
)

// wrongFields marks the fields of the re-filled check form whose value
// is wrong, each with the right value beside it. Each field is compared
// on its own (probe.Compare with only that field, and the protocol or
// port it depends on when those are right), so that one wrong value
// marks one field.
func wrongFields(l *lang.Localizer, p autoconfig.Policy, address string, c probe.ClientSettings) []templates.HelpWrongField {
	ok := func(cs probe.ClientSettings) bool {
		fs := probe.Compare(p, address, cs)
		return len(fs) == 1 && fs[0].ID == "settings.ok"
	}
	var out []templates.HelpWrongField
	mark := func(field, right string) { out = append(out, templates.HelpWrongField{Field: field, Right: right}) }
	in, outg := c.Incoming, c.Outgoing

	// Incoming: the protocol first; the server fields are compared
	// within it when it is offered, else against every incoming server.
	proto := strings.ToLower(in.Protocol)
	if proto != "" && !ok(probe.ClientSettings{Incoming: probe.Incoming{Protocol: proto}}) {
		want, _ := p.Preferred()
		mark("in_proto", strings.ToUpper(string(want.Protocol)))
		proto = ""
	}
	cands := p.Incoming()
	if proto != "" {
		cands = p.Endpoints(autoconfig.Protocol(proto))
	}
	endpoint(l, ok, mark, "in_", cands, in.Host, in.Port, in.Security, func(h string, port int, sec string) probe.ClientSettings {
		return probe.ClientSettings{Incoming: probe.Incoming{Protocol: proto, Host: h, Port: port, Security: sec}}
	})
	if in.Username != "" && !ok(probe.ClientSettings{Incoming: probe.Incoming{Username: in.Username}}) {
		mark("in_user", p.UsernameFor(address))
	}
	if in.LeaveOnServer != nil && !ok(probe.ClientSettings{Incoming: probe.Incoming{Protocol: proto, LeaveOnServer: in.LeaveOnServer, DeleteAfterDays: in.DeleteAfterDays}}) {
		if p.POP.LeaveOnServer {
			mark("delete_after", strconv.Itoa(p.POP.DeleteAfterDays))
		} else {
			mark("leave", l.S("wrong.no-not-ticked", nil))
		}
	}

	endpoint(l, ok, mark, "out_", p.Submission, outg.Host, outg.Port, outg.Security, func(h string, port int, sec string) probe.ClientSettings {
		return probe.ClientSettings{Outgoing: probe.Outgoing{Host: h, Port: port, Security: sec}}
	})
	if outg.Auth != nil && !*outg.Auth {
		mark("out_auth", l.S("wrong.yes-ticked", nil))
	}
	if outg.Username != "" && (outg.Auth == nil || *outg.Auth) && !ok(probe.ClientSettings{Outgoing: probe.Outgoing{Username: outg.Username}}) {
		mark("out_user", p.UsernameFor(address))
	}
	return out
}

// endpoint marks the host, port and security fields (prefix "in_" or
// "out_") of one server against its candidates.
func endpoint(l *lang.Localizer, ok func(probe.ClientSettings) bool, mark func(field, right string), prefix string, cands []autoconfig.Endpoint,
	host string, port int, security string, cs func(host string, port int, security string) probe.ClientSettings) {
	if len(cands) == 0 {
		return
	}
	if host != "" && !ok(cs(host, 0, "")) {
		mark(prefix+"host", cands[0].Host)
	}
	portOK := port != 0 && ok(cs("", port, ""))
	if port != 0 && !portOK {
		// The port of the security the customer chose, if there is one.
		sec := probe.NormalizeSecurity(security)
		var ports []string
		for _, e := range cands {
			if string(e.Security) == sec {
				ports = []string{strconv.Itoa(e.Port)}
				break
			}
			ports = append(ports, fmt.Sprintf("%d (%s)", e.Port, securityWords(l, e.Security)))
		}
		mark(prefix+"port", l.Or(ports))
	}
	if security == "" {
		return
	}
	at := 0
	if portOK {
		at = port
	}
	if !ok(cs("", at, security)) {
		want := cands[0].Security
		if i := slices.IndexFunc(cands, func(e autoconfig.Endpoint) bool { return e.Port == port }); i >= 0 {
			want = cands[i].Security
		}
		mark(prefix+"security", securityWords(l, want))
	}
}
