package observe

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"mailsetup/server/events"
)

// Per-account caps; the least recently seen group goes first.
const (
	maxLogins   = 32
	maxFailures = 64
	maxRefusals = 32
	// maxSent is how many outbound delivery outcomes an account keeps
	// (the console's "last sent messages").
	maxSent = 10
	maxPOP3 = 16
	// maxText cuts what clients choose (usernames, client names,
	// details): attackers control it.
	maxText = 128
	// maxToken cuts protocol, result and form values the package does
	// not know (the known ones are interned).
	maxToken = 32
	// maxKey is the longest account key kept (RFC 5321 limits a path to
	// 256 octets).
	maxKey = 254
	// maxLocalPart is the longest local part kept for bare-local-part
	// failures (RFC 5321 §4.5.3.1.1).
	maxLocalPart = 64
)

const secondsPerDay = 86400

// dayOf returns the UTC day number (days since 1970-01-01) of a Unix time.
func dayOf(sec int64) int32 {
	d := sec / secondsPerDay
	if sec%secondsPerDay < 0 {
		d--
	}
	return int32(d)
}

// dayCount counts the events of one UTC day.
type dayCount struct {
	Day int32 `json:"d"` // days since 1970-01-01 UTC
	// First is the first event's second of the day.
	First uint32 `json:"f"`
	N     uint32 `json:"n"`
}

func (d dayCount) dayNum() int32 { return d.Day }

// days are a group's counts per day, oldest first. In the snapshot they
// are one flat array of numbers, day, first, count, day, first, count...
// (half the size of objects).
type days []dayCount

// MarshalJSON implements json.Marshaler.
func (ds days) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 2+len(ds)*20)
	b = append(b, '[')
	for i, d := range ds {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(d.Day), 10)
		b = append(b, ',')
		b = strconv.AppendUint(b, uint64(d.First), 10)
		b = append(b, ',')
		b = strconv.AppendUint(b, uint64(d.N), 10)
	}
	return append(b, ']'), nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (ds *days) UnmarshalJSON(b []byte) error {
	n, err := parseUints(b)
	if err != nil {
		return err
	}
	if len(n)%3 != 0 {
		return fmt.Errorf("day counts: %d numbers, not a multiple of 3", len(n))
	}
	*ds = make(days, 0, len(n)/3)
	for i := 0; i < len(n); i += 3 {
		*ds = append(*ds, dayCount{Day: int32(n[i]), First: n[i+1], N: n[i+2]})
	}
	return nil
}

// parseUints reads a JSON array of unsigned 32-bit integers: the day
// lists are most of a snapshot, and this is about five times faster
// than json.Unmarshal into a slice (start-up reads all of them).
func parseUints(b []byte) ([]uint32, error) {
	b = bytes.TrimSpace(b)
	if len(b) < 2 || b[0] != '[' || b[len(b)-1] != ']' {
		return nil, errors.New("day counts: not an array of numbers")
	}
	b = b[1 : len(b)-1]
	out := make([]uint32, 0, bytes.Count(b, []byte{','})+1)
	for len(bytes.TrimSpace(b)) > 0 {
		field := b
		if i := bytes.IndexByte(b, ','); i >= 0 {
			field, b = b[:i], b[i+1:]
			if len(bytes.TrimSpace(b)) == 0 {
				return nil, errors.New("day counts: trailing comma")
			}
		} else {
			b = nil
		}
		field = bytes.TrimSpace(field)
		if len(field) == 0 || len(field) > 10 || (len(field) > 1 && field[0] == '0') {
			return nil, fmt.Errorf("day counts: %q is not an unsigned number", field)
		}
		var v uint64
		for _, c := range field {
			if c < '0' || c > '9' {
				return nil, fmt.Errorf("day counts: %q is not an unsigned number", field)
			}
			v = v*10 + uint64(c-'0')
		}
		if v > math.MaxUint32 {
			return nil, fmt.Errorf("day counts: %s is out of range", field)
		}
		out = append(out, uint32(v))
	}
	return out, nil
}

// pop3Day adds up the POP3 sessions of one UTC day.
type pop3Day struct {
	Day          int32  `json:"d"`
	First        uint32 `json:"f"`
	Sessions     uint32 `json:"sessions"`
	Retrieved    uint32 `json:"retrieved,omitempty"`
	Redownloaded uint32 `json:"redownloaded,omitempty"`
	// RedownloadSessions are the sessions that re-downloaded something.
	RedownloadSessions uint32 `json:"redownload_sessions,omitempty"`
	Deleted            uint32 `json:"deleted,omitempty"`
	// LeftAll are the sessions that retrieved mail and deleted none;
	// Deleting those that deleted something.
	LeftAll  uint32 `json:"left_all,omitempty"`
	Deleting uint32 `json:"deleting,omitempty"`
}

func (d pop3Day) dayNum() int32 { return d.Day }

// pop3Days are a POP3 client's sessions per day, oldest first; in the
// snapshot a flat array of numbers, nine per day in the order of the
// fields of pop3Day.
type pop3Days []pop3Day

// MarshalJSON implements json.Marshaler.
func (ds pop3Days) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 2+len(ds)*40)
	b = append(b, '[')
	for i, d := range ds {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(d.Day), 10)
		for _, v := range [...]uint32{d.First, d.Sessions, d.Retrieved, d.Redownloaded, d.RedownloadSessions, d.Deleted, d.LeftAll, d.Deleting} {
			b = append(b, ',')
			b = strconv.AppendUint(b, uint64(v), 10)
		}
	}
	return append(b, ']'), nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (ds *pop3Days) UnmarshalJSON(b []byte) error {
	n, err := parseUints(b)
	if err != nil {
		return err
	}
	if len(n)%9 != 0 {
		return fmt.Errorf("POP3 day counts: %d numbers, not a multiple of 9", len(n))
	}
	*ds = make(pop3Days, 0, len(n)/9)
	for i := 0; i < len(n); i += 9 {
		*ds = append(*ds, pop3Day{Day: int32(n[i]), First: n[i+1], Sessions: n[i+2], Retrieved: n[i+3], Redownloaded: n[i+4],
			RedownloadSessions: n[i+5], Deleted: n[i+6], LeftAll: n[i+7], Deleting: n[i+8]})
	}
	return nil
}

type dated interface{ dayNum() int32 }

// dayIndex finds day in a list sorted by day.
func dayIndex[T dated](s []T, day int32) (int, bool) {
	i := sort.Search(len(s), func(i int) bool { return s[i].dayNum() >= day })
	return i, i < len(s) && s[i].dayNum() == day
}

// pruneDays drops the days before cut, in place.
func pruneDays[T dated](s []T, cut int32) []T {
	i := sort.Search(len(s), func(i int) bool { return s[i].dayNum() >= cut })
	if i == 0 {
		return s
	}
	s = slices.Delete(s, 0, i)
	if len(s) == 0 {
		return nil
	}
	return s
}

// firstOf returns the first event time of a day list (0 when empty).
func firstOf[T interface {
	dated
	firstSec() uint32
}](s []T) int64 {
	if len(s) == 0 {
		return 0
	}
	return int64(s[0].dayNum())*secondsPerDay + int64(s[0].firstSec())
}

func (d dayCount) firstSec() uint32 { return d.First }
func (d pop3Day) firstSec() uint32  { return d.First }

func addU32(a *uint32, n int) {
	if n <= 0 {
		return
	}
	if uint64(*a)+uint64(n) > math.MaxUint32 {
		*a = math.MaxUint32
		return
	}
	*a += uint32(n)
}

// countDay counts one event at sec.
func countDay(s []dayCount, sec int64, cut int32) []dayCount {
	day := dayOf(sec)
	f := uint32(sec - int64(day)*secondsPerDay)
	i, ok := dayIndex(s, day)
	if ok {
		addU32(&s[i].N, 1)
		s[i].First = min(s[i].First, f)
	} else {
		s = slices.Insert(s, i, dayCount{Day: day, First: f, N: 1})
	}
	return pruneDays(s, cut)
}

// sums returns the total and the count of day today.
func sums(s []dayCount, today int32) (total, onToday int) {
	for _, d := range s {
		total += int(d.N)
		if d.Day == today {
			onToday = int(d.N)
		}
	}
	return total, onToday
}

type loginGroup struct {
	Proto  events.Proto `json:"proto"`
	Remote netip.Addr   `json:"remote"`
	// Username is the one typed at the last login.
	Username string `json:"username,omitempty"`
	// Client is the IMAP ID name or EHLO name.
	Client string `json:"client,omitempty"`
	TLS    bool   `json:"tls,omitempty"`
	Last   int64  `json:"last"`
	Days   days   `json:"days"`
}

type failureGroup struct {
	Proto    events.Proto  `json:"proto"`
	Remote   netip.Addr    `json:"remote"`
	Result   events.Result `json:"result"`
	Form     events.Form   `json:"form,omitempty"`
	Username string        `json:"username"`
	// Client is the client's name at the last attempt (EHLO, IMAP ID).
	Client string `json:"client,omitempty"`
	TLS    bool   `json:"tls,omitempty"`
	Last   int64  `json:"last"`
	Days   days   `json:"days"`
}

type refusalGroup struct {
	Proto  events.Proto  `json:"proto"`
	Remote netip.Addr    `json:"remote"`
	Result events.Result `json:"result"`
	Client string        `json:"client,omitempty"`
	// Detail is the latest refusal's detail.
	Detail string `json:"detail,omitempty"`
	TLS    bool   `json:"tls,omitempty"`
	Last   int64  `json:"last"`
	Days   days   `json:"days"`
}

// sentItem is one outbound delivery outcome of a message the account
// sent: delivered, deferred or bounced, with the recipient, the remote
// server and its reply in Detail.
type sentItem struct {
	Sec    int64         `json:"sec"`
	Result events.Result `json:"result"`
	Detail string        `json:"detail"`
	TLS    bool          `json:"tls,omitempty"`
}

type pop3Group struct {
	Remote netip.Addr `json:"remote"`
	TLS    bool       `json:"tls,omitempty"`
	Last   int64      `json:"last"`
	// The maildrop at the last session's login.
	Messages int      `json:"messages"`
	Bytes    int64    `json:"bytes"`
	Oldest   int64    `json:"oldest,omitempty"` // Unix seconds; 0: empty
	Days     pop3Days `json:"days"`
}

// account is what is kept of one account. The exported fields are the
// snapshot.
type account struct {
	Key string `json:"key"`
	// Last is the latest event's time (Unix seconds); it orders the
	// accounts when a snapshot is loaded.
	Last         int64          `json:"last"`
	Logins       []loginGroup   `json:"logins,omitempty"`
	Failures     []failureGroup `json:"failures,omitempty"`
	Refusals     []refusalGroup `json:"refusals,omitempty"`
	POP3         []pop3Group    `json:"pop3,omitempty"`
	Deliveries   days           `json:"deliveries,omitempty"`
	LastDelivery int64          `json:"last_delivery,omitempty"`
	// Redownloads are the POP3 re-downloads per UTC hour of the last
	// day, RedownloadLast the latest (redownload.go).
	Redownloads    hourCounts `json:"redownloads,omitempty"`
	RedownloadLast int64      `json:"redownload_last,omitempty"`
	// UIDLs is the maildrop's UIDL fingerprint after the latest POP3
	// session that logged one, at UIDLsAt; UIDLChange the latest change
	// found (uidl.go).
	UIDLs      string      `json:"uidls,omitempty"`
	UIDLsAt    int64       `json:"uidls_at,omitempty"`
	UIDLChange *uidlChange `json:"uidl_change,omitempty"`
	// Sent are the latest outbound delivery outcomes (events.Outbound),
	// oldest first, at most maxSent.
	Sent []sentItem `json:"sent,omitempty"`

	// oldest is the earliest day held, so that pruning skips accounts
	// with nothing to drop.
	oldest int32
	// changed is the store's gen of the latest event recorded (Changed).
	changed uint64
	// prev is more recently seen, next less (the LRU list).
	prev, next *account
}

func (a *account) groups() int {
	return len(a.Logins) + len(a.Failures) + len(a.Refusals) + len(a.POP3)
}

func (a *account) empty() bool {
	return a.groups() == 0 && len(a.Deliveries) == 0 && len(a.Sent) == 0
}

// setOldest recomputes a.oldest.
func (a *account) setOldest() {
	o := int32(math.MaxInt32)
	for i := range a.Logins {
		o = min(o, a.Logins[i].Days[0].Day)
	}
	for i := range a.Failures {
		o = min(o, a.Failures[i].Days[0].Day)
	}
	for i := range a.Refusals {
		o = min(o, a.Refusals[i].Days[0].Day)
	}
	for i := range a.POP3 {
		o = min(o, a.POP3[i].Days[0].Day)
	}
	if len(a.Deliveries) > 0 {
		o = min(o, a.Deliveries[0].Day)
	}
	if len(a.Sent) > 0 {
		o = min(o, dayOf(a.Sent[0].Sec))
	}
	a.oldest = o
}

// prune drops the days before cut and the groups left without days, and
// returns how many groups went and whether anything changed.
func (a *account) prune(cut int32) (groupsDropped int, changed bool) {
	if a.oldest >= cut {
		return 0, false
	}
	n := a.groups()
	a.Logins = pruneGroups(a.Logins, func(g *loginGroup) bool {
		g.Days = pruneDays(g.Days, cut)
		return len(g.Days) == 0
	})
	a.Failures = pruneGroups(a.Failures, func(g *failureGroup) bool {
		g.Days = pruneDays(g.Days, cut)
		return len(g.Days) == 0
	})
	a.Refusals = pruneGroups(a.Refusals, func(g *refusalGroup) bool {
		g.Days = pruneDays(g.Days, cut)
		return len(g.Days) == 0
	})
	a.POP3 = pruneGroups(a.POP3, func(g *pop3Group) bool {
		g.Days = pruneDays(g.Days, cut)
		return len(g.Days) == 0
	})
	a.Deliveries = pruneDays(a.Deliveries, cut)
	if len(a.Deliveries) == 0 {
		a.LastDelivery = 0
	}
	a.Sent = slices.DeleteFunc(a.Sent, func(x sentItem) bool { return dayOf(x.Sec) < cut })
	a.setOldest()
	return n - a.groups(), true
}

// pruneGroups removes the groups drop says to, in place.
func pruneGroups[G any](s []G, drop func(*G) bool) []G {
	out := s[:0]
	for i := range s {
		if !drop(&s[i]) {
			out = append(out, s[i])
		}
	}
	clear(s[len(out):])
	if len(out) == 0 {
		return nil
	}
	return out
}

// slot returns the index of the group match finds, or of a new group:
// appended below the cap (added true), else the least recently seen one,
// which the caller overwrites.
func slot[G any](s *[]G, max int, match func(*G) bool, last func(*G) int64) (i int, added, replaced bool) {
	for i := range *s {
		if match(&(*s)[i]) {
			return i, false, false
		}
	}
	var zero G
	if len(*s) < max {
		*s = append(*s, zero)
		return len(*s) - 1, true, false
	}
	oldest := 0
	for i := range *s {
		if last(&(*s)[i]) < last(&(*s)[oldest]) {
			oldest = i
		}
	}
	(*s)[oldest] = zero
	return oldest, false, true
}

// tokens interns the protocol, result and form values the servers emit,
// so that groups do not keep the events' strings alive.
var tokens = func() map[string]string {
	m := map[string]string{}
	for _, p := range events.Protos() {
		m[string(p)] = string(p)
	}
	for _, r := range events.Results() {
		m[string(r)] = string(r)
	}
	for _, f := range events.Forms() {
		m[string(f)] = string(f)
	}
	return m
}()

// token returns the interned value of a known token (an events.Proto,
// Result or Form), else a short copy.
func token[T ~string](s T) T {
	if t, ok := tokens[string(s)]; ok {
		return T(t)
	}
	return T(clip(string(s), maxToken))
}

// clip returns a copy of s, valid UTF-8, at most n bytes, cut at a
// character boundary. The copy keeps no large buffer of the caller alive.
func clip(s string, n int) string {
	if len(s) > n+utf8.UTFMax {
		s = s[:n+utf8.UTFMax]
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) > n {
		i := n
		for i > 0 && !utf8.RuneStart(s[i]) {
			i--
		}
		s = s[:i]
	}
	return strings.Clone(s)
}

// fit returns s when it is valid UTF-8 of at most n bytes (no copy),
// else clip(s, n).
func fit(s string, n int) string {
	if len(s) <= n && utf8.ValidString(s) {
		return s
	}
	return clip(s, n)
}

// accountKey normalises an account address; "" when it is not one. The
// key may share memory with address (no allocation when it is already
// lower case): clone it before keeping it.
func accountKey(address string) string {
	k := strings.TrimSpace(address)
	if k == "" || len(k) > maxKey || !strings.Contains(k, "@") || !utf8.ValidString(k) {
		return ""
	}
	return strings.ToLower(k)
}

// localPartKey is the key of a bare local part typed as username
// ("john"), like accountKey.
func localPartKey(username string) string {
	u := strings.TrimSpace(username)
	if u == "" || len(u) > maxLocalPart || strings.ContainsAny(u, "@ \t") || !utf8.ValidString(u) {
		return ""
	}
	return strings.ToLower(u)
}
