package observe

import (
	"slices"
	"strings"
	"time"

	"mailsetup/finding"
	"mailsetup/server/events"
)

// The console's start page lists the accounts whose clients had trouble
// lately, so that support can call back before the customer calls. The
// store remembers the latest problem event of up to maxTroubled accounts
// (bounded like everything else) and derives the list from the accounts'
// own findings when asked.

// maxTroubled bounds the accounts remembered for Recent.
const maxTroubled = 512

// Trouble is an account with current findings, for the console's list.
type Trouble struct {
	Address string `json:"address"`
	// Last is the latest problem event.
	Last time.Time `json:"last"`
	// Worst is the worst finding's severity.
	Worst finding.Severity `json:"worst"`
	// Findings are the account's findings that are not ok, worst first.
	Findings []finding.Finding `json:"findings"`
}

// problem reports whether an event is a client doing something wrong:
// a refused login, a refused submission (no AUTH, forged sender, over
// the sending limit), a POP3
// session that left everything or downloaded again.
func problem(e *events.Event) bool {
	switch e.Kind {
	case events.Auth:
		return e.Result != events.ResultOK
	case events.SubmissionRefused:
		return e.Result == events.ResultAuthRequired || e.Result == events.ResultForgedSender || e.Result == events.ResultSendLimit
	case events.POP3Session:
		return e.LeftAll || e.Redownloaded > 0
	}
	return false
}

// markTroubled notes a problem event of an account (caller holds mu).
// Bare local parts name no account and are left out.
func (s *Store) markTroubled(key string, sec int64) {
	if !strings.Contains(key, "@") {
		return
	}
	if s.troubled == nil {
		s.troubled = map[string]int64{}
	}
	if old, ok := s.troubled[key]; ok {
		s.troubled[key] = max(old, sec)
		return
	}
	if len(s.troubled) >= maxTroubled {
		oldest, oldestSec := "", int64(0)
		for k, v := range s.troubled {
			if oldest == "" || v < oldestSec {
				oldest, oldestSec = k, v
			}
		}
		delete(s.troubled, oldest)
	}
	s.troubled[key] = sec
}

// rebuildTroubled fills the list from the loaded accounts (caller holds
// mu, or the store is not shared yet).
func (s *Store) rebuildTroubled() {
	for key, a := range s.accounts {
		var last int64
		for _, g := range a.Failures {
			last = max(last, g.Last)
		}
		for _, g := range a.Refusals {
			if g.Result == events.ResultAuthRequired || g.Result == events.ResultForgedSender {
				last = max(last, g.Last)
			}
		}
		for _, g := range a.POP3 {
			for _, d := range g.Days {
				if d.LeftAll > 0 || d.Redownloaded > 0 {
					last = max(last, g.Last)
				}
			}
		}
		if a.UIDLChange != nil {
			last = max(last, a.UIDLChange.Last)
		}
		if last > 0 {
			s.markTroubled(key, last)
		}
	}
}

// Recent returns up to n accounts with a problem event within the last
// window and findings of at least warning severity, most recent first.
func (s *Store) Recent(n int, window time.Duration) []Trouble {
	since := s.now().Add(-window).Unix()
	type kv struct {
		key string
		sec int64
	}
	s.mu.Lock()
	list := make([]kv, 0, len(s.troubled))
	for k, v := range s.troubled {
		if v >= since {
			list = append(list, kv{k, v})
		}
	}
	s.mu.Unlock()
	slices.SortFunc(list, func(a, b kv) int {
		if a.sec != b.sec {
			return int(b.sec - a.sec)
		}
		return strings.Compare(a.key, b.key)
	})
	out := []Trouble{}
	for _, e := range list {
		if len(out) >= n {
			break
		}
		a, ok := s.Account(e.key)
		if !ok {
			continue // forgotten since
		}
		t := Trouble{Address: a.Address, Last: time.Unix(e.sec, 0).UTC()}
		for _, f := range a.Findings {
			if f.Severity >= finding.Warning {
				t.Findings = append(t.Findings, f)
				t.Worst = max(t.Worst, f.Severity)
			}
		}
		if len(t.Findings) > 0 {
			out = append(out, t)
		}
	}
	return out
}
