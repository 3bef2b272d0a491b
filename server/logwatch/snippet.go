package logwatch

import (
	"fmt"
	"net"
	"strings"
)

// Snippet is the configuration an ISP adds to kind's daemon so that its
// log carries what the parser reads; with syslog (a listen address of
// an [[observe.source]], see ParseListen), also the rsyslog rule that
// sends a copy of the program's lines there.
func Snippet(kind Kind, syslog string) (string, error) {
	var b strings.Builder
	switch kind {
	case Dovecot:
		b.WriteString(dovecotSnippet)
	case Postfix:
		b.WriteString(postfixSnippet)
	default:
		return "", fmt.Errorf("%q: want dovecot or postfix", kind)
	}
	if syslog == "" {
		return b.String(), nil
	}
	network, addr, err := ParseListen(syslog)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(&b, "\n# /etc/rsyslog.d/60-mailsetup-%s.conf: a copy of %s's lines for mailsetup\n", kind, kind)
	match := `$programname == 'dovecot'`
	if kind == Postfix {
		match = `$programname startswith 'postfix'`
	}
	switch network {
	case "udp", "tcp":
		host, port, _ := net.SplitHostPort(addr)
		fmt.Fprintf(&b, "if %s then action(type=\"omfwd\" target=%q port=%q protocol=%q template=\"RSYSLOG_SyslogProtocol23Format\")\n",
			match, host, port, network)
	case "unixgram":
		// Debian 12's rsyslog (8.2302) has only omuxsock's legacy
		// directive: one socket per rsyslog.
		fmt.Fprintf(&b, "$ModLoad omuxsock\n$OMUxSockSocket %s\nif %s then :omuxsock:\n", addr, match)
	default:
		return "", fmt.Errorf("%q: rsyslog's omuxsock sends datagrams: use unix:///PATH, udp:// or tcp://", syslog)
	}
	return b.String(), nil
}

// dovecotSnippet: Dovecot 2.3. The logout format needs the long name
// %{uidl_change}: its short form %u stays empty on 2.3.
const dovecotSnippet = `# conf.d/99-mailsetup.conf: what mailsetup reads in Dovecot's log
# Why a login failed (unknown user, password mismatch):
auth_verbose = yes
# The login lines: username, mechanism, remote address, TLS, session:
login_log_format_elements = user=<%u> method=%m rip=%r lip=%l mpid=%e %c session=<%{session}>
# A POP3 session's retrievals, deletions, maildrop and its UIDL set's
# fingerprint (a changed set: the server gave messages new UIDLs):
pop3_logout_format = top=%t/%p, retr=%r/%b, del=%d/%m, size=%s, uidl_hash=%{uidl_change}
mail_log_prefix = "%s(%u)<%{pid}><%{session}>: "
# The client's name and version from IMAP ID:
imap_id_log = name version
`

// postfixSnippet: Postfix logs SASL failures (Debian's 3.7 with the
// sasl_username), successes and NOQUEUE rejects by default; the
// submission services need their own syslog_name.
const postfixSnippet = `# main.cf: what mailsetup reads in Postfix's log
# "TLS connection established" lines: whether a client used TLS:
smtpd_tls_loglevel = 1
# master.cf: name each submission service, so that its lines say so:
#   submission inet n - y - - smtpd
#     -o syslog_name=postfix/submission
#   submissions inet n - y - - smtpd
#     -o syslog_name=postfix/submissions
#     -o smtpd_tls_wrappermode=yes
`
