package observe

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"
	"time"

	"mailsetup/finding"
	"mailsetup/server/events"
)

// Account is what the server saw from one account's clients during the
// retention period. Counts cover RetentionDays whole UTC days up to AsOf;
// "today" is AsOf's UTC day. Lists are most recent first.
type Account struct {
	Address string `json:"address"`
	// AsOf is when this view was made.
	AsOf time.Time `json:"as_of"`
	// RetentionDays is how many UTC days the counts cover, today
	// included.
	RetentionDays int       `json:"retention_days"`
	FirstSeen     time.Time `json:"first_seen"`
	LastSeen      time.Time `json:"last_seen"`
	// Logins are the successful logins per protocol and address.
	Logins []Login `json:"logins"`
	// Failures are the refused logins per protocol, address, reason,
	// username form and username typed.
	Failures []Failure `json:"failures"`
	// Refusals are the refused submissions (MAIL/RCPT) per protocol,
	// address, reason and client.
	Refusals []Refusal `json:"refusals"`
	// POP3 are the POP3 clients, one per address.
	POP3 []POP3Client `json:"pop3"`
	// Deliveries are the messages delivered into the mailbox.
	Deliveries      int       `json:"deliveries"`
	DeliveriesToday int       `json:"deliveries_today"`
	LastDelivery    time.Time `json:"last_delivery,omitzero"`
	// Mailbox is the maildrop at the latest POP3 session, when there was
	// one.
	Mailbox *Mailbox `json:"mailbox,omitempty"`
	// UIDLChange is the latest change of the maildrop's UIDLs between
	// two POP3 sessions, when a log showed one (uidl.go).
	UIDLChange *UIDLChange `json:"uidl_change,omitempty"`
	// Sent are the latest outcomes of the account's mail to other
	// domains, most recent first: "to bob@example.net: delivered to
	// mx1.example.net", "... bounced: 550 5.1.1 user unknown".
	Sent []Sent `json:"sent"`
	// Findings are derived from the lists above, worst first, with the
	// probe's ids and wording (see the package doc for the rules).
	Findings []finding.Finding `json:"findings"`
	// Timeline is the account's counts per UTC day, oldest first: the
	// last TimelineDays days (fewer when the retention is shorter),
	// today last, a day with nothing included, so that the console
	// draws one bar per day.
	Timeline []Day `json:"timeline"`
}

// TimelineDays is how many days Account.Timeline covers at most.
const TimelineDays = 30

// Day is one UTC day of an account's timeline.
type Day struct {
	// Date is the day's start (00:00 UTC).
	Date time.Time `json:"date"`
	// Logins are the successful logins.
	Logins int `json:"logins"`
	// The refused logins by reason: a wrong password (or an account
	// that does not exist, never told apart, and any other reason), a
	// username that is not the full address, a client held back by the
	// throttle.
	BadPassword  int `json:"bad_password"`
	UsernameForm int `json:"username_form"`
	Throttled    int `json:"throttled"`
	// Refused are the refused submissions (no authentication, a forged
	// sender, ...).
	Refused int `json:"refused"`
	// Redownloaded are the messages POP3 clients retrieved again.
	Redownloaded int `json:"redownloaded"`
}

// Failures returns the day's refused logins, all reasons.
func (d Day) Failures() int { return d.BadPassword + d.UsernameForm + d.Throttled }

// Total returns everything counted on the day.
func (d Day) Total() int { return d.Logins + d.Failures() + d.Refused + d.Redownloaded }

// Sent is one outbound delivery outcome.
type Sent struct {
	Time time.Time `json:"time"`
	// Result is ok (delivered), deferred or bounced.
	Result events.Result `json:"result"`
	Detail string        `json:"detail"`
	TLS    bool          `json:"tls"`
}

// Login is a group of successful logins.
type Login struct {
	Protocol events.Proto `json:"protocol"`
	Remote   netip.Addr   `json:"remote"`
	// Username is what the client typed at the last login.
	Username string `json:"username"`
	// Client is the client's name: IMAP ID name and version, or the EHLO
	// name of its submissions.
	Client string `json:"client,omitempty"`
	// TLS: the last login was over TLS.
	TLS   bool      `json:"tls"`
	Count int       `json:"count"`
	Today int       `json:"today"`
	First time.Time `json:"first"`
	Last  time.Time `json:"last"`
}

// Failure is a group of refused logins.
type Failure struct {
	Protocol events.Proto `json:"protocol"`
	Remote   netip.Addr   `json:"remote"`
	// Result is why: bad-password (or no such account: never told
	// apart), username-form, throttled.
	Result events.Result `json:"result"`
	// Form is the username's form.
	Form events.Form `json:"form,omitempty"`
	// Client is the client's name at the last attempt, when the
	// protocol tells it (EHLO on submission, IMAP ID before login).
	Client   string `json:"client,omitempty"`
	Username string `json:"username"`
	// TLS: the last attempt was over TLS.
	TLS   bool      `json:"tls"`
	Count int       `json:"count"`
	Today int       `json:"today"`
	First time.Time `json:"first"`
	Last  time.Time `json:"last"`
	// ByLocalPart: the username was a bare local part, which names no
	// domain; the failure is shown with every address of that local part
	// and may belong to another domain's account.
	ByLocalPart bool `json:"by_local_part,omitempty"`
}

// Refusal is a group of refused submissions.
type Refusal struct {
	Protocol events.Proto `json:"protocol"`
	Remote   netip.Addr   `json:"remote"`
	// Result is why: auth-required, forged-sender, relay,
	// unknown-recipient, too-large, over-quota.
	Result events.Result `json:"result"`
	// Client is the EHLO name.
	Client string `json:"client,omitempty"`
	// Detail is the latest refusal, e.g. "MAIL FROM:<x> without AUTH".
	Detail string    `json:"detail,omitempty"`
	TLS    bool      `json:"tls"`
	Count  int       `json:"count"`
	Today  int       `json:"today"`
	First  time.Time `json:"first"`
	Last   time.Time `json:"last"`
}

// POP3Client adds up the POP3 sessions from one address.
type POP3Client struct {
	Remote        netip.Addr `json:"remote"`
	TLS           bool       `json:"tls"`
	Sessions      int        `json:"sessions"`
	SessionsToday int        `json:"sessions_today"`
	// Retrieved messages; Redownloaded of them had been retrieved in an
	// earlier session, in RedownloadSessions sessions.
	Retrieved          int `json:"retrieved"`
	Redownloaded       int `json:"redownloaded"`
	RedownloadSessions int `json:"redownload_sessions"`
	Deleted            int `json:"deleted"`
	// LeftAll are the sessions that retrieved mail and deleted none,
	// DeletingSessions those that deleted something.
	LeftAll          int       `json:"left_all"`
	DeletingSessions int       `json:"deleting_sessions"`
	First            time.Time `json:"first"`
	Last             time.Time `json:"last"`
	// Maildrop is the mailbox at the last session's login.
	Maildrop Mailbox `json:"maildrop"`
}

// Mailbox is the size of a maildrop at a POP3 login.
type Mailbox struct {
	Messages int   `json:"messages"`
	Bytes    int64 `json:"bytes"`
	// Oldest is the internal date of the oldest message (zero: empty).
	Oldest time.Time `json:"oldest,omitzero"`
	// AsOf is the session's time.
	AsOf time.Time `json:"as_of"`
}

func unix(sec int64) time.Time {
	if sec == 0 {
		return time.Time{}
	}
	return time.Unix(sec, 0).UTC()
}

// Account returns the observations of one account (address compared
// case-insensitively); ok false when nothing was seen.
func (s *Store) Account(address string) (Account, bool) {
	key := accountKey(address)
	if key == "" {
		return Account{}, false
	}
	now := s.now()
	v := Account{Address: key, AsOf: now.UTC(), RetentionDays: int(s.retDays)}
	local := localPartKey(key[:strings.LastIndexByte(key, '@')])
	found := false
	s.mu.Lock()
	cut, today := s.cut(now), dayOf(now.Unix())
	v.Timeline = timeline(today, min(TimelineDays, s.retDays))
	if a := s.accounts[key]; a != nil {
		s.pruneAccount(a, cut)
		if s.accounts[key] == a {
			found = true
			s.view(&v, a, today, false)
		}
	}
	if a := s.accounts[local]; a != nil && local != "" {
		s.pruneAccount(a, cut)
		if s.accounts[local] == a && len(a.Failures) > 0 {
			found = true
			s.view(&v, a, today, true)
		}
	}
	s.mu.Unlock()
	if !found {
		return Account{}, false
	}
	v.sort()
	v.Findings = s.findings(&v, now)
	return v, true
}

// view adds a's observations to v; byLocal takes only its failures.
func (s *Store) view(v *Account, a *account, today int32, byLocal bool) {
	seen := func(first, last int64) {
		if f := unix(first); !f.IsZero() && (v.FirstSeen.IsZero() || f.Before(v.FirstSeen)) {
			v.FirstSeen = f
		}
		if l := unix(last); l.After(v.LastSeen) {
			v.LastSeen = l
		}
	}
	for i := range a.Failures {
		g := &a.Failures[i]
		n, t := sums(g.Days, today)
		first := firstOf(g.Days)
		v.Failures = append(v.Failures, Failure{Protocol: g.Proto, Remote: g.Remote, Result: g.Result, Form: g.Form,
			Username: g.Username, Client: g.Client, TLS: g.TLS, Count: n, Today: t, First: unix(first), Last: unix(g.Last), ByLocalPart: byLocal})
		seen(first, g.Last)
		for _, d := range g.Days {
			if x := v.day(d.Day, today); x != nil {
				switch g.Result {
				case events.ResultUsernameForm:
					x.UsernameForm += int(d.N)
				case events.ResultThrottled:
					x.Throttled += int(d.N)
				default:
					x.BadPassword += int(d.N)
				}
			}
		}
	}
	if byLocal {
		return
	}
	for i := range a.Logins {
		g := &a.Logins[i]
		n, t := sums(g.Days, today)
		first := firstOf(g.Days)
		v.Logins = append(v.Logins, Login{Protocol: g.Proto, Remote: g.Remote, Username: g.Username, Client: g.Client,
			TLS: g.TLS, Count: n, Today: t, First: unix(first), Last: unix(g.Last)})
		seen(first, g.Last)
		for _, d := range g.Days {
			if x := v.day(d.Day, today); x != nil {
				x.Logins += int(d.N)
			}
		}
	}
	for i := range a.Refusals {
		g := &a.Refusals[i]
		n, t := sums(g.Days, today)
		first := firstOf(g.Days)
		v.Refusals = append(v.Refusals, Refusal{Protocol: g.Proto, Remote: g.Remote, Result: g.Result, Client: g.Client,
			Detail: g.Detail, TLS: g.TLS, Count: n, Today: t, First: unix(first), Last: unix(g.Last)})
		seen(first, g.Last)
		for _, d := range g.Days {
			if x := v.day(d.Day, today); x != nil {
				x.Refused += int(d.N)
			}
		}
	}
	if c := a.UIDLChange; c != nil && c.Last >= int64(s.cut(s.now()))*secondsPerDay {
		v.UIDLChange = &UIDLChange{Remote: c.Remote, Sessions: c.Count, First: unix(c.First), Last: unix(c.Last), Was: c.Was, Now: c.Now}
	}
	var latest *pop3Group
	for i := range a.POP3 {
		g := &a.POP3[i]
		c := POP3Client{Remote: g.Remote, TLS: g.TLS, First: unix(firstOf(g.Days)), Last: unix(g.Last),
			Maildrop: Mailbox{Messages: g.Messages, Bytes: g.Bytes, Oldest: unix(g.Oldest), AsOf: unix(g.Last)}}
		for _, d := range g.Days {
			c.Sessions += int(d.Sessions)
			if d.Day == today {
				c.SessionsToday = int(d.Sessions)
			}
			c.Retrieved += int(d.Retrieved)
			c.Redownloaded += int(d.Redownloaded)
			c.RedownloadSessions += int(d.RedownloadSessions)
			c.Deleted += int(d.Deleted)
			c.LeftAll += int(d.LeftAll)
			c.DeletingSessions += int(d.Deleting)
			if x := v.day(d.Day, today); x != nil {
				x.Redownloaded += int(d.Redownloaded)
			}
		}
		v.POP3 = append(v.POP3, c)
		seen(firstOf(g.Days), g.Last)
		if latest == nil || g.Last > latest.Last {
			latest = g
		}
	}
	if latest != nil {
		v.Mailbox = &Mailbox{Messages: latest.Messages, Bytes: latest.Bytes, Oldest: unix(latest.Oldest), AsOf: unix(latest.Last)}
	}
	v.Deliveries, v.DeliveriesToday = sums(a.Deliveries, today)
	v.LastDelivery = unix(a.LastDelivery)
	for i := len(a.Sent) - 1; i >= 0; i-- {
		x := a.Sent[i]
		v.Sent = append(v.Sent, Sent{Time: unix(x.Sec), Result: x.Result, Detail: x.Detail, TLS: x.TLS})
		seen(x.Sec, x.Sec)
	}
	if len(a.Deliveries) > 0 {
		seen(firstOf(a.Deliveries), a.LastDelivery)
	}
}

// timeline returns n empty days ending with today.
func timeline(today, n int32) []Day {
	out := make([]Day, n)
	for i := range out {
		out[i].Date = unix(int64(today-n+1+int32(i)) * secondsPerDay)
	}
	return out
}

// day returns the timeline's entry of day, nil when it is not shown.
func (v *Account) day(day, today int32) *Day {
	i := len(v.Timeline) - 1 - int(today-day)
	if i < 0 || i >= len(v.Timeline) {
		return nil
	}
	return &v.Timeline[i]
}

// sort orders every list most recent first, ties in a fixed order, and
// makes empty lists [] in JSON.
func (v *Account) sort() {
	recent := func(a, b time.Time) int { return b.Compare(a) }
	slices.SortStableFunc(v.Logins, func(a, b Login) int {
		return cmp.Or(recent(a.Last, b.Last), cmp.Compare(a.Protocol, b.Protocol), a.Remote.Compare(b.Remote))
	})
	slices.SortStableFunc(v.Failures, func(a, b Failure) int {
		return cmp.Or(recent(a.Last, b.Last), cmp.Compare(a.Protocol, b.Protocol), a.Remote.Compare(b.Remote),
			cmp.Compare(a.Result, b.Result), cmp.Compare(a.Form, b.Form), strings.Compare(a.Username, b.Username))
	})
	slices.SortStableFunc(v.Refusals, func(a, b Refusal) int {
		return cmp.Or(recent(a.Last, b.Last), cmp.Compare(a.Protocol, b.Protocol), a.Remote.Compare(b.Remote),
			cmp.Compare(a.Result, b.Result), strings.Compare(a.Client, b.Client))
	})
	slices.SortStableFunc(v.POP3, func(a, b POP3Client) int {
		return cmp.Or(recent(a.Last, b.Last), a.Remote.Compare(b.Remote))
	})
	if v.Logins == nil {
		v.Logins = []Login{}
	}
	if v.Failures == nil {
		v.Failures = []Failure{}
	}
	if v.Refusals == nil {
		v.Refusals = []Refusal{}
	}
	if v.Sent == nil {
		v.Sent = []Sent{}
	}
	if v.POP3 == nil {
		v.POP3 = []POP3Client{}
	}
}
