package observe

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// The alarm after a cutover: when a migration lost the POP3 UIDLs, every
// client that leaves mail on the server retrieves everything again
// (pop3.redownload). Redownloads counts, per domain, the accounts whose
// clients did so lately, so that an ISP sees it within minutes. Each
// account keeps its re-downloads per UTC hour for the last
// MaxRedownloadWindow (at most 25 small counters, in the snapshot with
// the account), and the store indexes the accounts that have any, so
// that the view never walks every account.

// MaxRedownloadWindow is the longest window Redownloads answers for.
const MaxRedownloadWindow = 24 * time.Hour

// maxRedownloadHours: the hour buckets an account keeps (the current
// hour and the 24 before it).
const maxRedownloadHours = int32(MaxRedownloadWindow/time.Hour) + 1

// maxRedownloadAddresses is how many addresses a domain's entry names.
const maxRedownloadAddresses = 5

// DomainRedownloads is one domain's re-downloads within a window.
type DomainRedownloads struct {
	Domain string `json:"domain"`
	// Accounts whose POP3 clients retrieved again messages they had
	// already retrieved.
	Accounts int `json:"accounts"`
	// Messages re-downloaded and the Sessions that did, in all.
	Messages int `json:"messages"`
	Sessions int `json:"sessions"`
	// Last is the latest such session.
	Last time.Time `json:"last"`
	// Addresses are up to 5 of the accounts, most recent first.
	Addresses []string `json:"addresses"`
}

// hourCount counts one account's re-downloads in one UTC hour.
type hourCount struct {
	Hour     int32 // hours since 1970-01-01 UTC
	Messages uint32
	Sessions uint32
}

// hourCounts are an account's re-downloads per hour, oldest first; in
// the snapshot a flat array of numbers, hour, messages, sessions, ...
type hourCounts []hourCount

func hourOf(sec int64) int32 {
	h := sec / 3600
	if sec%3600 < 0 {
		h--
	}
	return int32(h)
}

// MarshalJSON implements json.Marshaler: the encoding of days, an
// hour for the day, the messages for the first second, the sessions for
// the count.
func (hs hourCounts) MarshalJSON() ([]byte, error) {
	ds := make(days, len(hs))
	for i, h := range hs {
		ds[i] = dayCount{Day: h.Hour, First: h.Messages, N: h.Sessions}
	}
	return ds.MarshalJSON()
}

// UnmarshalJSON implements json.Unmarshaler.
func (hs *hourCounts) UnmarshalJSON(b []byte) error {
	var ds days
	if err := ds.UnmarshalJSON(b); err != nil {
		return fmt.Errorf("re-downloads: %w", err)
	}
	*hs = make(hourCounts, len(ds))
	for i, d := range ds {
		(*hs)[i] = hourCount{Hour: d.Day, Messages: d.First, Sessions: d.N}
	}
	return nil
}

// trimHours keeps the hours from first to last (at most
// maxRedownloadHours of them), sorted, without empty ones.
func trimHours(hs hourCounts, first, last int32) hourCounts {
	hs = slices.DeleteFunc(hs, func(h hourCount) bool { return h.Hour < first || h.Hour > last || h.Sessions == 0 })
	slices.SortFunc(hs, func(x, y hourCount) int { return int(x.Hour) - int(y.Hour) })
	hs = slices.CompactFunc(hs, func(x, y hourCount) bool { return x.Hour == y.Hour })
	if len(hs) == 0 {
		return nil
	}
	return hs
}

// addRedownload counts a session that re-downloaded n messages (caller
// holds mu).
func (s *Store) addRedownload(a *account, n int, sec int64, now time.Time) {
	nowHour := hourOf(now.Unix())
	h := hourOf(sec)
	if h <= nowHour-maxRedownloadHours {
		return // older than any window
	}
	i, ok := slices.BinarySearchFunc(a.Redownloads, h, func(x hourCount, h int32) int { return int(x.Hour - h) })
	if !ok {
		a.Redownloads = slices.Insert(a.Redownloads, i, hourCount{Hour: h})
	}
	addU32(&a.Redownloads[i].Messages, n)
	addU32(&a.Redownloads[i].Sessions, 1)
	a.Redownloads = trimHours(a.Redownloads, nowHour-maxRedownloadHours+1, nowHour+24)
	a.RedownloadLast = max(a.RedownloadLast, sec)
	if s.redownloaders == nil {
		s.redownloaders = map[string]struct{}{}
	}
	s.redownloaders[a.Key] = struct{}{}
}

// rebuildRedownloaders indexes the loaded accounts' re-downloads (caller
// holds mu, or the store is not shared yet).
func (s *Store) rebuildRedownloaders() {
	nowHour := hourOf(s.now().Unix())
	for key, a := range s.accounts {
		a.Redownloads = trimHours(a.Redownloads, nowHour-maxRedownloadHours+1, nowHour+24)
		if len(a.Redownloads) == 0 {
			a.Redownloads, a.RedownloadLast = nil, 0
			continue
		}
		if s.redownloaders == nil {
			s.redownloaders = map[string]struct{}{}
		}
		s.redownloaders[key] = struct{}{}
	}
}

// Redownloads returns, per domain, the accounts whose POP3 clients
// re-downloaded messages within the last window (counted per UTC hour:
// the window starts at the beginning of its first hour; at most
// MaxRedownloadWindow), the most accounts first. Bare local parts name
// no domain and are left out.
func (s *Store) Redownloads(window time.Duration) []DomainRedownloads {
	window = min(max(window, time.Hour), MaxRedownloadWindow)
	now := s.now()
	nowHour := hourOf(now.Unix())
	first := hourOf(now.Add(-window).Unix())
	type acct struct {
		key  string
		last int64
	}
	byDomain := map[string]*DomainRedownloads{}
	addrs := map[string][]acct{}
	s.mu.Lock()
	for key := range s.redownloaders {
		a := s.accounts[key]
		if a == nil {
			delete(s.redownloaders, key)
			continue
		}
		if len(a.Redownloads) == 0 || a.Redownloads[len(a.Redownloads)-1].Hour <= nowHour-maxRedownloadHours {
			a.Redownloads, a.RedownloadLast = nil, 0
			delete(s.redownloaders, key)
			continue
		}
		at := strings.LastIndexByte(key, '@')
		if at < 0 {
			continue
		}
		msgs, sessions := 0, 0
		for _, h := range a.Redownloads {
			if h.Hour >= first {
				msgs += int(h.Messages)
				sessions += int(h.Sessions)
			}
		}
		if sessions == 0 {
			continue
		}
		domain := key[at+1:]
		d := byDomain[domain]
		if d == nil {
			d = &DomainRedownloads{Domain: domain}
			byDomain[domain] = d
		}
		d.Accounts++
		d.Messages += msgs
		d.Sessions += sessions
		if last := time.Unix(a.RedownloadLast, 0).UTC(); last.After(d.Last) {
			d.Last = last
		}
		addrs[domain] = append(addrs[domain], acct{key, a.RedownloadLast})
	}
	s.mu.Unlock()
	out := make([]DomainRedownloads, 0, len(byDomain))
	for domain, d := range byDomain {
		list := addrs[domain]
		slices.SortFunc(list, func(x, y acct) int {
			if x.last != y.last {
				return int(y.last - x.last)
			}
			return strings.Compare(x.key, y.key)
		})
		for _, x := range list[:min(len(list), maxRedownloadAddresses)] {
			d.Addresses = append(d.Addresses, x.key)
		}
		out = append(out, *d)
	}
	slices.SortFunc(out, func(x, y DomainRedownloads) int {
		if x.Accounts != y.Accounts {
			return y.Accounts - x.Accounts
		}
		return strings.Compare(x.Domain, y.Domain)
	})
	return out
}
