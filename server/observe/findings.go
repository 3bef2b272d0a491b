package observe

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"mailsetup/probe"
)

// defaultDeleteAfterDays is the "remove after" days advised when the
// domain's POP3 policy is unknown (Options.DeleteAfterDays nil): the
// server's default policy (server.DefaultDeleteAfterDays), which this
// package cannot import.
const defaultDeleteAfterDays = 7

// maxEvidence is how many groups one finding lists; the rest are counted.
const maxEvidence = 8

// The names of the username fields as the clients' settings dialogs call
// them, as the probe words them.
const (
	fieldInUser  = `the incoming server's "Username" [Outlook: "User Name"]`
	fieldOutUser = `the outgoing server's (SMTP) "Username" [Outlook: "Logon using ... User Name"]`
)

// findings derives the current findings from v, worst first.
func (s *Store) findings(v *Account, now time.Time) []probe.Finding {
	current := now.Add(-currentFor)
	days := v.RetentionDays
	var out []probe.Finding

	// The last successful login per protocol and address.
	type from struct {
		proto  string
		remote netip.Addr
	}
	lastOK := map[from]time.Time{}
	for _, l := range v.Logins {
		k := from{l.Protocol, l.Remote}
		if l.Last.After(lastOK[k]) {
			lastOK[k] = l.Last
		}
	}

	// username.not-full-address: one finding per username and side.
	type userKey struct{ user, field string }
	var users []userKey
	byUser := map[userKey][]string{}
	for _, f := range v.Failures {
		if f.Result != "username-form" || f.Last.Before(current) {
			continue
		}
		k := userKey{f.Username, fieldInUser}
		if f.Protocol == "smtp" || f.Protocol == "submission" {
			k.field = fieldOutUser
		}
		if _, ok := byUser[k]; !ok {
			users = append(users, k)
		}
		line := fmt.Sprintf("%s %s%s as %q (%s); %s", seen("seen", f.Today, f.Count, days), over(f.Protocol, f.Remote),
			clientWords(f.Client), f.Username, formWords(f.Form), firstLast(f.First, f.Last))
		if f.ByLocalPart {
			if local, _, ok := strings.Cut(f.Username, "@"); ok {
				line += fmt.Sprintf("; the domain is not served here, so this may be another domain's %s", local)
			} else {
				line += fmt.Sprintf("; %q names no domain, so this may be another domain's %s", f.Username, f.Username)
			}
			if ok := lastOK[from{f.Protocol, f.Remote}]; !ok.IsZero() {
				line += fmt.Sprintf(" (%s logged in %s from there too, last %s)", v.Address, f.Protocol, stamp(ok))
			}
		}
		byUser[k] = append(byUser[k], line)
	}
	for _, k := range users {
		out = append(out, probe.NewFinding("username.not-full-address",
			map[string]string{"address": v.Address, "field": k.field, "value": k.user}, capped(byUser[k])...))
	}

	// login.failed: wrong passwords not followed by a successful login
	// of the same protocol from the same address.
	var failed []string
	var failedN int
	var failedRemotes []netip.Addr
	for _, f := range v.Failures {
		if f.Result != "bad-password" || f.Last.Before(current) {
			continue
		}
		ok := lastOK[from{f.Protocol, f.Remote}]
		if !f.Last.After(ok) {
			continue
		}
		since := "no successful login from there"
		if !ok.IsZero() {
			since = "last successful login from there " + stamp(ok)
		}
		failed = append(failed, fmt.Sprintf("%s %s%s as %q; %s; %s", seen("refused", f.Today, f.Count, days),
			over(f.Protocol, f.Remote), clientWords(f.Client), f.Username, firstLast(f.First, f.Last), since))
		failedN += f.Count
		if !slices.Contains(failedRemotes, f.Remote) {
			failedRemotes = append(failedRemotes, f.Remote)
		}
	}
	if len(failed) > 0 {
		value := fmt.Sprintf("wrong password %s in %d days from %s", times(failedN), days, addresses(failedRemotes))
		out = append(out, probe.NewFinding("login.failed", map[string]string{"address": v.Address, "value": value}, capped(failed)...))
	}

	// login.throttled: in the last 24 hours.
	var throttled []string
	var throttledLast time.Time
	for _, f := range v.Failures {
		if f.Result != "throttled" || f.Last.Before(now.Add(-24*time.Hour)) {
			continue
		}
		throttled = append(throttled, fmt.Sprintf("%s %s as %q; %s", seen("blocked", f.Today, f.Count, days),
			over(f.Protocol, f.Remote), f.Username, firstLast(f.First, f.Last)))
		if f.Last.After(throttledLast) {
			throttledLast = f.Last
		}
	}
	if len(throttled) > 0 {
		value := "logins refused for too many failures, the last " + stamp(throttledLast)
		out = append(out, probe.NewFinding("login.throttled", map[string]string{"address": v.Address, "value": value}, capped(throttled)...))
	}

	// smtp.auth-disabled and smtp.forged-sender.
	var noAuth []string
	var senders []string
	bySender := map[string][]string{}
	for _, r := range v.Refusals {
		if r.Last.Before(current) {
			continue
		}
		line := fmt.Sprintf("%s %s%s: %s; %s", seen("refused", r.Today, r.Count, days), over(r.Protocol, r.Remote),
			clientWords(r.Client), r.Detail, firstLast(r.First, r.Last))
		switch r.Result {
		case "auth-required":
			noAuth = append(noAuth, line)
		case "forged-sender":
			sender := senderOf(r.Detail)
			if _, ok := bySender[sender]; !ok {
				senders = append(senders, sender)
			}
			bySender[sender] = append(bySender[sender], line)
		}
	}
	if len(noAuth) > 0 {
		out = append(out, probe.NewFinding("smtp.auth-disabled", map[string]string{"address": v.Address}, capped(noAuth)...))
	}
	for _, sender := range senders {
		out = append(out, probe.NewFinding("smtp.forged-sender", map[string]string{"address": v.Address, "value": sender}, capped(bySender[sender])...))
	}

	// POP3.
	policy, known := defaultDeleteAfterDays, false
	if s.opts.DeleteAfterDays != nil {
		policy, known = s.opts.DeleteAfterDays(v.Address[strings.LastIndexByte(v.Address, '@')+1:]), true
	}
	expected := policy
	if expected <= 0 {
		// The policy downloads and deletes; re-downloads are still
		// advised against with the server's default.
		expected = defaultDeleteAfterDays
	}
	var leave, redown []string
	var leaveSessions, redownN, redownSessions int
	var leaveRemotes, redownRemotes []netip.Addr
	for _, c := range v.POP3 {
		if c.Last.Before(current) {
			continue
		}
		if c.LeftAll > 0 && c.DeletingSessions == 0 && c.Retrieved > 0 {
			leave = append(leave, fmt.Sprintf("pop3 from %s: %s in %d days (%d today), %d messages retrieved, none deleted; %s; %s",
				addr(c.Remote), plural(c.Sessions, "session"), days, c.SessionsToday, c.Retrieved, maildropWords(c.Maildrop, now), firstLast(c.First, c.Last)))
			leaveSessions += c.Sessions
			leaveRemotes = append(leaveRemotes, c.Remote)
		}
		if c.Redownloaded > 0 {
			redown = append(redown, fmt.Sprintf("pop3 from %s: %d messages downloaded again in %d of %s in %d days; %s",
				addr(c.Remote), c.Redownloaded, c.RedownloadSessions, plural(c.Sessions, "session"), days, firstLast(c.First, c.Last)))
			redownN += c.Redownloaded
			redownSessions += c.RedownloadSessions
			redownRemotes = append(redownRemotes, c.Remote)
		}
	}
	if len(leave) > 0 {
		value := fmt.Sprintf("%s from %s deleted nothing", plural(leaveSessions, "session"), addresses(leaveRemotes))
		if v.Mailbox != nil {
			value += "; " + maildropWords(*v.Mailbox, now)
		}
		if known && policy <= 0 {
			// The policy does not leave mail on the server at all: the
			// probe's finding for that case.
			out = append(out, probe.NewFinding("pop3.leave-against-policy", map[string]string{"address": v.Address, "value": value}, capped(leave)...))
		} else {
			f := probe.NewFinding("pop3.leave-forever",
				map[string]string{"address": v.Address, "value": value, "expected": strconv.Itoa(expected)}, capped(leave)...)
			if s.opts.ExpireDays != nil {
				if d := s.opts.ExpireDays(v.Address[strings.LastIndexByte(v.Address, '@')+1:]); d > 0 {
					f.Severity = probe.Warning
					f.Evidence = append(f.Evidence, fmt.Sprintf("the server itself removes mail retrieved over POP3 more than %d days ago (CAPA EXPIRE %d), so it does not pile up for ever", d, d))
				}
			}
			out = append(out, f)
		}
	}
	if len(redown) > 0 {
		value := fmt.Sprintf("%d messages in %s from %s", redownN, plural(redownSessions, "session"), addresses(redownRemotes))
		out = append(out, probe.NewFinding("pop3.redownload",
			map[string]string{"address": v.Address, "value": value, "expected": strconv.Itoa(expected)}, capped(redown)...))
	}

	slices.SortStableFunc(out, func(a, b probe.Finding) int { return cmp.Compare(b.Severity, a.Severity) })
	if out == nil {
		out = []probe.Finding{}
	}
	return out
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

func over(proto string, remote netip.Addr) string {
	return "over " + proto + " from " + addr(remote)
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

func formWords(form string) string {
	switch form {
	case "local-part":
		return "the bare local part"
	case "wrong-separator":
		return "a user/domain form instead of the address"
	case "unknown-domain":
		return "an address of a domain this server does not host"
	case "malformed":
		return "not an email address"
	case "full-address":
		return "the full address"
	}
	return "form " + strconv.Quote(form)
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
