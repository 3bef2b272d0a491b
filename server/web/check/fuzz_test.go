package check

import (
	"net/url"
	"strings"
	"testing"

	"mailsetup/autoconfig"
)

// FuzzCheckForm: the settings form (self-help page and staff console)
// never panics; a form it accepts gives client settings the API's
// validator accepts too (one set of rules), with ports in range and host
// names valid; a field error names a field of the form; the password is
// kept as typed and nowhere else.
func FuzzCheckForm(f *testing.F) {
	f.Add("pop3", "mail.example.com", "995", "ssl", "john", "yes", "0", "smtp.example.com", "465", "starttls", "no", "", "secret")
	f.Add("imap", "[::1]", "143", "STARTTLS", "john@example.com", "", "", "127.0.0.1", "587", "tls", "yes", "john@example.com", "")
	f.Add("x", "http://mail.example.com:993", "99999", "bogus", strings.Repeat("a", 400), "maybe", "-1", "a..b", "0", "", "", "\x00", "")
	fields := []string{"in_proto", "in_host", "in_port", "in_security", "in_user", "leave", "delete_after",
		"out_host", "out_port", "out_security", "out_auth", "out_user", "password"}
	f.Fuzz(func(t *testing.T, proto, inHost, inPort, inSec, inUser, leave, days, outHost, outPort, outSec, outAuth, outUser, password string) {
		v := url.Values{}
		for i, val := range []string{proto, inHost, inPort, inSec, inUser, leave, days, outHost, outPort, outSec, outAuth, outUser, password} {
			v.Set(fields[i], val)
		}
		in := ParseForm(v)
		for _, e := range in.Errs {
			if !strings.Contains(strings.Join(fields, " "), e.Field) || e.Message == "" {
				t.Fatalf("field error %+v names no form field", e)
			}
		}
		if len(in.Errs) > 0 {
			return
		}
		if in.Password != password {
			t.Fatalf("password %q kept as %q", password, in.Password)
		}
		c := in.Client
		for _, p := range []int{c.Incoming.Port, c.Outgoing.Port} {
			if p < 0 || p > 65535 {
				t.Fatalf("port %d accepted", p)
			}
		}
		for _, h := range []string{c.Incoming.Host, c.Outgoing.Host} {
			if h != "" && autoconfig.ValidHost(h) != nil && !strings.ContainsAny(h, ":.") {
				t.Fatalf("host %q accepted", h)
			}
		}
		if err := ValidateClient(&c); err != nil {
			t.Fatalf("the form accepted what the API refuses: %v (%+v)", err, c)
		}
	})
}
