package probe

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"time"

	"mailsetup/autoconfig"
	"mailsetup/finding"
)

// pop3Client is a minimal, read-only POP3 client (RFC 1939, 2449 CAPA,
// 2595 STLS, 5034 AUTH PLAIN, 3206 response codes). It never sends RETR
// or DELE.
type pop3Client struct {
	*lineConn
}

// pop3Error is a -ERR reply; Code is the RFC 2449 response code in
// brackets, if any ("AUTH", "IN-USE", "SYS/TEMP", "LOGIN-DELAY").
type pop3Error struct {
	Code, Text string
}

func (e *pop3Error) Error() string {
	if e.Code != "" {
		return "-ERR [" + e.Code + "] " + e.Text
	}
	return "-ERR " + e.Text
}

// status reads a +OK/-ERR line and returns the text after +OK.
func (p *pop3Client) status() (string, error) {
	line, err := p.readLine()
	if err != nil {
		return "", err
	}
	switch {
	case line == "+OK" || strings.HasPrefix(line, "+OK "):
		return strings.TrimPrefix(strings.TrimPrefix(line, "+OK"), " "), nil
	case line == "-ERR" || strings.HasPrefix(line, "-ERR "):
		text := strings.TrimPrefix(strings.TrimPrefix(line, "-ERR"), " ")
		e := &pop3Error{Text: text}
		if strings.HasPrefix(text, "[") {
			if end := strings.IndexByte(text, ']'); end > 0 {
				e.Code, e.Text = strings.ToUpper(text[1:end]), strings.TrimSpace(text[end+1:])
			}
		}
		return "", e
	case strings.HasPrefix(line, "+ "), line == "+":
		return line, nil
	}
	return "", fmt.Errorf("unexpected POP3 reply %q", line)
}

func (p *pop3Client) cmd(format string, args ...any) (string, error) {
	if err := p.writeLine(fmt.Sprintf(format, args...)); err != nil {
		return "", err
	}
	return p.status()
}

// lines reads a multi-line body up to the terminating ".".
func (p *pop3Client) lines() ([]string, error) {
	var out []string
	for {
		l, err := p.readLine()
		if err != nil {
			return nil, err
		}
		if l == "." {
			return out, nil
		}
		out = append(out, strings.TrimPrefix(l, "."))
		if len(out) > 1_000_000 {
			return nil, errors.New("POP3 listing too long")
		}
	}
}

// capa returns the capabilities, upper-cased tag first; nil when CAPA is
// not supported.
func (p *pop3Client) capa() ([]string, error) {
	if _, err := p.cmd("CAPA"); err != nil {
		var pe *pop3Error
		if errors.As(err, &pe) {
			return nil, nil
		}
		return nil, err
	}
	return p.lines()
}

func hasCap(caps []string, tag string) (string, bool) {
	for _, c := range caps {
		f := strings.Fields(c)
		if len(f) > 0 && strings.EqualFold(f[0], tag) {
			return strings.Join(f[1:], " "), true
		}
	}
	return "", false
}

// dialPOP3 connects, reads the greeting and upgrades with STLS when the
// endpoint needs it. It returns the capabilities before and after TLS.
func (r *runner) dialPOP3(ctx context.Context, e autoconfig.Endpoint, cfg *tls.Config) (*pop3Client, tls.ConnectionState, []string, []string, error) {
	var st tls.ConnectionState
	c, err := r.dial(ctx, e)
	if err != nil {
		return nil, st, nil, nil, &connectError{err}
	}
	if e.Security == autoconfig.TLS {
		tc, err := handshake(ctx, c, cfg)
		if err != nil {
			c.Close()
			return nil, st, nil, nil, err
		}
		c, st = tc, tc.ConnectionState()
	}
	p := &pop3Client{newLineConn(c)}
	if _, err := p.status(); err != nil {
		c.Close()
		return nil, st, nil, nil, fmt.Errorf("greeting: %w", err)
	}
	before, err := p.capa()
	if err != nil {
		c.Close()
		return nil, st, nil, nil, fmt.Errorf("CAPA: %w", err)
	}
	if e.Security != autoconfig.STARTTLS {
		return p, st, before, before, nil
	}
	if _, ok := hasCap(before, "STLS"); !ok {
		c.Close()
		return nil, st, before, nil, errNoSTARTTLS{"STLS is not advertised in CAPA"}
	}
	if _, err := p.cmd("STLS"); err != nil {
		c.Close()
		return nil, st, before, nil, fmt.Errorf("STLS: %w", err)
	}
	tc, err := handshake(ctx, c, cfg)
	if err != nil {
		c.Close()
		return nil, st, before, nil, err
	}
	p = &pop3Client{newLineConn(tc)}
	after, err := p.capa()
	if err != nil {
		tc.Close()
		return nil, st, before, nil, fmt.Errorf("CAPA after STLS: %w", err)
	}
	return p, tc.ConnectionState(), before, after, nil
}

// plaintextMech: a SASL mechanism that sends the password itself.
func plaintextMech(m string) bool {
	return strings.EqualFold(m, "PLAIN") || strings.EqualFold(m, "LOGIN")
}

// errNoSTARTTLS: a port that should speak STARTTLS does not offer it
// (server.starttls-missing).
type errNoSTARTTLS struct{ what string }

func (e errNoSTARTTLS) Error() string { return e.what }

// connectError marks a failed TCP connect (server.unreachable).
type connectError struct{ err error }

func (e *connectError) Error() string { return "connect: " + e.err.Error() }
func (e *connectError) Unwrap() error { return e.err }

// connectPOP3 inspects a POP3 endpoint without logging in.
func (r *runner) connectPOP3(ctx context.Context, e autoconfig.Endpoint, s *stepState) {
	p, st, before, after, err := r.dialPOP3(ctx, e, r.inspectConfig(e.Host))
	if err != nil {
		connFailed(s, e, err)
		return
	}
	defer p.c.Close()
	r.checkCert(e, st, s)
	if e.Security == autoconfig.STARTTLS {
		s.note("CAPA before STLS: %s", strings.Join(before, ", "))
		var offered []string
		if _, ok := hasCap(before, "USER"); ok {
			offered = append(offered, "USER")
		}
		if mechs, ok := hasCap(before, "SASL"); ok && slices.ContainsFunc(strings.Fields(mechs), plaintextMech) {
			offered = append(offered, "SASL "+mechs)
		}
		if len(offered) > 0 {
			s.note("%s offered before TLS", strings.Join(offered, " and "))
			s.find(finding.New("pop3.auth-before-tls", finding.Vars{"value": fmt.Sprintf("%s:%d", e.Host, e.Port), "expected": "STARTTLS"},
				"CAPA before STLS lists "+strings.Join(offered, " and ")))
		}
	}
	s.note("CAPA: %s", strings.Join(after, ", "))
	if v, _ := hasCap(after, "LOGIN-DELAY"); strings.HasSuffix(strings.ToUpper(v), " USER") && r.password != "" {
		// Varies by user: the login step reads the user's own value.
		s.note("LOGIN-DELAY %s: the user's own delay is in the CAPA after login", v)
	} else if d, ok := loginDelay(after); ok {
		r.loginDelayFinding(s, d, "CAPA LOGIN-DELAY "+strconv.Itoa(int(d/time.Second)))
	}
	p.cmd("QUIT")
}

// loginDelay reads CAPA's LOGIN-DELAY (RFC 2449 §6.8: before login
// possibly followed by USER, after login the user's own value); ok only
// for a delay above zero.
func loginDelay(caps []string) (time.Duration, bool) {
	v, ok := hasCap(caps, "LOGIN-DELAY")
	if !ok {
		return 0, false
	}
	f := strings.Fields(v)
	if len(f) == 0 {
		return 0, false
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n <= 0 {
		return 0, false
	}
	return time.Duration(n) * time.Second, true
}

// minutes says a delay in minutes: "15 minutes", "1 minute", "2 minutes
// (90 seconds)".
func minutes(d time.Duration) string {
	sec := int(d / time.Second)
	m := (sec + 59) / 60
	text := fmt.Sprintf("%d minutes", m)
	if m == 1 {
		text = "1 minute"
	}
	if sec%60 != 0 {
		text += fmt.Sprintf(" (%d seconds)", sec)
	}
	return text
}

// wholeMinutes is a delay in whole minutes, rounded up ("15"): the
// pages say it in their language ({minutes}).
func wholeMinutes(d time.Duration) string {
	return strconv.Itoa((int(d/time.Second) + 59) / 60)
}

// loginDelayFinding reports the server's LOGIN-DELAY d, in minutes, and
// with a password warns that the probe's own logins count against the
// customer's mail program (RFC 2449 §6.8).
func (r *runner) loginDelayFinding(s *stepState, d time.Duration, seen string) {
	ev := []string{seen}
	if r.password != "" {
		ev = append(ev, "this check logs in over POP3 too: the customer's mail program may be refused with [LOGIN-DELAY] for the next "+minutes(d))
	}
	s.find(finding.New("pop3.login-delay", finding.Vars{"value": seen, "expected": minutes(d), "minutes": wholeMinutes(d)}, ev...))
}

// loginPOP3 logs in read-only: STAT, UIDL count, TOP 1 0 for the oldest
// message's date; never RETR, never DELE.
func (r *runner) loginPOP3(ctx context.Context, e autoconfig.Endpoint, s *stepState) loginOutcome {
	p, _, _, caps, err := r.dialPOP3(ctx, e, r.strictConfig(e.Host))
	if err != nil {
		connFailed(s, e, err)
		return loginOther
	}
	defer p.c.Close()
	delay, _ := loginDelay(caps)
	how, err := p.auth(caps, r.loginName(), r.password)
	s.note("%s as %s", how, r.loginName())
	if err != nil {
		return r.pop3LoginFailed(ctx, s, e, err, delay)
	}
	s.note("login accepted")
	if after, err := p.capa(); err == nil {
		if v, ok := hasCap(after, "EXPIRE"); ok {
			s.note("server expiry (CAPA EXPIRE after login): %s", v)
		}
		if d, ok := loginDelay(after); ok {
			delay = d
			r.loginDelayFinding(s, d, fmt.Sprintf("CAPA after login: LOGIN-DELAY %d", int(d/time.Second)))
		}
	}
	text, err := p.cmd("STAT")
	if err != nil {
		s.fail(fmt.Errorf("STAT: %w", err))
		p.cmd("QUIT")
		return loginOK
	}
	var count, size int64
	fmt.Sscanf(text, "%d %d", &count, &size)
	first, err := p.uidlList()
	if err != nil {
		s.fail(err)
		return loginOK
	}
	s.note("mailbox: %d messages, %d bytes, %d UIDLs", count, size, len(first))
	if count > 0 {
		if _, err := p.cmd("TOP 1 0"); err == nil {
			hdr, err := p.lines()
			if err != nil {
				s.fail(fmt.Errorf("TOP: %w", err))
				return loginOK
			}
			r.oldest(hdr, count, s)
		}
	}
	p.cmd("QUIT")
	r.recheckUIDLs(ctx, e, s, first, delay)
	return loginOK
}

// auth logs in as user with AUTH PLAIN when CAPA offers it, else with
// USER/PASS, and says which.
func (p *pop3Client) auth(caps []string, user, password string) (string, error) {
	if mechs, ok := hasCap(caps, "SASL"); ok && slices.ContainsFunc(strings.Fields(mechs), func(m string) bool { return strings.EqualFold(m, "PLAIN") }) {
		ir := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + password))
		_, err := p.cmd("AUTH PLAIN %s", ir)
		return "AUTH PLAIN", err
	}
	_, err := p.cmd("USER %s", user)
	if err == nil {
		_, err = p.cmd("PASS %s", password)
	}
	return "USER/PASS", err
}

// oldest judges the age of message 1 (the oldest in the maildrop)
// against the policy's delete-after days.
func (r *runner) oldest(hdr []string, count int64, s *stepState) {
	for _, h := range hdr {
		name, value, ok := strings.Cut(h, ":")
		if !ok || !strings.EqualFold(strings.TrimSpace(name), "Date") {
			continue
		}
		t, err := mail.ParseDate(strings.TrimSpace(value))
		if err != nil {
			s.note("oldest message: unreadable Date %q", strings.TrimSpace(value))
			return
		}
		age := r.opts.Now().Sub(t)
		days := int(age / (24 * time.Hour))
		s.note("oldest message dated %s (%d days old)", t.UTC().Format(time.RFC3339), days)
		pol := r.pol.POP
		if pol.LeaveOnServer && pol.DeleteAfterDays > 0 && days > 2*pol.DeleteAfterDays {
			f := finding.New("pop3.leave-forever", finding.Vars{"value": fmt.Sprintf("%d messages, oldest %d days", count, days), "expected": strconv.Itoa(pol.DeleteAfterDays),
				"messages": strconv.FormatInt(count, 10), "oldest": strconv.Itoa(days)},
				fmt.Sprintf("mailbox holds %d messages, the oldest %d days old; the policy removes mail after %d days: some client never removes it", count, days, pol.DeleteAfterDays))
			f.Severity = finding.Warning
			if reportedKeeps(r.client, pol.DeleteAfterDays) {
				// The customer's own program already removes mail in
				// time: another program keeps it. Do not ask them for
				// what they have.
				f.Fix = fmt.Sprintf(otherProgramFix, pol.DeleteAfterDays)
				f.Staff += "; " + reportedPOP(r.client) + ", so another POP3 client keeps the mail"
			}
			s.find(f)
		}
		return
	}
}

// pop3LoginFailed maps the RFC 2449/3206 response codes to findings.
// delay is the LOGIN-DELAY the CAPA before login named (0: none).
func (r *runner) pop3LoginFailed(ctx context.Context, s *stepState, e autoconfig.Endpoint, err error, delay time.Duration) loginOutcome {
	s.fail(fmt.Errorf("POP3 login: %w", err))
	var pe *pop3Error
	if !errors.As(err, &pe) {
		return loginOther
	}
	reply := "POP3 " + pe.Error()
	switch pe.Code {
	case "IN-USE":
		s.find(finding.New("pop3.in-use", finding.Vars{"value": reply}, reply))
		return loginOK // the credentials were right
	case "LOGIN-DELAY":
		v := finding.Vars{"value": reply, "expected": "a few minutes (the server does not say how long)"}
		if delay > 0 {
			v["expected"], v["minutes"] = minutes(delay), wholeMinutes(delay)
		}
		s.find(finding.New("pop3.login-delay", v, reply))
		return loginOther
	case "SYS/TEMP", "SYS/PERM":
		if strings.Contains(strings.ToLower(pe.Text), "too many") {
			s.find(finding.New("login.throttled", finding.Vars{"value": reply}, reply))
			return loginRefused
		}
		s.find(finding.New("server.temporary-failure", finding.Vars{"value": reply}, reply))
		return loginOther
	}
	return r.refused(ctx, e, s, reply)
}

// connFailed records a failed connection: unreachable or TLS.
func connFailed(s *stepState, e autoconfig.Endpoint, err error) {
	var ce *connectError
	var ne net.Error
	var nt errNoSTARTTLS
	switch {
	case errors.As(err, &ce):
		unreachable(s, e, ce.err)
	case errors.As(err, &nt):
		s.fail(err)
		s.find(finding.New("server.starttls-missing", finding.Vars{"value": fmt.Sprintf("%s:%d", e.Host, e.Port)}, err.Error()))
	case strings.Contains(err.Error(), "TLS handshake"), strings.Contains(err.Error(), "tls:"), strings.Contains(err.Error(), "x509:"):
		tlsFailed(s, e, err)
	case errors.As(err, &ne) && ne.Timeout():
		s.fail(err)
		s.find(finding.New("server.unreachable", finding.Vars{"value": fmt.Sprintf("%s:%d", e.Host, e.Port)}, "timed out: "+err.Error()))
	default:
		s.fail(err)
		s.find(finding.New("server.temporary-failure", finding.Vars{"value": err.Error()}, err.Error()))
	}
}

// otherProgramFix is pop3.leave-forever's fix when the customer reports
// settings that already remove mail in time (reportedKeeps).
const otherProgramFix = `Your mail program's settings are right. Another device or program that checks this mailbox with POP3 never removes mail from the server: on each one, keep "Leave a copy of messages on the server" only together with "Remove from server after %d days" (Thunderbird: "For at most ... days"), or use IMAP there.`

// reportedKeeps says whether the customer reports POP3 settings that do
// not pile up mail: no copy left on the server, or removed within days.
func reportedKeeps(c *ClientSettings, days int) bool {
	if c == nil || c.Incoming.LeaveOnServer == nil || strings.EqualFold(strings.TrimSpace(c.Incoming.Protocol), string(autoconfig.IMAP)) {
		return false
	}
	if !*c.Incoming.LeaveOnServer {
		return true
	}
	d := c.Incoming.DeleteAfterDays
	return d != nil && *d > 0 && *d <= days
}

// reportedPOP says what the customer reports about POP3 retention.
func reportedPOP(c *ClientSettings) string {
	if !*c.Incoming.LeaveOnServer {
		return `the customer reports "leave a copy on the server" off`
	}
	return fmt.Sprintf(`the customer reports "leave a copy on the server" with "remove after" %d days`, *c.Incoming.DeleteAfterDays)
}
