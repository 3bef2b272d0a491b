package mozilla

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"

	"mailsetup/autoconfig"
)

// AndroidParserVersion names the Thunderbird for Android (K-9) parser
// whose rules ParseAndroid follows: RealAutoconfigParser.kt of
// thunderbird/thunderbird-android at this commit, read December 2026.
const AndroidParserVersion = "thunderbird-android 0404b33 (feature/autodiscovery/autoconfig RealAutoconfigParser.kt)"

// ErrAndroidRejects means Thunderbird for Android (and K-9 Mail) would
// reject the whole document; the wrapping error says why, in the
// parser's own words.
var ErrAndroidRejects = errors.New("rejected by Thunderbird for Android")

// AndroidSettings are what Thunderbird for Android takes from a
// document: the first imap incomingServer and the first smtp
// outgoingServer, usernames with the placeholders replaced.
type AndroidSettings struct {
	IMAP, SMTP autoconfig.Endpoint
	// IMAPUsername and SMTPUsername are the usernames it would use.
	IMAPUsername, SMTPUsername string
}

// ParseAndroid reads a clientConfig document the way Thunderbird for
// Android does for address (see AndroidParserVersion):
//
//   - emailProvider needs an id that is a host name, and at least one
//     domain that is a host name (after placeholder substitution);
//   - only incomingServer type="imap" is read: a document with only pop3
//     servers has no incoming server and is rejected;
//   - every imap and smtp server must have a valid hostname, a port,
//     a username, a socketType of SSL or STARTTLS (anything else,
//     "plain" included, rejects the whole document) and at least one
//     authentication it knows (password-cleartext, password-encrypted,
//     OAuth2; the old alias "plain" is not one of them);
//   - pop3 and other servers are skipped without being checked.
//
// The input passes Parse's safety checks first (size, no DTD, one root).
func ParseAndroid(r io.Reader, address string) (AndroidSettings, error) {
	a, err := autoconfig.ParseAddress(address)
	if err != nil {
		return AndroidSettings{}, err
	}
	data, err := io.ReadAll(io.LimitReader(r, MaxDocumentBytes+1))
	if err != nil {
		return AndroidSettings{}, fmt.Errorf("reading autoconfig document: %w", err)
	}
	if len(data) > MaxDocumentBytes {
		return AndroidSettings{}, ErrTooLarge
	}
	data = bytes.TrimLeft(bytes.TrimPrefix(data, []byte("\uFEFF")), " \t\r\n")
	if err := scan(data); err != nil {
		return AndroidSettings{}, err
	}
	var doc inConfig
	if err := newDecoder(data).Decode(&doc); err != nil {
		return AndroidSettings{}, malformed("%v", err)
	}
	reject := func(format string, args ...any) (AndroidSettings, error) {
		return AndroidSettings{}, fmt.Errorf("%w: "+format, append([]any{ErrAndroidRejects}, args...)...)
	}
	if len(doc.Providers) == 0 {
		return reject("Missing 'emailProvider' element")
	}
	// Each emailProvider is parsed; the last one's result stands.
	var out AndroidSettings
	replace := strings.NewReplacer("%EMAILDOMAIN%", a.Domain, "%EMAILLOCALPART%", a.Local, "%EMAILADDRESS%", a.String())
	for _, prov := range doc.Providers {
		switch {
		case prov.ID == nil:
			return reject("Missing 'emailProvider.id' attribute")
		case !androidHost(*prov.ID):
			return reject("Invalid 'emailProvider.id' attribute")
		}
		var domain, haveIMAP, haveSMTP bool
		for _, d := range prov.Domain {
			domain = domain || androidHost(replace.Replace(strings.TrimSpace(d)))
		}
		for _, list := range []struct {
			servers []inServer
			typ     string
		}{{prov.Incoming, "imap"}, {prov.Outgoing, "smtp"}} {
			for _, s := range list.servers {
				if s.Type != list.typ {
					continue
				}
				e, user, err := androidServer(s, replace)
				if err != nil {
					return reject("%s", err)
				}
				if list.typ == "imap" && !haveIMAP {
					out.IMAP, out.IMAPUsername, haveIMAP = e, user, true
				}
				if list.typ == "smtp" && !haveSMTP {
					out.SMTP, out.SMTPUsername, haveSMTP = e, user, true
				}
			}
		}
		switch {
		case !domain:
			return reject("Valid 'domain' element required")
		case !haveIMAP:
			return reject("Missing 'incomingServer' element (only type=\"imap\" is read; pop3 servers are skipped)")
		case !haveSMTP:
			return reject("Missing 'outgoingServer' element")
		}
	}
	return out, nil
}

// androidServer checks one imap or smtp server as the Android parser
// does; the last of a repeated element counts.
func androidServer(s inServer, replace *strings.Replacer) (autoconfig.Endpoint, string, error) {
	last := func(v []string) (string, bool) {
		if len(v) == 0 {
			return "", false
		}
		return strings.TrimSpace(v[len(v)-1]), true
	}
	e := autoconfig.Endpoint{Protocol: autoconfig.IMAP}
	if s.Type == "smtp" {
		e.Protocol = autoconfig.SMTP
	}
	for _, h := range s.Hostname {
		if !androidHost(replace.Replace(strings.TrimSpace(h))) {
			return e, "", fmt.Errorf("%s server: Invalid 'hostname' value: '%s'", s.Type, h)
		}
	}
	for _, p := range s.Port {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 0 || n > 65535 {
			return e, "", fmt.Errorf("%s server: Invalid 'port' value: '%s'", s.Type, p)
		}
	}
	for _, st := range s.SocketType {
		if st = strings.TrimSpace(st); st != socketSSL && st != socketSTARTTLS {
			return e, "", fmt.Errorf("%s server: Unknown 'socketType' value: '%s'", s.Type, st)
		}
	}
	host, ok := last(s.Hostname)
	if !ok {
		return e, "", fmt.Errorf("%s server: Missing 'hostname' element", s.Type)
	}
	port, ok := last(s.Port)
	if !ok {
		return e, "", fmt.Errorf("%s server: Missing 'port' element", s.Type)
	}
	user, ok := last(s.Username)
	if !ok {
		return e, "", fmt.Errorf("%s server: Missing 'username' element", s.Type)
	}
	var auth bool
	for _, m := range s.Authentication {
		switch strings.TrimSpace(m) {
		case "OAuth2", authCleartext, "password-encrypted":
			auth = true
		}
	}
	if !auth {
		return e, "", fmt.Errorf("%s server: No usable 'authentication' element found (got %q; \"plain\" is not one Thunderbird for Android knows)", s.Type, s.Authentication)
	}
	st, ok := last(s.SocketType)
	if !ok {
		return e, "", fmt.Errorf("%s server: Missing 'socketType' element", s.Type)
	}
	e.Host = replace.Replace(host)
	e.Port, _ = strconv.Atoi(port)
	e.Security = autoconfig.TLS
	if st == socketSTARTTLS {
		e.Security = autoconfig.STARTTLS
	}
	return e, replace.Replace(user), nil
}

// androidHost reports whether s is a host name or an IP address.
func androidHost(s string) bool {
	if _, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		return true
	}
	return autoconfig.ValidHost(strings.TrimSuffix(s, ".")) == nil
}
