package probe

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"mailsetup/autoconfig"
	"mailsetup/finding"
)

// NormalizeSecurity maps what clients call the connection security to
// the policy's words: "ssl", "tls", "ssl/tls" -> tls; "starttls" ->
// starttls; "none", "plain" -> none. Anything else is returned lower-cased.
func NormalizeSecurity(s string) string {
	switch v := strings.ToLower(strings.TrimSpace(s)); v {
	case "ssl", "tls", "ssl/tls", "implicit", "implicit-tls":
		return string(autoconfig.TLS)
	case "starttls", "stls":
		return string(autoconfig.STARTTLS)
	case "none", "plain", "no", "off":
		return string(autoconfig.None)
	default:
		return v
	}
}

// wellKnownSecurity is the mode a standard port speaks (RFC 8314).
func wellKnownSecurity(port int) string {
	switch port {
	case 465, 993, 995:
		return string(autoconfig.TLS)
	case 587, 143, 110:
		return string(autoconfig.STARTTLS)
	}
	return ""
}

// Compare checks what a client reports against the policy, field by
// field, and returns the findings (settings.ok when nothing is wrong).
// Fields left empty in c are not compared.
func Compare(p autoconfig.Policy, address string, c ClientSettings) []finding.Finding {
	return compareLive(p, address, c, liveModes{})
}

// liveModes is the connection security the reported incoming and
// outgoing ports were found to speak live ("" when not checked).
type liveModes struct{ in, out autoconfig.Security }

// compareLive is Compare where what a reported port speaks is known
// live: port.security-mismatch then names the mode the port really
// speaks, not the one the policy says it should.
func compareLive(p autoconfig.Policy, address string, c ClientSettings, live liveModes) []finding.Finding {
	var out []finding.Finding
	in := c.Incoming
	proto := strings.ToLower(strings.TrimSpace(in.Protocol))
	candidates := p.Incoming()
	switch proto {
	case "":
	case string(autoconfig.IMAP), string(autoconfig.POP3):
		candidates = p.Endpoints(autoconfig.Protocol(proto))
		if len(candidates) == 0 {
			want, _ := p.Preferred()
			out = append(out, finding.Reported("server.protocol-not-offered", finding.Vars{"value": strings.ToUpper(proto), "expected": strings.ToUpper(string(want.Protocol)), "address": address},
				fmt.Sprintf("incoming protocol %s; the policy offers %s", proto, describe(p.Incoming()))))
		}
	default:
		want, _ := p.Preferred()
		out = append(out, finding.Reported("server.protocol-not-offered", finding.Vars{"value": in.Protocol, "expected": strings.ToUpper(string(want.Protocol)), "address": address},
			fmt.Sprintf("incoming protocol %q", in.Protocol)))
		candidates = p.Incoming()
	}
	if len(candidates) > 0 {
		out = append(out, compareEndpoint(candidates, in.Host, in.Port, in.Security, live.in, finding.FieldInHost, finding.FieldInPort, finding.FieldInSec, "incoming")...)
	}
	if in.Username != "" {
		if f, bad := compareUsername(address, in.Username, finding.FieldInUser, "incoming"); bad {
			out = append(out, f)
		}
	}
	if in.LeaveOnServer != nil && *in.LeaveOnServer && proto != string(autoconfig.IMAP) {
		out = append(out, comparePOP(p.POP, in.DeleteAfterDays)...)
	}

	outg := c.Outgoing
	if outg.Auth != nil && !*outg.Auth {
		out = append(out, finding.Reported("smtp.auth-disabled", finding.Vars{"address": address}, `outgoing "requires authentication" is off`))
	}
	if len(p.Submission) > 0 {
		out = append(out, compareEndpoint(p.Submission, outg.Host, outg.Port, outg.Security, live.out, finding.FieldOutHost, finding.FieldOutPort, finding.FieldOutSec, "outgoing")...)
	}
	if outg.Username != "" && (outg.Auth == nil || *outg.Auth) {
		if f, bad := compareUsername(address, outg.Username, finding.FieldOutUser, "outgoing"); bad {
			out = append(out, f)
		}
	}
	out = finding.Merge(out)
	if len(out) == 0 {
		out = append(out, finding.New("settings.ok", nil, "every reported setting matches the policy"))
	}
	finding.Sort(out)
	return out
}

func describe(list []autoconfig.Endpoint) string {
	parts := make([]string, len(list))
	for i, e := range list {
		parts[i] = e.String()
	}
	return strings.Join(parts, ", ")
}

// compareEndpoint checks one server's host, port and security; live,
// when known, is what the port was found to speak.
func compareEndpoint(candidates []autoconfig.Endpoint, host string, port int, security string, live autoconfig.Security, fHost, fPort, fSec, side string) []finding.Finding {
	var out []finding.Finding
	host = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(host)), ".")
	sec := ""
	if security != "" {
		sec = NormalizeSecurity(security)
	}
	if host != "" && !slices.ContainsFunc(candidates, func(e autoconfig.Endpoint) bool { return e.Host == host }) {
		out = append(out, finding.Reported("server.wrong-host", finding.Vars{"field": fHost, "value": host, "expected": candidates[0].Host},
			fmt.Sprintf("%s host %q; the policy has %s", side, host, describe(candidates))))
	}
	if port == 0 {
		if sec == string(autoconfig.None) && !slices.ContainsFunc(candidates, func(e autoconfig.Endpoint) bool { return e.Security == autoconfig.None }) {
			out = append(out, finding.Reported("security.none", finding.Vars{"field": fSec, "value": side, "expected": securityLabel(string(candidates[0].Security))},
				fmt.Sprintf("%s connection security None", side)))
		}
		return out
	}
	i := slices.IndexFunc(candidates, func(e autoconfig.Endpoint) bool { return e.Port == port })
	speaks := "the port speaks"
	if live != "" {
		speaks = "the port was found to speak"
	}
	if i >= 0 {
		want := string(candidates[i].Security)
		if live != "" {
			// A port that speaks what the client says: the server is at
			// fault (server.tls-mode-mismatch of its connect step).
			want = string(live)
		}
		switch {
		case sec == "" || sec == want:
		case sec == string(autoconfig.None):
			out = append(out, finding.Reported("security.none", finding.Vars{"field": fSec, "value": side, "expected": securityLabel(want)},
				fmt.Sprintf("%s port %d with connection security None; %s %s", side, port, speaks, securityLabel(want))))
		default:
			out = append(out, finding.Reported("port.security-mismatch", finding.Vars{"field": fSec, "value": securityLabel(sec), "expected": securityLabel(want), "port": strconv.Itoa(port)},
				fmt.Sprintf("%s port %d with %s; %s %s", side, port, securityLabel(sec), speaks, securityLabel(want))))
		}
		return out
	}
	// A port the policy does not have. A standard port with the other
	// standard mode is the classic 465/587 confusion: say that first.
	wk := wellKnownSecurity(port)
	if live != "" {
		wk = string(live)
	}
	if sec != "" && wk != "" && sec != wk {
		out = append(out, finding.Reported("port.security-mismatch", finding.Vars{"field": fSec, "value": securityLabel(sec), "expected": securityLabel(wk), "port": strconv.Itoa(port)},
			fmt.Sprintf("%s port %d with %s; port %d speaks %s", side, port, securityLabel(sec), port, securityLabel(wk))))
	}
	want := candidates[0]
	if j := slices.IndexFunc(candidates, func(e autoconfig.Endpoint) bool { return string(e.Security) == sec }); j >= 0 {
		want = candidates[j]
	}
	ev := fmt.Sprintf("%s port %d; the policy has %s", side, port, describe(candidates))
	if port == 25 && side == "outgoing" {
		ev += "; port 25 is for server-to-server mail and many internet providers block it"
	}
	out = append(out, finding.Reported("server.wrong-port", finding.Vars{"field": fPort, "value": strconv.Itoa(port), "expected": fmt.Sprintf("%d (%s)", want.Port, securityLabel(string(want.Security)))}, ev))
	return out
}

// compareUsername reports a username that is not the full address.
func compareUsername(address, username, field, side string) (finding.Finding, bool) {
	u := strings.TrimSpace(username)
	if strings.EqualFold(u, address) {
		return finding.Finding{}, false
	}
	local, domain, _ := strings.Cut(address, "@")
	var form string
	switch {
	case strings.EqualFold(u, local):
		form = "the bare local part, without @" + domain
	case !strings.Contains(u, "@") && strings.ContainsAny(u, `/%\+:`):
		form = "a legacy user/domain form; the server only knows the full address"
	case strings.Contains(u, "@"):
		form = "a different address (an alias cannot log in)"
	default:
		form = "not an email address"
	}
	return finding.Reported("username.not-full-address", finding.Vars{"field": field, "value": u, "address": address},
		fmt.Sprintf("%s username %q: %s", side, u, form)), true
}

// comparePOP checks "leave a copy on the server" and "delete after".
func comparePOP(pol autoconfig.POP3Policy, deleteAfter *int) []finding.Finding {
	days := strconv.Itoa(pol.DeleteAfterDays)
	if !pol.LeaveOnServer {
		return []finding.Finding{finding.Reported("pop3.leave-against-policy", nil, "leave on server: yes; the policy: download and remove")}
	}
	if deleteAfter == nil || *deleteAfter <= 0 {
		f := finding.Reported("pop3.leave-forever", finding.Vars{"value": "no remove-after days", "expected": days},
			fmt.Sprintf("leave on server: yes, remove after: never; the policy: remove after %s days", days))
		if pol.ExpireDays > 0 {
			// The server's own expiry (EXPIRE) bounds the damage: mail
			// retrieved is removed after ExpireDays anyway.
			f.Severity = finding.Warning
			f.Evidence = append(f.Evidence, fmt.Sprintf("the server itself removes mail retrieved over POP3 more than %d days ago (CAPA EXPIRE %d), so it does not pile up for ever", pol.ExpireDays, pol.ExpireDays))
		}
		return []finding.Finding{f}
	}
	if d := *deleteAfter; d > pol.DeleteAfterDays {
		f := finding.Reported("pop3.delete-after-too-long", finding.Vars{"value": strconv.Itoa(d), "expected": days},
			fmt.Sprintf("remove after %d days; the policy: %s days (at most %d)", d, days, autoconfig.MaxDeleteAfterDays))
		if d > autoconfig.MaxDeleteAfterDays {
			f.Severity = finding.Critical
		}
		return []finding.Finding{f}
	}
	return nil
}

// securityLabel is how a dialog shows a security mode.
func securityLabel(s string) string { return autoconfig.Security(s).Label() }
