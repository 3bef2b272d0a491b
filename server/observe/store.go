package observe

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"mailsetup/server/events"
)

// Defaults of Options.
const (
	DefaultRetention   = 30 * 24 * time.Hour
	DefaultMaxAccounts = 50_000
	// DefaultGroupsPerAccount sets MaxGroups when it is not set:
	// MaxAccounts times this.
	DefaultGroupsPerAccount = 8
	// DefaultSaveInterval is Run's interval when it is not set.
	DefaultSaveInterval = 30 * time.Second
)

// currentFor is how old the last event of a group may be for it to
// still count as a current finding.
const currentFor = 7 * 24 * time.Hour

// Options configure a Store.
type Options struct {
	// Path is the snapshot file (JSON, written atomically: temp file,
	// fsync, rename). Empty: memory only.
	Path string
	// Retention: how long observations are kept. Default 30 days.
	// Rounded up to whole UTC days.
	Retention time.Duration
	// MaxAccounts bounds the accounts kept; the least recently seen is
	// dropped first. Default 50_000.
	MaxAccounts int
	// MaxGroups bounds the groups (login, failure, refusal and POP3
	// client groups) of all accounts together; when there are more, the
	// least recently seen accounts are dropped. Default MaxAccounts *
	// DefaultGroupsPerAccount; at least the groups one account may hold.
	MaxGroups int
	// DeleteAfterDays returns the POP3 policy's "delete after N days" of
	// a domain (0: the policy does not ask to leave mail). May be nil.
	DeleteAfterDays func(domain string) int
	// ExpireDays returns the domain's server-side expiry of mail
	// retrieved over POP3 (0: none); with it, leaving mail on the server
	// is a warning, as in the probe. May be nil.
	ExpireDays func(domain string) int
	Now        func() time.Time // default time.Now
	Logger     *slog.Logger     // nil discards
}

// Stats are counters for metrics.
type Stats struct {
	// Accounts held, including bare local parts (see the package doc).
	Accounts int `json:"accounts"`
	// Groups held in all accounts.
	Groups int `json:"groups"`
	// Recorded events changed what is kept; Ignored did not (no account,
	// unknown kind, too old).
	Recorded uint64 `json:"recorded"`
	Ignored  uint64 `json:"ignored"`
	// EvictedAccounts were dropped to stay within MaxAccounts or
	// MaxGroups, EvictedGroups to stay within an account's caps
	// (expired data is not counted).
	EvictedAccounts uint64 `json:"evicted_accounts"`
	EvictedGroups   uint64 `json:"evicted_groups"`
}

// Store keeps the observations. Its methods are safe for concurrent use.
type Store struct {
	opts    Options
	retDays int32
	log     *slog.Logger

	// saveMu serialises Save; it is never held by Record.
	saveMu sync.Mutex

	mu       sync.Mutex
	accounts map[string]*account
	// head is the most recently seen account, tail the least.
	head, tail *account
	groups     int
	// gen counts changes; savedGen is the gen the last snapshot holds.
	gen, savedGen                                uint64
	recorded, ignored, evictedAcc, evictedGroups uint64
	// troubled maps accounts to their latest problem event (recent.go).
	troubled map[string]int64
	// redownloaders are the accounts with Redownloads (redownload.go).
	redownloaders map[string]struct{}
}

// Open loads the snapshot at opts.Path if present (a missing file is
// fine; a corrupt one is an error naming the file) and drops what is
// older than Retention.
func Open(opts Options) (*Store, error) {
	if opts.Retention <= 0 {
		opts.Retention = DefaultRetention
	}
	if opts.MaxAccounts <= 0 {
		opts.MaxAccounts = DefaultMaxAccounts
	}
	if opts.MaxGroups <= 0 {
		opts.MaxGroups = opts.MaxAccounts * DefaultGroupsPerAccount
	}
	opts.MaxGroups = max(opts.MaxGroups, maxLogins+maxFailures+maxRefusals+maxPOP3)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	days := (opts.Retention + 24*time.Hour - 1) / (24 * time.Hour)
	s := &Store{opts: opts, retDays: int32(max(1, days)), log: log, accounts: map[string]*account{}}
	if opts.Path != "" {
		if err := s.load(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *Store) now() time.Time { return s.opts.Now() }

// cut returns the first UTC day kept at now.
func (s *Store) cut(now time.Time) int32 {
	return dayOf(now.Unix()) - s.retDays + 1
}

// Record consumes one event. Called from the event bus goroutine; it only
// updates memory. It returns the messages counted as re-downloaded: the
// event's own count, or what the UIDL fingerprints show (uidl.go).
func (s *Store) Record(e events.Event) (redownloaded int) {
	now := s.now()
	t := e.Time
	if t.IsZero() {
		t = now
	}
	sec := t.Unix()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.record(&e, sec, now) {
		s.recorded++
		s.gen++
		return e.Redownloaded
	}
	s.ignored++
	return 0
}

func (s *Store) record(e *events.Event, sec int64, now time.Time) bool {
	day, today := dayOf(sec), dayOf(now.Unix())
	cut := today - s.retDays + 1
	if day < cut || day > today+1 {
		return false
	}
	var a *account
	switch e.Kind {
	case events.Auth:
		key := accountKey(e.Account)
		if key == "" && e.Result == events.ResultUsernameForm {
			switch e.Form {
			case events.FormLocalPart:
				key = localPartKey(e.Username)
			case events.FormUnknownDomain:
				// A typo in the domain ("john@exmaple.com"): kept
				// under the local part, like a bare local part.
				if i := strings.LastIndexByte(e.Username, '@'); i > 0 {
					key = localPartKey(e.Username[:i])
				}
			}
		}
		if key == "" {
			return false
		}
		a = s.touch(key, sec)
		if e.Result == events.ResultOK {
			s.addLogin(a, e, sec, cut)
		} else {
			s.addFailure(a, e, sec, cut)
		}
	case events.SubmissionRefused:
		key := accountKey(e.Account)
		if key == "" {
			return false
		}
		s.nameClient(e, sec)
		a = s.touch(key, sec)
		s.addRefusal(a, e, sec, cut)
	case events.Delivery:
		named := s.nameClient(e, sec)
		rcpt, ok := strings.CutPrefix(e.Detail, "local ")
		key := accountKey(rcpt)
		if !ok || key == "" {
			return named
		}
		a = s.touch(key, sec)
		a.Deliveries = countDay(a.Deliveries, sec, cut)
		a.LastDelivery = max(a.LastDelivery, sec)
		a.oldest = min(a.oldest, day)
	case events.POP3Session:
		key := accountKey(e.Account)
		if key == "" {
			return false
		}
		a = s.touch(key, sec)
		if s.checkUIDLs(a, e, sec) {
			s.markTroubled(a.Key, sec)
		}
		s.addPOP3(a, e, sec, cut)
		if e.Redownloaded > 0 {
			s.addRedownload(a, e.Redownloaded, sec, now)
		}
	case events.ClientID:
		return s.nameClient(e, sec)
	case events.Outbound:
		key := accountKey(e.Account)
		if key == "" {
			return false
		}
		a = s.touch(key, sec)
		a.Sent = append(a.Sent, sentItem{Sec: sec, Result: token(e.Result), Detail: strings.Clone(fit(e.Detail, maxText)), TLS: e.TLS})
		if len(a.Sent) > maxSent {
			a.Sent = slices.Delete(a.Sent, 0, len(a.Sent)-maxSent)
		}
		a.oldest = min(a.oldest, day)
	default:
		return false
	}
	s.enforce(a)
	if problem(e) {
		s.markTroubled(a.Key, sec)
	}
	return true
}

// nameClient sets the client name of the login group of the event's
// account, protocol and remote address, if there is one.
func (s *Store) nameClient(e *events.Event, sec int64) bool {
	if e.Client == "" {
		return false
	}
	a := s.accounts[accountKey(e.Account)]
	if a == nil {
		return false
	}
	for i := range a.Logins {
		g := &a.Logins[i]
		if g.Proto == e.Proto && g.Remote == e.Remote {
			if c := fit(e.Client, maxText); g.Client != c {
				g.Client = strings.Clone(c)
			}
			s.moveFront(a)
			a.Last = max(a.Last, sec)
			return true
		}
	}
	return false
}

func (s *Store) addLogin(a *account, e *events.Event, sec int64, cut int32) {
	proto := token(e.Proto)
	i, added, replaced := slot(&a.Logins, maxLogins,
		func(g *loginGroup) bool { return g.Proto == proto && g.Remote == e.Remote },
		func(g *loginGroup) int64 { return g.Last })
	s.counted(added, replaced)
	g := &a.Logins[i]
	if added || replaced {
		g.Proto, g.Remote = proto, e.Remote
	}
	if u := fit(e.Username, maxText); g.Username != u {
		g.Username = strings.Clone(u)
	}
	if c := fit(e.Client, maxText); c != "" && g.Client != c {
		g.Client = strings.Clone(c)
	}
	if sec >= g.Last {
		g.Last, g.TLS = sec, e.TLS
	}
	g.Days = countDay(g.Days, sec, cut)
	a.oldest = min(a.oldest, g.Days[0].Day)
}

func (s *Store) addFailure(a *account, e *events.Event, sec int64, cut int32) {
	proto, result, form, user := token(e.Proto), token(e.Result), token(e.Form), fit(e.Username, maxText)
	i, added, replaced := slot(&a.Failures, maxFailures,
		func(g *failureGroup) bool {
			return g.Proto == proto && g.Remote == e.Remote && g.Result == result && g.Form == form && g.Username == user
		},
		func(g *failureGroup) int64 { return g.Last })
	s.counted(added, replaced)
	g := &a.Failures[i]
	if added || replaced {
		g.Proto, g.Remote, g.Result, g.Form, g.Username = proto, e.Remote, result, form, strings.Clone(user)
	}
	if sec >= g.Last {
		g.Last, g.TLS = sec, e.TLS
		if c := fit(e.Client, maxText); c != "" && g.Client != c {
			g.Client = strings.Clone(c)
		}
	}
	g.Days = countDay(g.Days, sec, cut)
	a.oldest = min(a.oldest, g.Days[0].Day)
}

func (s *Store) addRefusal(a *account, e *events.Event, sec int64, cut int32) {
	proto, result, client := token(e.Proto), token(e.Result), fit(e.Client, maxText)
	i, added, replaced := slot(&a.Refusals, maxRefusals,
		func(g *refusalGroup) bool {
			return g.Proto == proto && g.Remote == e.Remote && g.Result == result && g.Client == client
		},
		func(g *refusalGroup) int64 { return g.Last })
	s.counted(added, replaced)
	g := &a.Refusals[i]
	if added || replaced {
		g.Proto, g.Remote, g.Result, g.Client = proto, e.Remote, result, strings.Clone(client)
	}
	if sec >= g.Last {
		g.Last, g.TLS = sec, e.TLS
		if d := fit(e.Detail, maxText); g.Detail != d {
			g.Detail = strings.Clone(d)
		}
	}
	g.Days = countDay(g.Days, sec, cut)
	a.oldest = min(a.oldest, g.Days[0].Day)
}

func (s *Store) addPOP3(a *account, e *events.Event, sec int64, cut int32) {
	i, added, replaced := slot(&a.POP3, maxPOP3,
		func(g *pop3Group) bool { return g.Remote == e.Remote },
		func(g *pop3Group) int64 { return g.Last })
	s.counted(added, replaced)
	g := &a.POP3[i]
	if added || replaced {
		g.Remote = e.Remote
	}
	if sec >= g.Last {
		g.Last, g.TLS = sec, e.TLS
		g.Messages, g.Bytes, g.Oldest = max(0, e.Messages), max(0, e.Bytes), 0
		if !e.Oldest.IsZero() {
			g.Oldest = e.Oldest.Unix()
		}
	}
	day := dayOf(sec)
	first := uint32(sec - int64(day)*secondsPerDay)
	j, ok := dayIndex(g.Days, day)
	if !ok {
		g.Days = slices.Insert(g.Days, j, pop3Day{Day: day, First: first})
	}
	d := &g.Days[j]
	d.First = min(d.First, first)
	addU32(&d.Sessions, 1)
	addU32(&d.Retrieved, e.Retrieved)
	addU32(&d.Redownloaded, e.Redownloaded)
	addU32(&d.Deleted, e.Deleted)
	if e.Redownloaded > 0 {
		addU32(&d.RedownloadSessions, 1)
	}
	if e.LeftAll {
		addU32(&d.LeftAll, 1)
	}
	if e.Deleted > 0 {
		addU32(&d.Deleting, 1)
	}
	g.Days = pruneDays(g.Days, cut)
	a.oldest = min(a.oldest, g.Days[0].Day)
}

// counted keeps the group count after slot.
func (s *Store) counted(added, replaced bool) {
	if added {
		s.groups++
	}
	if replaced {
		s.evictedGroups++
	}
}

// touch returns the account of key, created if need be, as the most
// recently seen.
func (s *Store) touch(key string, sec int64) *account {
	a := s.accounts[key]
	if a == nil {
		key = strings.Clone(key) // the event's string may hold a larger buffer
		a = &account{Key: key, oldest: dayOf(sec)}
		s.accounts[key] = a
	}
	a.Last = max(a.Last, sec)
	a.changed = s.gen + 1 // Record counts the event after this
	s.moveFront(a)
	return a
}

// enforce drops the least recently seen accounts, never keep, while
// there are too many accounts or groups.
func (s *Store) enforce(keep *account) {
	for len(s.accounts) > s.opts.MaxAccounts || s.groups > s.opts.MaxGroups {
		victim := s.tail
		if victim == keep {
			victim = keep.prev
		}
		if victim == nil {
			return
		}
		s.remove(victim)
		s.evictedAcc++
	}
}

// moveFront makes a the most recently seen account.
func (s *Store) moveFront(a *account) {
	if s.head == a {
		return
	}
	s.unlink(a)
	a.next = s.head
	if s.head != nil {
		s.head.prev = a
	}
	s.head = a
	if s.tail == nil {
		s.tail = a
	}
}

func (s *Store) unlink(a *account) {
	if a.prev != nil {
		a.prev.next = a.next
	} else if s.head == a {
		s.head = a.next
	}
	if a.next != nil {
		a.next.prev = a.prev
	} else if s.tail == a {
		s.tail = a.prev
	}
	a.prev, a.next = nil, nil
}

func (s *Store) remove(a *account) {
	s.unlink(a)
	delete(s.accounts, a.Key)
	delete(s.redownloaders, a.Key)
	s.groups -= a.groups()
}

// pruneAccount drops a's expired data, and a itself when nothing is left.
func (s *Store) pruneAccount(a *account, cut int32) {
	dropped, changed := a.prune(cut)
	if !changed {
		return
	}
	s.groups -= dropped
	s.gen++
	if a.empty() {
		s.remove(a)
	}
}

// chunk is how many accounts Save and prune handle per lock, and
// chunkGroups how many groups Save copies per lock at most (a full
// account has 144), so that Record waits a few milliseconds at most
// (measured: 2-3 ms with 50,000 accounts, 1,000 of them at every cap).
const (
	chunk       = 64
	chunkGroups = 512
)

// keys returns the account keys, least recently seen first.
func (s *Store) keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]string, 0, len(s.accounts))
	for a := s.tail; a != nil; a = a.prev {
		keys = append(keys, a.Key)
	}
	return keys
}

// prune drops what is older than the retention, a chunk of accounts per
// lock so that Record is not held up.
func (s *Store) prune() {
	keys := s.keys()
	for len(keys) > 0 {
		n := min(chunk, len(keys))
		s.mu.Lock()
		cut := s.cut(s.now())
		for _, k := range keys[:n] {
			if a := s.accounts[k]; a != nil {
				s.pruneAccount(a, cut)
			}
		}
		s.mu.Unlock()
		keys = keys[n:]
	}
}

// Stats returns the counters.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Accounts: len(s.accounts), Groups: s.groups, Recorded: s.recorded, Ignored: s.ignored,
		EvictedAccounts: s.evictedAcc, EvictedGroups: s.evictedGroups}
}

// Run saves every interval (DefaultSaveInterval when interval <= 0) and
// prunes expired data until ctx ends, then saves a last time and returns
// that error. Errors of the periodic saves are logged.
func (s *Store) Run(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		interval = DefaultSaveInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return s.Save()
		case <-t.C:
			s.prune()
			if err := s.Save(); err != nil {
				s.log.Error("saving the observations", "err", err)
			}
		}
	}
}

// Search returns up to limit account addresses that contain q (lower
// case), sorted: the console's search when the accounts are only those
// the logs showed. Bare local parts are left out.
func (s *Store) Search(q string, limit int) []string {
	var out []string
	s.mu.Lock()
	for key := range s.accounts {
		if strings.Contains(key, "@") && strings.Contains(key, q) {
			out = append(out, key)
		}
	}
	s.mu.Unlock()
	slices.Sort(out)
	return out[:min(len(out), limit)]
}
