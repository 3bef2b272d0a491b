package observe

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"mailsetup/server/events"
)

// The ISP's overview: whether the incident's mistakes are going away
// across all customers. Per domain and UTC day it counts the accounts
// whose clients made each mistake that day; an account counts once per
// mistake and day however often its clients made it.

// Overview limits.
const (
	// MaxOverviewDomains is the most domains one Overview returns (a
	// page); the others are counted in OverviewReport.Domains.
	MaxOverviewDomains = 200
	// maxLocalPartDomains bounds the domains a bare local part is
	// counted in.
	maxLocalPartDomains = 16
)

// Mistakes are the accounts that made each mistake on one UTC day (or,
// in DomainOverview.Total, on any day of the period).
type Mistakes struct {
	// Date is the day's start (00:00 UTC); zero in a total.
	Date time.Time `json:"date,omitzero"`
	// LocalPart: a client logged in with the bare local part ("john")
	// as the username; the domain is the one where that local part is
	// an account (a guess when several domains have it: counted in
	// each).
	LocalPart int `json:"local_part"`
	// NoAuth: a client sent mail without authentication and was
	// refused.
	NoAuth int `json:"no_auth"`
	// LeaveForever: a POP3 client retrieved mail that day, left all of
	// it on the server, and had deleted nothing since the period began.
	LeaveForever int `json:"leave_forever"`
	// Redownload: a POP3 client retrieved again messages it had
	// retrieved before.
	Redownload int `json:"redownload"`
}

// Any reports whether any mistake is counted.
func (m Mistakes) Any() bool { return m.LocalPart+m.NoAuth+m.LeaveForever+m.Redownload > 0 }

// Sum returns the accounts of all four mistakes together (an account
// that made two counts twice): the size of the day's bar.
func (m Mistakes) Sum() int { return m.LocalPart + m.NoAuth + m.LeaveForever + m.Redownload }

func (m *Mistakes) add(o Mistakes) {
	m.LocalPart += o.LocalPart
	m.NoAuth += o.NoAuth
	m.LeaveForever += o.LeaveForever
	m.Redownload += o.Redownload
}

// DomainOverview is one domain's mistakes per day.
type DomainOverview struct {
	Domain string `json:"domain"`
	// Total counts the accounts that made each mistake on any day of
	// the period.
	Total Mistakes `json:"total"`
	// Days are the period's days, oldest first, today last.
	Days []Mistakes `json:"days"`
}

// Today returns the last day's mistakes.
func (d DomainOverview) Today() Mistakes {
	if len(d.Days) == 0 {
		return Mistakes{}
	}
	return d.Days[len(d.Days)-1]
}

// OverviewOptions select an overview.
type OverviewOptions struct {
	// Days is the period, today included (1..the retention; default
	// and at most TimelineDays).
	Days int
	// Domain keeps only the domains that contain it (lower case); ""
	// keeps all.
	Domain string
	// Offset and Limit page the domains (Limit 1..MaxOverviewDomains,
	// default 50), which are ordered by the accounts with a mistake in
	// the period, most first, then by name.
	Offset, Limit int
	// LocalPartDomains returns the domains where a bare local part is an
	// account; nil: the domains where the store has seen that local
	// part as an account.
	LocalPartDomains func(local string) []string
}

// OverviewReport is the overview of the selected domains.
type OverviewReport struct {
	AsOf time.Time `json:"as_of"`
	// Days is the period in days; Filter the domain filter.
	Days   int    `json:"days"`
	Filter string `json:"filter,omitempty"`
	// All adds up every selected domain per day (not only this page's),
	// oldest first: the trend.
	All []Mistakes `json:"all"`
	// Domains counts the selected domains with any mistake; Offset is
	// where this page starts.
	Domains int `json:"domains"`
	Offset  int `json:"offset"`
	// Page are the domains of this page.
	Page []DomainOverview `json:"page"`
}

// The mistakes as bits of one account's day (Store.Overview's scratch).
const (
	bitLocalPart uint8 = 1 << iota
	bitNoAuth
	bitLeaveForever
	bitRedownload
)

// Overview counts, per domain and UTC day, the accounts whose clients
// made the incident's mistakes. It reads the accounts a chunk at a time,
// so that Record is never held up for long; its memory is bounded by the
// domains held (one row of Days counters each).
func (s *Store) Overview(o OverviewOptions) OverviewReport {
	if o.Days <= 0 || o.Days > TimelineDays {
		o.Days = TimelineDays
	}
	o.Days = min(o.Days, int(s.retDays))
	if o.Limit <= 0 {
		o.Limit = 50
	}
	o.Limit = min(o.Limit, MaxOverviewDomains)
	o.Offset = max(o.Offset, 0)
	o.Domain = strings.ToLower(strings.TrimSpace(o.Domain))
	now := s.now()
	today := dayOf(now.Unix())
	first := today - int32(o.Days) + 1

	byDomain := map[string]*DomainOverview{}
	row := func(domain string) *DomainOverview {
		d := byDomain[domain]
		if d == nil {
			d = &DomainOverview{Domain: domain, Days: make([]Mistakes, o.Days)}
			byDomain[domain] = d
		}
		return d
	}
	// addTo counts one account's mistakes (bits per day) in its domain.
	addTo := func(domain string, bits []uint8) {
		if o.Domain != "" && !strings.Contains(domain, o.Domain) {
			return
		}
		d := row(domain)
		var seen uint8
		for i, b := range bits {
			if b == 0 {
				continue
			}
			seen |= b
			x := &d.Days[i]
			x.LocalPart += int(b & bitLocalPart)
			x.NoAuth += int(b&bitNoAuth) >> 1
			x.LeaveForever += int(b&bitLeaveForever) >> 2
			x.Redownload += int(b&bitRedownload) >> 3
		}
		d.Total.LocalPart += int(seen & bitLocalPart)
		d.Total.NoAuth += int(seen&bitNoAuth) >> 1
		d.Total.LeaveForever += int(seen&bitLeaveForever) >> 2
		d.Total.Redownload += int(seen&bitRedownload) >> 3
	}
	// Bare local parts name no domain: resolved after the walk.
	locals := map[string][]uint8{}
	var seenLocal map[string][]string // local part -> domains seen as accounts
	if o.LocalPartDomains == nil {
		seenLocal = map[string][]string{}
	}

	bits := make([]uint8, o.Days)
	keys := s.keys()
	for len(keys) > 0 {
		n := min(chunk, len(keys))
		s.mu.Lock()
		for _, k := range keys[:n] {
			a := s.accounts[k]
			if a == nil {
				continue
			}
			at := strings.LastIndexByte(k, '@')
			if at >= 0 && seenLocal != nil {
				if l := k[:at]; len(seenLocal[l]) < maxLocalPartDomains {
					seenLocal[l] = append(seenLocal[l], k[at+1:])
				}
			}
			clear(bits)
			if !a.mistakes(first, bits) {
				continue
			}
			if at < 0 {
				locals[k] = slices.Clone(bits)
				continue
			}
			addTo(k[at+1:], bits)
		}
		s.mu.Unlock()
		keys = keys[n:]
	}
	for local, b := range locals {
		var domains []string
		if o.LocalPartDomains != nil {
			domains = o.LocalPartDomains(local)
		} else {
			domains = seenLocal[local]
		}
		for _, d := range domains[:min(len(domains), maxLocalPartDomains)] {
			addTo(strings.ToLower(d), b)
		}
	}

	rep := OverviewReport{AsOf: now.UTC(), Days: o.Days, Filter: o.Domain, All: make([]Mistakes, o.Days), Offset: o.Offset, Page: []DomainOverview{}}
	for i := range rep.All {
		rep.All[i].Date = unix(int64(first+int32(i)) * secondsPerDay)
	}
	all := make([]*DomainOverview, 0, len(byDomain))
	for _, d := range byDomain {
		if !d.Total.Any() {
			continue
		}
		for i := range d.Days {
			d.Days[i].Date = rep.All[i].Date
			rep.All[i].add(d.Days[i])
		}
		all = append(all, d)
	}
	slices.SortFunc(all, func(x, y *DomainOverview) int {
		return cmp.Or(cmp.Compare(y.Total.Sum(), x.Total.Sum()), strings.Compare(x.Domain, y.Domain))
	})
	rep.Domains = len(all)
	if o.Offset < len(all) {
		for _, d := range all[o.Offset:min(len(all), o.Offset+o.Limit)] {
			rep.Page = append(rep.Page, *d)
		}
	}
	return rep
}

// mistakes sets in bits (one entry per day from first on) the
// account's mistakes; it reports whether there was any.
func (a *account) mistakes(first int32, bits []uint8) (found bool) {
	mark := func(day int32, bit uint8) {
		if i := int(day - first); i >= 0 && i < len(bits) {
			bits[i] |= bit
			found = true
		}
	}
	for i := range a.Failures {
		g := &a.Failures[i]
		if g.Result != events.ResultUsernameForm || g.Form != events.FormLocalPart {
			continue
		}
		for _, d := range g.Days {
			mark(d.Day, bitLocalPart)
		}
	}
	for i := range a.Refusals {
		g := &a.Refusals[i]
		if g.Result != events.ResultAuthRequired {
			continue
		}
		for _, d := range g.Days {
			mark(d.Day, bitNoAuth)
		}
	}
	for i := range a.POP3 {
		deleted := false
		for _, d := range a.POP3[i].Days {
			deleted = deleted || d.Deleting > 0
			if d.LeftAll > 0 && d.Retrieved > 0 && !deleted {
				mark(d.Day, bitLeaveForever)
			}
			if d.Redownloaded > 0 {
				mark(d.Day, bitRedownload)
			}
		}
	}
	return found
}
