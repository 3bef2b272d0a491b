package logwatch

import (
	"net/netip"
	"strconv"
	"strings"
	"time"

	"mailsetup/server/auth"
	"mailsetup/server/events"
)

// Kind is the program whose log a source carries.
type Kind string

const (
	Dovecot Kind = "dovecot"
	Postfix Kind = "postfix"
)

// Kinds returns every Kind.
func Kinds() []Kind { return []Kind{Dovecot, Postfix} }

// Result is what became of one line; its string is the result label of
// mailsetup_observe_lines_total.
type Result string

const (
	// ResultEvent: the line became an event.
	ResultEvent Result = "event"
	// ResultContext: the line was remembered for a later one (a
	// session's remote address, TLS, client name, auth reason).
	ResultContext Result = "context"
	// ResultIgnored: a line of the program that says nothing we use.
	ResultIgnored Result = "ignored"
	// ResultOther: another program's line (a syslog file both write to,
	// such as Debian's mail.log).
	ResultOther Result = "other"
	// ResultUnknown: not a line of this program in a known format.
	ResultUnknown Result = "unknown"
	// ResultTooLong: over MaxLine bytes; skipped up to its end.
	ResultTooLong Result = "too-long"
	// ResultBinary: a NUL byte or invalid UTF-8.
	ResultBinary Result = "binary"
	// ResultBadTime: no timestamp, or one more than a day in the
	// future (a clock jump).
	ResultBadTime Result = "bad-time"
)

// Results returns every Result.
func Results() []Result {
	return []Result{ResultEvent, ResultContext, ResultIgnored, ResultOther, ResultUnknown, ResultTooLong, ResultBinary, ResultBadTime}
}

// MaxLine is the longest line read; longer ones are counted and skipped.
const MaxLine = 64 << 10

// maxSessions is how many login sessions (Dovecot) or smtpd processes
// (Postfix) a parser remembers for later lines; the oldest is forgotten
// first.
const maxSessions = 4096

// ParserOptions configures a Parser.
type ParserOptions struct {
	// IsLocal reports whether a domain is served here (the username
	// forms and the accounts).
	IsLocal func(domain string) bool
	// Now is the clock (default time.Now); timestamps without a year
	// take the year that puts them nearest before Now.
	Now func() time.Time
	// Location is the zone of timestamps that carry none (default
	// time.Local, as the daemons write them).
	Location *time.Location
}

// Parser turns the lines of one program's log into events. It keeps a
// bounded memory of sessions, so lines must come in order; it is not
// safe for concurrent use.
type Parser struct {
	kind  Kind
	opts  ParserOptions
	state *sessions
	// times is how many attempts the last event stands for (Dovecot
	// logs "auth failed, 3 attempts" once per connection).
	times int
}

// maxTimes bounds the attempts one line stands for.
const maxTimes = 20

// Times is how many attempts the event of the last line stands for: 1,
// or the attempts of a Dovecot "auth failed, N attempts" line (at most
// 20).
func (p *Parser) Times() int { return max(1, p.times) }

// NewParser returns a parser for kind's lines.
func NewParser(kind Kind, opts ParserOptions) *Parser {
	if opts.IsLocal == nil {
		opts.IsLocal = func(string) bool { return true }
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Location == nil {
		opts.Location = time.Local
	}
	return &Parser{kind: kind, opts: opts, state: newSessions(maxSessions)}
}

// Line parses one line as a log file holds it: a timestamp, then the
// program's text (with or without a host and syslog tag before it).
func (p *Parser) Line(line string) (events.Event, Result) {
	if r := checkBytes(line); r != "" {
		return events.Event{}, r
	}
	t, rest, ok := p.timestamp(line)
	if !ok {
		return events.Event{}, ResultBadTime
	}
	// A log file's line forwarded whole by a syslog client ("tag: " and
	// the line with its own time): the line's time and tag count.
	if i := strings.Index(rest[:min(len(rest), 128)], ": "); i > 0 && strings.Count(rest[:i], " ") <= 1 {
		if ft, frest, ok := p.timestamp(rest[i+2:]); ok {
			return p.message(ft, frest)
		}
	}
	return p.message(t, rest)
}

// Message parses a message whose time is known (a syslog message: msg
// is the text after its header, tag included or not).
func (p *Parser) Message(t time.Time, tag, msg string) (events.Event, Result) {
	if r := checkBytes(msg); r != "" {
		return events.Event{}, r
	}
	if t.After(p.opts.Now().Add(24 * time.Hour)) {
		return events.Event{}, ResultBadTime
	}
	if lt, rest, ok := p.timestamp(msg); ok {
		// A log file's line forwarded whole (tail -F | logger): its own
		// time and tag count.
		return p.message(lt, rest)
	}
	if tag != "" {
		msg = tag + ": " + msg
	}
	return p.message(t, msg)
}

func checkBytes(s string) Result {
	if len(s) > MaxLine {
		return ResultTooLong
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == 0 {
			return ResultBinary
		}
		if c >= 0x80 {
			if !validUTF8(s[i:]) {
				return ResultBinary
			}
			break
		}
	}
	return ""
}

func (p *Parser) message(t time.Time, msg string) (events.Event, Result) {
	p.times = 1
	if p.kind == Postfix {
		return p.postfix(t, msg)
	}
	return p.dovecot(t, msg)
}

var months = map[string]time.Month{"Jan": 1, "Feb": 2, "Mar": 3, "Apr": 4, "May": 5, "Jun": 6,
	"Jul": 7, "Aug": 8, "Sep": 9, "Oct": 10, "Nov": 11, "Dec": 12}

// timestamp reads the line's leading time: "Dec  7 00:47:36" or "Dec 07
// 00:47:36" (syslog, Dovecot's and Postfix's own files), RFC 3339
// ("2026-12-07T00:47:36.123456+00:00", rsyslog's precise format) or
// "2026-12-07 00:47:36" (a Dovecot log_timestamp with the year).
func (p *Parser) timestamp(line string) (time.Time, string, bool) {
	now := p.opts.Now()
	var t time.Time
	var rest string
	switch {
	case len(line) >= 16 && line[3] == ' ' && line[15] == ' ' && line[9] == ':' && line[12] == ':':
		m, ok := months[line[:3]]
		if !ok {
			return t, "", false
		}
		day, err1 := strconv.Atoi(strings.TrimLeft(line[4:6], " "))
		h, err2 := strconv.Atoi(line[7:9])
		mi, err3 := strconv.Atoi(line[10:12])
		s, err4 := strconv.Atoi(line[13:15])
		if err1 != nil || err2 != nil || err3 != nil || err4 != nil || day < 1 || day > 31 || h > 23 || mi > 59 || s > 60 {
			return t, "", false
		}
		t = time.Date(now.Year(), m, day, h, mi, s, 0, p.opts.Location)
		if t.After(now.Add(24 * time.Hour)) {
			// December's lines read in January.
			t = t.AddDate(-1, 0, 0)
		}
		rest = line[16:]
	case len(line) >= 20 && line[4] == '-' && line[7] == '-' && line[10] == ' ' && line[13] == ':':
		var err error
		t, err = time.ParseInLocation("2006-01-02 15:04:05", line[:19], p.opts.Location)
		if err != nil {
			return t, "", false
		}
		rest = strings.TrimLeft(line[19:], " ")
	case len(line) >= 20 && line[4] == '-' && line[10] == 'T':
		sp := strings.IndexByte(line, ' ')
		if sp < 0 {
			return t, "", false
		}
		var err error
		t, err = time.Parse(time.RFC3339Nano, line[:sp])
		if err != nil {
			return t, "", false
		}
		rest = line[sp+1:]
	default:
		return t, "", false
	}
	if t.After(now.Add(24 * time.Hour)) {
		return t, "", false
	}
	return t, rest, true
}

// afterTag strips a syslog host and tag ("mail dovecot: ",
// "dovecot[12]: ") from the start of msg when the tag names prog.
func afterTag(msg, prog string) string {
	head := msg[:min(len(msg), 256)]
	i := strings.Index(head, prog)
	if i < 0 || (i > 0 && head[i-1] != ' ') {
		return msg
	}
	j := i + len(prog)
	if j < len(head) && head[j] == '[' {
		k := strings.IndexByte(head[j:], ']')
		if k < 0 {
			return msg
		}
		j += k + 1
	}
	if strings.HasPrefix(msg[j:], ": ") {
		return msg[j+2:]
	}
	return msg
}

// dovecot parses the text of one Dovecot line: "service: Level: text"
// (its own log file) or "service: text" (syslog).
func (p *Parser) dovecot(t time.Time, msg string) (events.Event, Result) {
	tagged := afterTag(msg, "dovecot")
	svc, text, ok := strings.Cut(tagged, ": ")
	if !ok || svc == "" {
		return events.Event{}, ResultUnknown
	}
	if len(tagged) == len(msg) && strings.Count(svc, " ") == 1 && !strings.ContainsAny(svc, "(<") {
		return events.Event{}, ResultOther // "host prog[pid]" of another program
	}
	for _, level := range []string{"Info: ", "Warning: ", "Error: ", "Debug: ", "Fatal: ", "Panic: "} {
		if rest, ok := strings.CutPrefix(text, level); ok {
			text = rest
			break
		}
	}
	switch {
	case svc == "imap-login" || svc == "pop3-login":
		proto := events.ProtoIMAP
		if svc == "pop3-login" {
			proto = events.ProtoPOP3
		}
		return p.dovecotLogin(t, proto, text)
	case svc == "auth" || strings.HasPrefix(svc, "auth-worker") || strings.HasPrefix(svc, "auth("):
		return p.dovecotAuth(text)
	case strings.HasPrefix(svc, "pop3("):
		return p.dovecotPOP3(t, svc, text)
	case strings.HasPrefix(svc, "imap("):
		return p.dovecotIMAP(t, svc, text)
	case isDovecotService(svc):
		return events.Event{}, ResultIgnored
	}
	return events.Event{}, ResultUnknown
}

// isDovecotService: the other processes of Dovecot that log.
func isDovecotService(svc string) bool {
	name, _, _ := strings.Cut(svc, "(")
	switch name {
	case "master", "lmtp", "lda", "config", "log", "anvil", "stats", "indexer", "indexer-worker", "dict", "doveadm",
		"submission-login", "submission", "managesieve-login", "managesieve", "ssl-params", "imap-hibernate", "quota-status":
		return true
	}
	return false
}

// sessionID is the text between the last "<" and ">" of svc
// ("pop3(u)<123><sess>").
func sessionID(svc string) string {
	i := strings.LastIndexByte(svc, '<')
	if i < 0 || !strings.HasSuffix(svc, ">") {
		return ""
	}
	return svc[i+1 : len(svc)-1]
}

// userOf is the text between "(" and ")" of svc.
func userOf(svc string) string {
	i := strings.IndexByte(svc, '(')
	j := strings.IndexByte(svc, ')')
	if i < 0 || j < i {
		return ""
	}
	return svc[i+1 : j]
}

// loginFields are the fields Dovecot's login processes log
// (login_log_format_elements).
type loginFields struct {
	user, method, session string
	rip                   netip.Addr
	tls                   bool
}

// parseLoginFields reads "user=<u>, method=PLAIN, rip=1.2.3.4, lip=..,
// mpid=1, TLS, session=<s>".
func parseLoginFields(s string) loginFields {
	var f loginFields
	for s != "" {
		var key, val string
		eq := strings.IndexByte(s, '=')
		comma := strings.Index(s, ", ")
		if eq >= 0 && (comma < 0 || eq < comma) {
			key = s[:eq]
			s = s[eq+1:]
			if strings.HasPrefix(s, "<") {
				end := strings.Index(s, ">, ")
				if end < 0 {
					end = strings.LastIndexByte(s, '>')
				}
				if end < 0 {
					val, s = s[1:], ""
				} else {
					val, s = s[1:end], s[end+1:]
				}
				s = strings.TrimPrefix(s, ", ")
			} else if c := strings.Index(s, ", "); c >= 0 {
				val, s = s[:c], s[c+2:]
			} else {
				val, s = s, ""
			}
		} else {
			if comma < 0 {
				key, s = s, ""
			} else {
				key, s = s[:comma], s[comma+2:]
			}
			if key == "TLS" || strings.HasPrefix(key, "TLS:") {
				f.tls = true
			}
			continue
		}
		switch key {
		case "user":
			f.user = val
		case "method":
			f.method = val
		case "rip":
			f.rip, _ = netip.ParseAddr(val)
		case "session":
			f.session = val
		}
	}
	return f
}

func (p *Parser) dovecotLogin(t time.Time, proto events.Proto, text string) (events.Event, Result) {
	switch {
	case strings.HasPrefix(text, "Login: "):
		f := parseLoginFields(text[len("Login: "):])
		if f.user == "" || !f.rip.IsValid() {
			return events.Event{}, ResultUnknown
		}
		s := p.state.get(f.session)
		ev := p.authEvent(t, proto, f.user, f.rip, f.tls, events.ResultOK)
		ev.Client = s.client
		if f.session != "" {
			p.state.put(f.session, session{remote: f.rip, tls: f.tls, client: s.client})
		}
		return ev, ResultEvent
	case strings.Contains(text, "(auth failed, "):
		i := strings.Index(text, "): ")
		if i < 0 {
			return events.Event{}, ResultUnknown
		}
		f := parseLoginFields(text[i+3:])
		if f.user == "" || !f.rip.IsValid() {
			// No username (the client gave up before sending one).
			return events.Event{}, ResultIgnored
		}
		s := p.state.get(f.session)
		ev := p.authEvent(t, proto, f.user, f.rip, f.tls, events.ResultBadPassword)
		ev.Client = s.client
		if s.reason != "" && ev.Result == events.ResultBadPassword {
			ev.Detail = s.reason
		}
		_, after, _ := strings.Cut(text, "(auth failed, ")
		if n, err := strconv.Atoi(fieldBefore(after, " ")); err == nil && n > 1 {
			p.times = min(n, maxTimes)
		}
		p.state.drop(f.session)
		return ev, ResultEvent
	case strings.HasPrefix(text, "ID sent: "):
		i := strings.LastIndex(text, ": user=<")
		if i < 0 {
			return events.Event{}, ResultUnknown
		}
		f := parseLoginFields(text[i+2:])
		if f.session == "" {
			return events.Event{}, ResultIgnored
		}
		s := p.state.get(f.session)
		s.client = clientName(text[len("ID sent: "):i])
		s.remote, s.tls = f.rip, f.tls
		p.state.put(f.session, s)
		return events.Event{}, ResultContext
	}
	return events.Event{}, ResultIgnored
}

// clientName makes "name=Thunderbird, version=115.0" into "Thunderbird
// 115.0".
func clientName(id string) string {
	var name, version string
	for _, kv := range strings.Split(id, ", ") {
		k, v, _ := strings.Cut(kv, "=")
		switch strings.ToLower(k) {
		case "name":
			name = v
		case "version":
			version = v
		}
	}
	if name == "" {
		return ""
	}
	if version != "" {
		return name + " " + version
	}
	return name
}

// authEvent is an events.Auth for username as the embedded server's
// authenticator would emit it: the form, the account when the username
// is (or clearly means) an address served here, and ResultUsernameForm
// for a failure with a wrong form.
func (p *Parser) authEvent(t time.Time, proto events.Proto, username string, remote netip.Addr, tls bool, result events.Result) events.Event {
	form, address := auth.Classify(username, p.opts.IsLocal)
	ev := events.Event{Time: t, Kind: events.Auth, Proto: proto, Remote: remote, TLS: tls, Username: username,
		Form: form, Account: address, Result: result}
	if result != events.ResultOK && form != events.FormFull {
		ev.Result = events.ResultUsernameForm
	}
	return ev
}

// dovecotAuth reads an auth_verbose line, "passwd-file(user,1.2.3.4,<sess>):
// Password mismatch", and remembers the reason for the session's
// disconnect line.
func (p *Parser) dovecotAuth(text string) (events.Event, Result) {
	open := strings.IndexByte(text, '(')
	closeAt := strings.Index(text, "): ")
	if open < 0 || closeAt < open {
		return events.Event{}, ResultIgnored
	}
	reason := text[closeAt+3:]
	switch {
	case strings.HasPrefix(reason, "unknown user"):
		reason = "unknown user"
	case strings.HasPrefix(reason, "Password mismatch"):
		reason = "password mismatch"
	case strings.HasPrefix(reason, "Username character disallowed"):
		reason = "username character disallowed"
	default:
		return events.Event{}, ResultIgnored
	}
	args := strings.Split(text[open+1:closeAt], ",")
	if len(args) < 3 || !strings.HasPrefix(args[len(args)-1], "<") {
		// No session: a Postfix SASL check; Postfix logs that one.
		return events.Event{}, ResultContext
	}
	sess := strings.Trim(args[len(args)-1], "<>")
	s := p.state.get(sess)
	s.reason = reason
	p.state.put(sess, s)
	return events.Event{}, ResultContext
}

// dovecotPOP3 reads the POP3 logout line (pop3_logout_format): "Disconnected:
// Logged out top=0/0, retr=1/38, del=0/3, size=69, uidl_hash=3/0a1b2c3d".
func (p *Parser) dovecotPOP3(t time.Time, svc, text string) (events.Event, Result) {
	i := strings.Index(text, "retr=")
	if i < 0 {
		return events.Event{}, ResultIgnored
	}
	j := 0
	if t := strings.Index(text[:i], "top="); t >= 0 {
		j = t
	} else if sp := strings.LastIndex(text[:i], " "); sp >= 0 {
		j = sp
	}
	user := userOf(svc)
	s := p.state.get(sessionID(svc))
	p.state.drop(sessionID(svc))
	form, address := auth.Classify(user, p.opts.IsLocal)
	if form != events.FormFull {
		return events.Event{}, ResultIgnored
	}
	ev := events.Event{Time: t, Kind: events.POP3Session, Proto: events.ProtoPOP3, Remote: s.remote, TLS: s.tls,
		Account: address, Username: user, Result: events.ResultOK}
	seen := false
	var tops int
	var topBytes int64
	for _, kv := range strings.Split(text[j:], ", ") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			continue
		}
		k = k[strings.LastIndexByte(k, ' ')+1:] // "Logged out top"
		a, b, _ := strings.Cut(v, "/")
		n1, _ := strconv.Atoi(a)
		n2, _ := strconv.ParseInt(b, 10, 64)
		switch k {
		case "top":
			tops, topBytes = n1, n2
		case "retr":
			ev.Retrieved, seen = n1, true
		case "del":
			ev.Deleted, ev.Messages = n1, int(n2)
		case "size":
			ev.Bytes = int64(n1)
		case "uidl_hash", "uidl_change":
			ev.UIDLsBefore, ev.UIDLsAfter = uidlChange(v)
		}
	}
	if !seen || ev.Retrieved < 0 || ev.Deleted < 0 || ev.Messages < 0 || ev.Bytes < 0 {
		return events.Event{}, ResultUnknown
	}
	// Clients that download with TOP (fetchmail does): whole messages
	// when the TOPs sent, on average, at least 90% of an average
	// message; header previews stay uncounted.
	if tops > 0 && ev.Messages > 0 && topBytes > 0 && topBytes*10 >= int64(tops)*(ev.Bytes/int64(ev.Messages))*9 {
		ev.Retrieved += tops
	}
	ev.LeftAll = ev.Retrieved > 0 && ev.Deleted == 0
	return ev, ResultEvent
}

// uidlChange reads Dovecot's %{uidl_change}: "5/bc2b96e5" (unchanged) or
// "0/00000000 -> 5/bc2b96e5"; anything else is unknown ("", "").
func uidlChange(v string) (before, after string) {
	b, a, changed := strings.Cut(v, " -> ")
	if !changed {
		a = b
	}
	if !isCountHash(b) || !isCountHash(a) {
		return "", ""
	}
	return b, a
}

func isCountHash(s string) bool {
	n, h, ok := strings.Cut(s, "/")
	if !ok || n == "" || len(n) > 10 || len(h) != 8 {
		return false
	}
	for _, c := range n {
		if c < '0' || c > '9' {
			return false
		}
	}
	for _, c := range h {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// dovecotIMAP reads the IMAP ID a logged-in client sent (imap_id_log).
func (p *Parser) dovecotIMAP(t time.Time, svc, text string) (events.Event, Result) {
	id, ok := strings.CutPrefix(text, "ID sent: ")
	if !ok {
		return events.Event{}, ResultIgnored
	}
	form, address := auth.Classify(userOf(svc), p.opts.IsLocal)
	name := clientName(id)
	if form != events.FormFull || name == "" {
		return events.Event{}, ResultIgnored
	}
	s := p.state.get(sessionID(svc))
	return events.Event{Time: t, Kind: events.ClientID, Proto: events.ProtoIMAP, Remote: s.remote, TLS: s.tls,
		Account: address, Client: name}, ResultEvent
}

// postfix parses one Postfix line: "host postfix/submission/smtpd[12]:
// text"; only smtpd's lines are used.
func (p *Parser) postfix(t time.Time, msg string) (events.Event, Result) {
	colon := strings.Index(msg, ": ")
	if colon < 0 {
		return events.Event{}, ResultUnknown
	}
	tag := msg[:colon]
	if sp := strings.LastIndexByte(tag, ' '); sp >= 0 {
		tag = tag[sp+1:]
	}
	prog, pid, _ := strings.Cut(tag, "[")
	pid = strings.TrimSuffix(pid, "]")
	if !strings.Contains(prog, "postfix") && !strings.Contains(prog, "/") {
		if prog != "" && len(tag) < colon {
			return events.Event{}, ResultOther // "host prog[pid]: "
		}
		return events.Event{}, ResultUnknown
	}
	service, daemon := "", prog
	if i := strings.LastIndexByte(prog, '/'); i >= 0 {
		service, daemon = prog[:i], prog[i+1:]
	}
	if daemon != "smtpd" {
		return events.Event{}, ResultIgnored
	}
	proto := events.ProtoSMTP
	if strings.Contains(service, "submission") {
		proto = events.ProtoSubmission
	}
	implicitTLS := strings.HasSuffix(service, "submissions") || strings.HasSuffix(service, "smtps")
	text := msg[colon+2:]
	key := prog + "[" + pid + "]"
	switch {
	case strings.HasPrefix(text, "connect from "):
		p.state.put(key, session{tls: implicitTLS})
		return events.Event{}, ResultContext
	case strings.Contains(text, "TLS connection established from "):
		s := p.state.get(key)
		s.tls = true
		p.state.put(key, s)
		return events.Event{}, ResultContext
	case strings.HasPrefix(text, "disconnect from "):
		p.state.drop(key)
		return events.Event{}, ResultIgnored
	}
	tls := p.state.get(key).tls || implicitTLS
	if rest, ok := strings.CutPrefix(text, "warning: "); ok {
		i := strings.Index(rest, ": SASL ")
		if i < 0 || !strings.Contains(rest[i:], " authentication failed: ") {
			return events.Event{}, ResultIgnored
		}
		remote := bracketAddr(rest[:i])
		u := strings.LastIndex(rest, ", sasl_username=")
		if u < 0 || !remote.IsValid() {
			return events.Event{}, ResultIgnored
		}
		user := rest[u+len(", sasl_username="):]
		if user == "" || user == "(unavailable)" {
			return events.Event{}, ResultIgnored
		}
		ev := p.authEvent(t, proto, user, remote, tls, events.ResultBadPassword)
		if reason := rest[i+len(": SASL ") : u]; strings.Contains(reason, "Connection lost to authentication server") {
			return events.Event{}, ResultIgnored // not the client's doing
		}
		return ev, ResultEvent
	}
	if i := strings.Index(text, ": client="); i >= 0 && strings.Contains(text[i:], "sasl_username=") {
		fields := text[i+len(": client="):]
		remote := bracketAddr(strings.TrimSuffix(fieldBefore(fields, ", "), ","))
		user := afterKey(fields, "sasl_username=")
		if user == "" || !remote.IsValid() {
			return events.Event{}, ResultIgnored
		}
		return p.authEvent(t, proto, user, remote, tls, events.ResultOK), ResultEvent
	}
	if rest, ok := strings.CutPrefix(text, "NOQUEUE: reject: "); ok {
		return p.postfixReject(t, proto, tls, rest)
	}
	return events.Event{}, ResultIgnored
}

// postfixReject reads "RCPT from host[1.2.3.4]: 554 5.7.1 <to>: Relay
// access denied; from=<f> to=<t> proto=ESMTP helo=<h>".
func (p *Parser) postfixReject(t time.Time, proto events.Proto, tls bool, rest string) (events.Event, Result) {
	from := strings.Index(rest, " from ")
	colon := strings.Index(rest, ": ")
	semi := strings.LastIndex(rest, "; from=<")
	if from < 0 || colon < from || semi < colon {
		return events.Event{}, ResultUnknown
	}
	remote := bracketAddr(rest[from+len(" from ") : colon])
	reply := rest[colon+2 : semi]
	fields := rest[semi+2:]
	sender, rcpt, helo := angle(fields, "from=<"), angle(fields, "to=<"), angle(fields, "helo=<")
	if !remote.IsValid() {
		return events.Event{}, ResultUnknown
	}
	ev := events.Event{Time: t, Kind: events.SubmissionRefused, Proto: proto, Remote: remote, TLS: tls, Client: helo}
	senderForm, senderAccount := auth.Classify(sender, p.opts.IsLocal)
	withoutAuth := func() {
		ev.Result = events.ResultAuthRequired
		ev.Detail = "MAIL FROM:<" + sender + "> without AUTH"
		if senderForm == events.FormFull {
			ev.Account = senderAccount
		}
	}
	switch {
	case strings.Contains(reply, "Relay access denied"):
		if senderForm == events.FormFull {
			// Relaying is for logged-in clients: a customer's sender
			// refused this way did not log in.
			withoutAuth()
		} else {
			ev.Result, ev.Detail = events.ResultRelay, "RCPT TO:<"+rcpt+"> from MAIL FROM:<"+sender+">"
		}
	case strings.Contains(reply, "Sender address rejected: not logged in"), strings.Contains(reply, "Authentication required"):
		withoutAuth()
	case proto == events.ProtoSubmission && strings.Contains(reply, "Recipient address rejected: Access denied"):
		// smtpd_recipient_restrictions = permit_sasl_authenticated, reject
		withoutAuth()
	case strings.Contains(reply, "Sender address rejected: not owned by user "):
		login := reply[strings.Index(reply, "not owned by user ")+len("not owned by user "):]
		login = strings.TrimRight(login, ". ")
		form, address := auth.Classify(login, p.opts.IsLocal)
		if form != events.FormFull {
			return events.Event{}, ResultIgnored
		}
		ev.Result, ev.Account, ev.Detail = events.ResultForgedSender, address, "MAIL FROM:<"+sender+">"
	default:
		return events.Event{}, ResultIgnored
	}
	if ev.Account == "" && ev.Result != events.ResultRelay {
		return events.Event{}, ResultIgnored
	}
	return ev, ResultEvent
}

// bracketAddr reads the address of "host[1.2.3.4]" (or "[1.2.3.4]").
func bracketAddr(s string) netip.Addr {
	i := strings.LastIndexByte(s, '[')
	j := strings.LastIndexByte(s, ']')
	if i < 0 || j < i {
		return netip.Addr{}
	}
	a, err := netip.ParseAddr(strings.TrimPrefix(s[i+1:j], "IPv6:"))
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

func fieldBefore(s, sep string) string {
	if i := strings.Index(s, sep); i >= 0 {
		return s[:i]
	}
	return s
}

// afterKey is the value of "key=value" up to ", " or the end.
func afterKey(s, key string) string {
	i := strings.Index(s, key)
	if i < 0 {
		return ""
	}
	return fieldBefore(s[i+len(key):], ", ")
}

// angle is the value of `key<value>`.
func angle(s, key string) string {
	i := strings.Index(s, key)
	if i < 0 || (i > 0 && s[i-1] != ' ') {
		return ""
	}
	v := s[i+len(key):]
	if j := strings.IndexByte(v, '>'); j >= 0 {
		return v[:j]
	}
	return ""
}
