package observe

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"mailsetup/finding"
	"mailsetup/server/events"
)

// defaultDeleteAfterDays is the "remove after" days advised when the
// domain's POP3 policy is unknown (Options.DeleteAfterDays nil): the
// server's default policy (server.DefaultDeleteAfterDays), which this
// package cannot import.
const defaultDeleteAfterDays = 7

// maxEvidence is how many groups one finding lists; the rest are counted.
const maxEvidence = 8

// findings derives the current findings from v, worst first: one step
// per finding (or group of findings of one id), in this order.
func (s *Store) findings(v *Account, now time.Time) []finding.Finding {
	d := deriving{v: v, now: now, current: now.Add(-currentFor), days: v.RetentionDays, lastOK: lastLogins(v)}
	pop := s.pop3Advice(v.Address)
	out := slices.Concat(
		d.usernameNotFullAddress(),
		d.loginFailed(),
		d.loginThrottled(),
		d.smtpAuthDisabled(),
		d.smtpForgedSender(),
		d.smtpSendLimit(),
		d.pop3LeftOnServer(pop, s.opts.ExpireDays),
		d.pop3Redownload(pop),
		d.pop3UIDLChanged(),
	)
	slices.SortStableFunc(out, func(a, b finding.Finding) int { return cmp.Compare(b.Severity, a.Severity) })
	if out == nil {
		out = []finding.Finding{}
	}
	return out
}

// deriving is one account's findings in the making.
type deriving struct {
	v   *Account
	now time.Time
	// current: groups whose last event is before it are no longer
	// current; days is the retention, for the evidence.
	current time.Time
	days    int
	// lastOK is the last successful login per protocol and address.
	lastOK map[loginFrom]time.Time
}

// loginFrom is where logins come from: a protocol and an address.
type loginFrom struct {
	proto  events.Proto
	remote netip.Addr
}

// lastLogins returns the last successful login of v per protocol and
// address.
func lastLogins(v *Account) map[loginFrom]time.Time {
	lastOK := map[loginFrom]time.Time{}
	for _, l := range v.Logins {
		k := loginFrom{l.Protocol, l.Remote}
		if l.Last.After(lastOK[k]) {
			lastOK[k] = l.Last
		}
	}
	return lastOK
}

// usernameNotFullAddress: one username.not-full-address per username
// typed and side (incoming or outgoing server).
func (d *deriving) usernameNotFullAddress() []finding.Finding {
	type userKey struct{ user, field string }
	var users []userKey
	byUser := map[userKey][]string{}
	for _, f := range d.v.Failures {
		if f.Result != events.ResultUsernameForm || f.Last.Before(d.current) {
			continue
		}
		k := userKey{f.Username, finding.FieldInUser}
		if f.Protocol == events.ProtoSMTP || f.Protocol == events.ProtoSubmission {
			k.field = finding.FieldOutUser
		}
		if _, ok := byUser[k]; !ok {
			users = append(users, k)
		}
		byUser[k] = append(byUser[k], d.usernameLine(f))
	}
	var out []finding.Finding
	for _, k := range users {
		out = append(out, finding.New("username.not-full-address",
			finding.Vars{"address": d.v.Address, "field": k.field, "value": k.user}, capped(byUser[k])...))
	}
	return out
}

// usernameLine is the evidence of one username-form failure group; for
// a group kept under the local part it says that the domain is a guess.
func (d *deriving) usernameLine(f Failure) string {
	line := fmt.Sprintf("%s %s%s as %q (%s); %s", seen("seen", f.Today, f.Count, d.days), over(f.Protocol, f.Remote),
		clientWords(f.Client), f.Username, formWords(f.Form), firstLast(f.First, f.Last))
	if !f.ByLocalPart {
		return line
	}
	if local, _, ok := strings.Cut(f.Username, "@"); ok {
		line += fmt.Sprintf("; the domain is not served here, so this may be another domain's %s", local)
	} else {
		line += fmt.Sprintf("; %q names no domain, so this may be another domain's %s", f.Username, f.Username)
	}
	if ok := d.lastOK[loginFrom{f.Protocol, f.Remote}]; !ok.IsZero() {
		line += fmt.Sprintf(" (%s logged in %s from there too, last %s)", d.v.Address, f.Protocol, stamp(ok))
	}
	return line
}

// loginFailed: wrong passwords not followed by a successful login of
// the same protocol from the same address.
func (d *deriving) loginFailed() []finding.Finding {
	var failed []string
	var failedN int
	var failedRemotes []netip.Addr
	for _, f := range d.v.Failures {
		if f.Result != events.ResultBadPassword || f.Last.Before(d.current) {
			continue
		}
		ok := d.lastOK[loginFrom{f.Protocol, f.Remote}]
		if !f.Last.After(ok) {
			continue
		}
		since := "no successful login from there"
		if !ok.IsZero() {
			since = "last successful login from there " + stamp(ok)
		}
		failed = append(failed, fmt.Sprintf("%s %s%s as %q; %s; %s", seen("refused", f.Today, f.Count, d.days),
			over(f.Protocol, f.Remote), clientWords(f.Client), f.Username, firstLast(f.First, f.Last), since))
		failedN += f.Count
		if !slices.Contains(failedRemotes, f.Remote) {
			failedRemotes = append(failedRemotes, f.Remote)
		}
	}
	if len(failed) == 0 {
		return nil
	}
	value := fmt.Sprintf("wrong password %s in %d days from %s", times(failedN), d.days, addresses(failedRemotes))
	return []finding.Finding{finding.New("login.failed", finding.Vars{"address": d.v.Address, "value": value}, capped(failed)...)}
}

// loginThrottled: logins refused for too many failures in the last 24
// hours.
func (d *deriving) loginThrottled() []finding.Finding {
	var throttled []string
	var throttledLast time.Time
	for _, f := range d.v.Failures {
		if f.Result != events.ResultThrottled || f.Last.Before(d.now.Add(-24*time.Hour)) {
			continue
		}
		throttled = append(throttled, fmt.Sprintf("%s %s as %q; %s", seen("blocked", f.Today, f.Count, d.days),
			over(f.Protocol, f.Remote), f.Username, firstLast(f.First, f.Last)))
		if f.Last.After(throttledLast) {
			throttledLast = f.Last
		}
	}
	if len(throttled) == 0 {
		return nil
	}
	value := "logins refused for too many failures, the last " + stamp(throttledLast)
	return []finding.Finding{finding.New("login.throttled", finding.Vars{"address": d.v.Address, "value": value}, capped(throttled)...)}
}

// refusals returns the evidence lines of the current refusals with
// result, in order.
func (d *deriving) refusals(result events.Result) (lines []string, refused []Refusal) {
	for _, r := range d.v.Refusals {
		if r.Result != result || r.Last.Before(d.current) {
			continue
		}
		lines = append(lines, fmt.Sprintf("%s %s%s: %s; %s", seen("refused", r.Today, r.Count, d.days), over(r.Protocol, r.Remote),
			clientWords(r.Client), r.Detail, firstLast(r.First, r.Last)))
		refused = append(refused, r)
	}
	return lines, refused
}

// smtpAuthDisabled: submissions refused because the client did not log
// in.
func (d *deriving) smtpAuthDisabled() []finding.Finding {
	lines, _ := d.refusals(events.ResultAuthRequired)
	if len(lines) == 0 {
		return nil
	}
	return []finding.Finding{finding.New("smtp.auth-disabled", finding.Vars{"address": d.v.Address}, capped(lines)...)}
}

// smtpSendLimit: recipients refused over the account's sending limit.
func (d *deriving) smtpSendLimit() []finding.Finding {
	lines, _ := d.refusals(events.ResultSendLimit)
	if len(lines) == 0 {
		return nil
	}
	return []finding.Finding{finding.New("smtp.send-limit", finding.Vars{"address": d.v.Address}, capped(lines)...)}
}

// smtpForgedSender: one smtp.forged-sender per refused sender address.
func (d *deriving) smtpForgedSender() []finding.Finding {
	lines, refused := d.refusals(events.ResultForgedSender)
	var senders []string
	bySender := map[string][]string{}
	for i, r := range refused {
		sender := senderOf(r.Detail)
		if _, ok := bySender[sender]; !ok {
			senders = append(senders, sender)
		}
		bySender[sender] = append(bySender[sender], lines[i])
	}
	var out []finding.Finding
	for _, sender := range senders {
		out = append(out, finding.New("smtp.forged-sender", finding.Vars{"address": d.v.Address, "value": sender}, capped(bySender[sender])...))
	}
	return out
}

// pop3Advice is what the POP3 findings of an account advise, from the
// options.
type pop3Advice struct {
	// policy is the domain's "delete after N days" (0: download and
	// delete); known says it came from Options.DeleteAfterDays.
	policy int
	known  bool
	// expected is the days to advise: the policy's, or the server's
	// default when the policy downloads and deletes.
	expected int
}

// pop3Advice returns the POP3 advice for address's domain.
func (s *Store) pop3Advice(address string) pop3Advice {
	a := pop3Advice{policy: defaultDeleteAfterDays}
	if s.opts.DeleteAfterDays != nil {
		a.policy, a.known = s.opts.DeleteAfterDays(domainOf(address)), true
	}
	a.expected = a.policy
	if a.expected <= 0 {
		// The policy downloads and deletes; re-downloads are still
		// advised against with the server's default.
		a.expected = defaultDeleteAfterDays
	}
	return a
}

func domainOf(address string) string { return address[strings.LastIndexByte(address, '@')+1:] }

// pop3LeftOnServer: POP3 client addresses whose sessions retrieved mail
// and never deleted any: pop3.leave-forever, or pop3.leave-against-policy
// when the policy does not leave mail on the server at all. With the
// domain's server-side expiry (expireDays, may be nil) it is a warning.
func (d *deriving) pop3LeftOnServer(a pop3Advice, expireDays func(domain string) int) []finding.Finding {
	var leave []string
	var leaveSessions int
	var leaveRemotes []netip.Addr
	for _, c := range d.v.POP3 {
		if c.Last.Before(d.current) || !(c.LeftAll > 0 && c.DeletingSessions == 0 && c.Retrieved > 0) {
			continue
		}
		leave = append(leave, fmt.Sprintf("pop3 from %s: %s in %d days (%d today), %d messages retrieved, none deleted; %s; %s",
			addr(c.Remote), plural(c.Sessions, "session"), d.days, c.SessionsToday, c.Retrieved, maildropWords(c.Maildrop, d.now), firstLast(c.First, c.Last)))
		leaveSessions += c.Sessions
		leaveRemotes = append(leaveRemotes, c.Remote)
	}
	if len(leave) == 0 {
		return nil
	}
	value := fmt.Sprintf("%s from %s deleted nothing", plural(leaveSessions, "session"), addresses(leaveRemotes))
	if d.v.Mailbox != nil {
		value += "; " + maildropWords(*d.v.Mailbox, d.now)
	}
	if a.known && a.policy <= 0 {
		// The policy does not leave mail on the server at all: the
		// probe's finding for that case.
		return []finding.Finding{finding.New("pop3.leave-against-policy", finding.Vars{"address": d.v.Address, "value": value}, capped(leave)...)}
	}
	f := finding.New("pop3.leave-forever",
		finding.Vars{"address": d.v.Address, "value": value, "expected": strconv.Itoa(a.expected)}, capped(leave)...)
	if expireDays != nil {
		if n := expireDays(domainOf(d.v.Address)); n > 0 {
			f.Severity = finding.Warning
			f.Evidence = append(f.Evidence, fmt.Sprintf("the server itself removes mail retrieved over POP3 more than %d days ago (CAPA EXPIRE %d), so it does not pile up for ever", n, n))
		}
	}
	return []finding.Finding{f}
}

// pop3Redownload: POP3 client addresses that retrieved again messages
// they had already retrieved.
func (d *deriving) pop3Redownload(a pop3Advice) []finding.Finding {
	var redown []string
	var redownN, redownSessions int
	var redownRemotes []netip.Addr
	for _, c := range d.v.POP3 {
		if c.Last.Before(d.current) || c.Redownloaded <= 0 {
			continue
		}
		redown = append(redown, fmt.Sprintf("pop3 from %s: %d messages downloaded again in %d of %s in %d days; %s",
			addr(c.Remote), c.Redownloaded, c.RedownloadSessions, plural(c.Sessions, "session"), d.days, firstLast(c.First, c.Last)))
		redownN += c.Redownloaded
		redownSessions += c.RedownloadSessions
		redownRemotes = append(redownRemotes, c.Remote)
	}
	if len(redown) == 0 {
		return nil
	}
	value := fmt.Sprintf("%d messages in %s from %s", redownN, plural(redownSessions, "session"), addresses(redownRemotes))
	return []finding.Finding{finding.New("pop3.redownload",
		finding.Vars{"address": d.v.Address, "value": value, "expected": strconv.Itoa(a.expected)}, capped(redown)...)}
}

// stamp formats a time for people: "2026-11-28 14:02 UTC".
func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

func firstLast(first, last time.Time) string {
	if first.Equal(last) || last.Sub(first) < time.Minute {
		return "at " + stamp(last)
	}
	return "first " + stamp(first) + ", last " + stamp(last)
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}

func times(n int) string { return plural(n, "time") }

// seen says "seen 14 times today (31 in 30 days)".
func seen(verb string, today, total, days int) string {
	return fmt.Sprintf("%s %s today (%d in %d days)", verb, times(today), total, days)
}

func addr(a netip.Addr) string {
	if !a.IsValid() {
		return "an unknown address"
	}
	return a.String()
}

func over(proto events.Proto, remote netip.Addr) string {
	return "over " + string(proto) + " from " + addr(remote)
}

func addresses(as []netip.Addr) string {
	if len(as) == 1 {
		return addr(as[0])
	}
	return strconv.Itoa(len(as)) + " addresses"
}

func clientWords(c string) string {
	if c == "" {
		return ""
	}
	return fmt.Sprintf(" (client %q)", c)
}

func formWords(form events.Form) string {
	switch form {
	case events.FormLocalPart:
		return "the bare local part"
	case events.FormSeparator:
		return "a user/domain form instead of the address"
	case events.FormUnknownDomain:
		return "an address of a domain this server does not host"
	case events.FormMalformed:
		return "not an email address"
	case events.FormFull:
		return "the full address"
	}
	return "form " + strconv.Quote(string(form))
}

// senderOf takes the address out of "MAIL FROM:<x>".
func senderOf(detail string) string {
	if i := strings.IndexByte(detail, '<'); i >= 0 {
		if j := strings.LastIndexByte(detail, '>'); j > i {
			return detail[i+1 : j]
		}
	}
	return detail
}

func maildropWords(m Mailbox, now time.Time) string {
	s := fmt.Sprintf("at the last session %s, %s on the server", plural(m.Messages, "message"), size(m.Bytes))
	if !m.Oldest.IsZero() {
		s += fmt.Sprintf(", the oldest %s old", plural(int(now.Sub(m.Oldest)/(24*time.Hour)), "day"))
	}
	return s
}

// size formats bytes for people: "1.2 GB".
func size(b int64) string {
	const unit = 1000
	if b < unit {
		return plural(int(b), "byte")
	}
	f, units := float64(b)/unit, "kMGTPE"
	i := 0
	for f >= unit && i < len(units)-1 {
		f /= unit
		i++
	}
	return fmt.Sprintf("%.1f %cB", f, units[i])
}

// capped keeps maxEvidence lines and counts the rest.
func capped(lines []string) []string {
	if len(lines) <= maxEvidence {
		return lines
	}
	more := len(lines) - maxEvidence
	return append(lines[:maxEvidence:maxEvidence], fmt.Sprintf("and %d more (see the lists)", more))
}
