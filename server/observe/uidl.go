package observe

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"mailsetup/finding"
	"mailsetup/server/events"
)

// A changed UIDL set (pop3.uidl-changed): Dovecot logs, per POP3
// session, a fingerprint of the maildrop's UIDLs ("count/hash", its
// %{uidl_change}): of the messages left from before the session's first
// retrieval, and of those left at its end (events.Event UIDLsBefore and
// UIDLsAfter). The account keeps the last session's UIDLsAfter; the next
// session's fingerprints tell whether the same messages came back under
// other UIDLs:
//
//   - its "before" has the same count as the last "after" but another
//     hash (the messages the client already had are listed under other
//     UIDLs), or
//   - it retrieved everything again from the first message ("before" is
//     0) and, with no message added or deleted since, its "after" has the
//     same count as the last "after" but another hash.
//
// A session that retrieved again at least every message the last one
// left, from the first (or, downloading with TOP, after a change), is a
// re-download (Event.Redownloaded, when the event does not count it
// itself), so that pop3.redownload and the
// domain-wide alarm see it whether or not the UIDLs changed (a client
// that lost its own list keeps the same UIDLs: no uidl-changed then).
// Fewer messages than before (another client deleted some) is neither.

// uidlChange is an account's latest UIDL change and how many sessions
// found one.
type uidlChange struct {
	Remote netip.Addr `json:"remote"`
	First  int64      `json:"first"`
	Last   int64      `json:"last"`
	Count  int        `json:"count"`
	// Was is the set after the session before, Now the set found.
	Was string `json:"was"`
	Now string `json:"now"`
}

// UIDLChange is the view of an account's UIDL changes.
type UIDLChange struct {
	Remote netip.Addr `json:"remote"`
	// Sessions that found the UIDL set changed; First and Last of them.
	Sessions int       `json:"sessions"`
	First    time.Time `json:"first"`
	Last     time.Time `json:"last"`
	// Was and Now are the fingerprints ("count/hash") before and after
	// the latest change.
	Was string `json:"was"`
	Now string `json:"now"`
}

// countHash splits "5/bc2b96e5".
func countHash(s string) (int, string, bool) {
	c, h, ok := strings.Cut(s, "/")
	n, err := strconv.Atoi(c)
	return n, h, ok && err == nil && n >= 0
}

// checkUIDLs compares e's fingerprints with the account's last one,
// records a change (and says so), counts a re-download into e, and
// keeps e's "after".
func (s *Store) checkUIDLs(a *account, e *events.Event, sec int64) (changed bool) {
	if e.UIDLsBefore == "" || e.UIDLsAfter == "" {
		return false
	}
	prev := a.UIDLs
	if sec >= a.UIDLsAt {
		a.UIDLs, a.UIDLsAt = strings.Clone(fit(e.UIDLsAfter, maxText)), sec
	}
	m, hp, ok := countHash(prev)
	if !ok || sec < a.UIDLsAt {
		return false
	}
	n, hb, ok1 := countHash(e.UIDLsBefore)
	k, ha, ok2 := countHash(e.UIDLsAfter)
	if !ok1 || !ok2 || m == 0 {
		return false
	}
	var found string
	switch {
	case n == m && hb != hp:
		found = e.UIDLsBefore
	case n == 0 && e.Retrieved >= m && e.Deleted == 0 && k == m && ha != hp:
		found = e.UIDLsAfter
	}
	// Everything retrieved again: from the first message, or (a client
	// that downloads with TOP, which Dovecot's fingerprint does not see
	// as a retrieval) after the UIDLs changed.
	if e.Retrieved >= m && (n == 0 || found != "") && e.Redownloaded == 0 {
		e.Redownloaded = m
	}
	if found == "" {
		return false
	}
	c := a.UIDLChange
	if c == nil {
		c = &uidlChange{First: sec}
		a.UIDLChange = c
	}
	c.Remote, c.Last, c.Was, c.Now = e.Remote, max(c.Last, sec), strings.Clone(fit(prev, maxText)), strings.Clone(fit(found, maxText))
	c.Count++
	return true
}

// pop3UIDLChanged: the server changed the UIDLs of the account's
// maildrop between two POP3 sessions.
func (d *deriving) pop3UIDLChanged() []finding.Finding {
	c := d.v.UIDLChange
	if c == nil || c.Last.Before(d.current) {
		return nil
	}
	value := fmt.Sprintf("the UIDL set was %s after one session and %s in the next (from %s)", c.Was, c.Now, addr(c.Remote))
	line := fmt.Sprintf("pop3 from %s: the UIDLs changed between two sessions %s; %s", addr(c.Remote), times(c.Sessions), firstLast(c.First, c.Last))
	return []finding.Finding{finding.New("pop3.uidl-changed", finding.Vars{"address": d.v.Address, "value": value}, line)}
}
