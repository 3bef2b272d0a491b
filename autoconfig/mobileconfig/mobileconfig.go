package mobileconfig

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"

	"mailsetup/autoconfig"
)

// ContentType is the media type Apple devices install a profile from.
const ContentType = "application/x-apple-aspen-config"

// ErrMalformed is wrapped by every error Parse returns: the data is not a
// configuration profile with a usable com.apple.mail.managed payload.
var ErrMalformed = errors.New("not a usable Apple mail configuration profile")

// ErrWrongDomain is wrapped by Render's error when the address is not in
// the policy's domain.
var ErrWrongDomain = errors.New("email address is not in the policy's domain")

// Payload types and values of the Mail payload.
const (
	profilePayloadType = "Configuration"
	mailPayloadType    = "com.apple.mail.managed"
	accountTypeIMAP    = "EmailTypeIMAP"
	accountTypePOP     = "EmailTypePOP"
	authPassword       = "EmailAuthPassword"
)

// identifierPart is the component after the reversed domain in every
// PayloadIdentifier this package writes.
const identifierPart = "mailsetup"

// Render returns the XML property list of a configuration profile that
// sets up address (which must be in p.Domain) in Apple Mail with p's
// settings. The output is deterministic: the same policy and address give
// the same bytes.
//
// The profile carries:
//
//   - PayloadUUIDs derived from the lower-cased address (see PayloadUUIDs)
//     and a PayloadIdentifier of the form "com.example.mailsetup.<UUID>":
//     downloading the profile again for the same address replaces the
//     installed one, while a second account of the same domain on the same
//     device gets a profile of its own.
//   - EmailAccountType EmailTypeIMAP or EmailTypePOP after p.Prefer.
//   - The incoming server: the first endpoint of the preferred protocol
//     that uses implicit TLS, else its first endpoint. The outgoing
//     server: likewise from p.Submission. IncomingMailServerUseSSL and
//     OutgoingMailServerUseSSL are true only for autoconfig.TLS; false
//     means that Apple Mail connects in the clear and upgrades with
//     STARTTLS if the server offers it (Apple has no key to require
//     STARTTLS).
//   - Both usernames set to the full address, EmailAuthPassword for both
//     servers and OutgoingPasswordSameAsIncomingPassword, so the user types
//     the password once while installing. No password is ever written.
//   - EmailAccountDescription and PayloadOrganization set to
//     p.DisplayName, PayloadDisplayName "<DisplayName> mail".
//
// EmailAccountName, the sender's full name shown in sent messages, is
// left out: the service does not know it, and the local part ("john.doe")
// would be a worse sender name than none. The user sets it in Mail's
// account settings.
//
// POP3 retention (leave on server, delete after N days) cannot be
// expressed in a profile and is not written.
func Render(p autoconfig.Policy, address string) ([]byte, error) {
	addr, err := autoconfig.ParseAddress(address)
	if err != nil {
		return nil, fmt.Errorf("mobileconfig: %w", err)
	}
	if err := autoconfig.ValidDomain(p.Domain); err != nil {
		return nil, fmt.Errorf("mobileconfig: policy domain: %v", err)
	}
	if addr.Domain != p.Domain {
		return nil, fmt.Errorf("mobileconfig: %w: %s is not in %s", ErrWrongDomain, addr, p.Domain)
	}
	in, out, err := servers(p)
	if err != nil {
		return nil, fmt.Errorf("mobileconfig: policy for %s: %w", p.Domain, err)
	}

	email := addr.String()
	name := displayName(p)
	profileUUID, mailUUID := PayloadUUIDs(email)
	profileID := identifier(p.Domain, profileUUID)

	accountType := accountTypeIMAP
	if in.Protocol == autoconfig.POP3 {
		accountType = accountTypePOP
	}
	var mail dict
	mail.add("PayloadType", mailPayloadType)
	mail.add("PayloadVersion", 1)
	mail.add("PayloadIdentifier", profileID+".mail")
	mail.add("PayloadUUID", mailUUID)
	mail.add("PayloadDisplayName", name+" mail account")
	mail.add("EmailAccountType", accountType)
	mail.add("EmailAccountDescription", name)
	mail.add("EmailAddress", email)
	mail.add("IncomingMailServerHostName", in.Host)
	mail.add("IncomingMailServerPortNumber", in.Port)
	mail.add("IncomingMailServerUseSSL", in.Security == autoconfig.TLS)
	mail.add("IncomingMailServerUsername", email)
	mail.add("IncomingMailServerAuthentication", authPassword)
	mail.add("OutgoingMailServerHostName", out.Host)
	mail.add("OutgoingMailServerPortNumber", out.Port)
	mail.add("OutgoingMailServerUseSSL", out.Security == autoconfig.TLS)
	mail.add("OutgoingMailServerUsername", email)
	mail.add("OutgoingMailServerAuthentication", authPassword)
	mail.add("OutgoingPasswordSameAsIncomingPassword", true)

	var profile dict
	profile.add("PayloadType", profilePayloadType)
	profile.add("PayloadVersion", 1)
	profile.add("PayloadIdentifier", profileID)
	profile.add("PayloadUUID", profileUUID)
	profile.add("PayloadDisplayName", name+" mail")
	profile.add("PayloadOrganization", name)
	profile.add("PayloadDescription", description(name, email, in, out, p.POP))
	profile.add("PayloadContent", []any{mail})
	return encodePlist(profile)
}

// displayName is the provider name shown to the user.
func displayName(p autoconfig.Policy) string {
	if name := strings.TrimSpace(p.DisplayName); name != "" {
		return name
	}
	return p.Domain
}

// description is the profile's PayloadDescription, shown before install.
// For POP3 it tells the user the retention setting the profile cannot set.
func description(name, email string, in, out autoconfig.Endpoint, pop autoconfig.POP3Policy) string {
	s := fmt.Sprintf("Sets up %s (%s) in Mail: incoming %s, outgoing %s, username %s. "+
		"You are asked for your password while installing; the profile contains none.",
		email, name, describe(in), describe(out), email)
	if in.Protocol != autoconfig.POP3 {
		return s
	}
	s += " A profile cannot set what Mail does with POP3 messages left on the server:"
	switch {
	case pop.LeaveOnServer && pop.DeleteAfterDays == 1:
		s += " after installing, set the account to remove them from the server after one day."
	case pop.LeaveOnServer && pop.DeleteAfterDays > 1:
		s += fmt.Sprintf(" after installing, set the account to remove them from the server after at most %d days.", pop.DeleteAfterDays)
	default:
		s += " after installing, set the account to remove them from the server right after download."
	}
	return s
}

func describe(e autoconfig.Endpoint) string {
	proto := strings.ToUpper(string(e.Protocol))
	if e.Protocol == autoconfig.POP3 {
		proto = "POP3"
	}
	var sec string
	switch e.Security {
	case autoconfig.TLS:
		sec = "TLS"
	case autoconfig.STARTTLS:
		sec = "STARTTLS"
	default:
		sec = "no TLS"
	}
	return fmt.Sprintf("%s %s port %d (%s)", proto, e.Host, e.Port, sec)
}

// servers picks the incoming and outgoing endpoints a profile carries.
func servers(p autoconfig.Policy) (in, out autoconfig.Endpoint, err error) {
	if p.Prefer != autoconfig.IMAP && p.Prefer != autoconfig.POP3 {
		return in, out, fmt.Errorf("prefer %q: want imap or pop3", p.Prefer)
	}
	in, ok := pick(p.Endpoints(p.Prefer))
	if !ok {
		return in, out, fmt.Errorf("no %s endpoint for the preferred protocol", p.Prefer)
	}
	out, ok = pick(p.Submission)
	if !ok {
		return in, out, errors.New("no submission endpoint")
	}
	for _, e := range []autoconfig.Endpoint{in, out} {
		if err := autoconfig.ValidHost(e.Host); err != nil {
			return in, out, fmt.Errorf("%s endpoint: %v", e.Protocol, err)
		}
		if e.Port < 1 || e.Port > 65535 {
			return in, out, fmt.Errorf("%s endpoint %s: port %d out of range 1..65535", e.Protocol, e.Host, e.Port)
		}
	}
	return in, out, nil
}

// pick returns the first implicit-TLS endpoint, else the first one.
func pick(list []autoconfig.Endpoint) (autoconfig.Endpoint, bool) {
	if len(list) == 0 {
		return autoconfig.Endpoint{}, false
	}
	if i := slices.IndexFunc(list, func(e autoconfig.Endpoint) bool { return e.Security == autoconfig.TLS }); i >= 0 {
		return list[i], true
	}
	return list[0], true
}

// Project returns the part of p that a profile carries: what Parse returns
// for Render(p, address) with any address in p.Domain. It keeps Domain,
// DisplayName (p.Domain when empty) and Prefer; one endpoint of the
// preferred protocol and one submission endpoint, chosen as Render
// chooses them, with every security other than TLS read as STARTTLS (what
// UseSSL=false means on Apple devices); and Username FullAddress. Auth, the
// other protocol's endpoints, POP, MX and Web are not carried and are
// zero. The result is undefined when Render(p, ...) fails.
func Project(p autoconfig.Policy) autoconfig.Policy {
	out := autoconfig.Policy{
		Domain:      p.Domain,
		DisplayName: displayName(p),
		Prefer:      p.Prefer,
		Username:    autoconfig.FullAddress,
	}
	if in, ok := pick(p.Endpoints(p.Prefer)); ok {
		in.Security = projectSecurity(in.Security)
		switch p.Prefer {
		case autoconfig.IMAP:
			out.IMAP = []autoconfig.Endpoint{in}
		case autoconfig.POP3:
			out.POP3 = []autoconfig.Endpoint{in}
		}
	}
	if sub, ok := pick(p.Submission); ok {
		sub.Security = projectSecurity(sub.Security)
		out.Submission = []autoconfig.Endpoint{sub}
	}
	return out
}

func projectSecurity(s autoconfig.Security) autoconfig.Security {
	if s == autoconfig.TLS {
		return autoconfig.TLS
	}
	return autoconfig.STARTTLS
}

// uuidNamespace prefixes the hashed name of every PayloadUUID. Changing it
// changes every UUID, so installed profiles would no longer be replaced.
const uuidNamespace = "mailsetup mobileconfig v1\x00"

// PayloadUUIDs returns the PayloadUUID of the profile (outer payload) and
// of its mail payload for address. Both are name-based: the first 16
// bytes of SHA-256 over a fixed prefix, the payload kind and the trimmed,
// lower-cased address, with the version bits set to 8 and the RFC 4122 /
// RFC 9562 variant bits set (RFC 9562 §5.8 and appendix B.2 describe this
// SHA-256 construction), formatted in upper case as 8-4-4-4-12 hex digits.
// The same address always gives the same pair, so a downloaded profile
// replaces the one installed before; different addresses, and the two
// payloads of one address, get different UUIDs.
func PayloadUUIDs(address string) (profile, mail string) {
	a := strings.ToLower(strings.TrimSpace(address))
	return nameUUID("profile", a), nameUUID("mail", a)
}

func nameUUID(kind, name string) string {
	sum := sha256.Sum256([]byte(uuidNamespace + kind + "\x00" + name))
	b := sum[:16]
	b[6] = b[6]&0x0f | 0x80 // version 8 (custom, RFC 9562)
	b[8] = b[8]&0x3f | 0x80 // variant 10x (RFC 4122 / RFC 9562)
	return fmt.Sprintf("%X-%X-%X-%X-%X", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// identifier returns the reverse-DNS PayloadIdentifier of the profile:
// "com.example.mailsetup.<profile UUID>".
func identifier(domain, profileUUID string) string {
	labels := strings.Split(domain, ".")
	slices.Reverse(labels)
	return strings.Join(labels, ".") + "." + identifierPart + "." + profileUUID
}

// Filename returns the file name to download p's profile as, e.g.
// "example.com-mail.mobileconfig", for a Content-Disposition header. It
// contains only lower-case ASCII letters, digits, '.' and '-'; a domain
// that leaves nothing usable gives "mail.mobileconfig".
func Filename(p autoconfig.Policy) string {
	var b strings.Builder
	for _, c := range strings.ToLower(p.Domain) {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '.', c == '-':
			b.WriteRune(c)
		default:
			b.WriteByte('-')
		}
	}
	name := strings.Trim(b.String(), ".-")
	if name == "" || len(name) > 200 {
		return "mail.mobileconfig"
	}
	return name + "-mail.mobileconfig"
}
