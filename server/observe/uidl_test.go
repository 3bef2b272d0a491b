package observe_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"mailsetup/server/events"
	"mailsetup/server/observe"
)

// logged is a POP3 session as a Dovecot log tells it: no re-download
// count of its own, the UIDL fingerprints.
func logged(at time.Time, account string, retrieved, messages int, before, after string) events.Event {
	return events.Event{Time: at, Kind: events.POP3Session, Proto: events.ProtoPOP3, Remote: ip("192.0.2.1"), Account: account,
		Result: events.ResultOK, Retrieved: retrieved, Messages: messages, LeftAll: retrieved > 0, UIDLsBefore: before, UIDLsAfter: after}
}

// TestUIDLChanged: the UIDL set changing between two sessions is
// pop3.uidl-changed (critical, the server's fault) and a re-download in
// the domain-wide alarm; new mail, a client retrieving only the new
// messages, and a client that lost its own list (same UIDLs) are not.
func TestUIDLChanged(t *testing.T) {
	clk := newClock(t0)
	path := filepath.Join(t.TempDir(), "observations.json")
	s := open(t, observe.Options{Path: path, Now: clk.Now})
	at := t0.Add(-time.Hour)
	// ann: everything once, then only the new message, then nothing new.
	s.Record(logged(at, "ann@johndoe.com", 5, 5, "0/00000000", "5/bc2b96e5"))
	s.Record(logged(at.Add(time.Minute), "ann@johndoe.com", 1, 6, "5/bc2b96e5", "6/0000aaaa"))
	s.Record(logged(at.Add(2*time.Minute), "ann@johndoe.com", 0, 6, "6/0000aaaa", "6/0000aaaa"))
	// bob's client lost its list: everything again, same UIDLs.
	s.Record(logged(at, "bob@johndoe.com", 3, 3, "0/00000000", "3/00000abc"))
	s.Record(logged(at.Add(time.Minute), "bob@johndoe.com", 3, 3, "0/00000000", "3/00000abc"))
	// cid: the server rebuilt its index with another UIDL format.
	s.Record(logged(at, "cid@johndoe.com", 5, 5, "0/00000000", "5/bc2b96e5"))
	s.Record(logged(at.Add(time.Minute), "cid@johndoe.com", 5, 5, "0/00000000", "5/1234abcd"))
	// eve's client downloads with TOP: the fingerprint sees no
	// retrieval, the set changed, everything came again.
	s.Record(logged(at, "eve@johndoe.com", 4, 4, "0/00000000", "4/0000000e"))
	s.Record(logged(at.Add(time.Minute), "eve@johndoe.com", 4, 4, "4/000000e0", "4/000000e0"))
	// dan: same count, another set, nothing retrieved yet.
	s.Record(logged(at, "dan@johndoe.com", 2, 2, "0/00000000", "2/0000000f"))
	s.Record(logged(at.Add(time.Minute), "dan@johndoe.com", 0, 2, "2/000000f0", "2/000000f0"))

	check := func(s *observe.Store) {
		t.Helper()
		for addr, want := range map[string]string{
			"ann@johndoe.com": "pop3.leave-forever",
			"bob@johndoe.com": "pop3.leave-forever pop3.redownload",
			"cid@johndoe.com": "pop3.leave-forever pop3.uidl-changed pop3.redownload",
			"dan@johndoe.com": "pop3.leave-forever pop3.uidl-changed",
			"eve@johndoe.com": "pop3.leave-forever pop3.uidl-changed pop3.redownload",
		} {
			a := mustAccount(t, s, addr)
			if got := strings.Join(ids(a), " "); got != want {
				t.Errorf("%s: findings %s, want %s", addr, got, want)
			}
		}
		f := findings(mustAccount(t, s, "cid@johndoe.com"), "pop3.uidl-changed")[0]
		if !strings.Contains(f.Staff, "5/bc2b96e5 after one session and 5/1234abcd in the next") || f.Severity.String() != "critical" {
			t.Errorf("cid's finding: %+v", f)
		}
		got := s.Redownloads(24 * time.Hour)
		if len(got) != 1 || got[0].Accounts != 3 || got[0].Messages != 12 {
			t.Errorf("re-download alarm: %+v", got)
		}
		var troubled []string
		for _, r := range s.Recent(10, 24*time.Hour) {
			troubled = append(troubled, r.Address)
		}
		if !slices.Contains(troubled, "cid@johndoe.com") || !slices.Contains(troubled, "dan@johndoe.com") {
			t.Errorf("troubles: %v", troubled)
		}
	}
	check(s)
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	check(open(t, observe.Options{Path: path, Now: clk.Now}))
}

// TestSearch: the console's search over the observed addresses.
func TestSearch(t *testing.T) {
	s := open(t, observe.Options{Now: newClock(t0).Now})
	for _, a := range []string{"ann@johndoe.com", "joanna@johndoe.com", "bob@example.net"} {
		s.Record(login(t0, events.ProtoIMAP, "192.0.2.1", a))
	}
	s.Record(bareLocalPart(t0, events.ProtoPOP3, "192.0.2.1", "joan"))
	if got := strings.Join(s.Search("an", 10), " "); got != "ann@johndoe.com joanna@johndoe.com" {
		t.Errorf("search an: %s", got)
	}
	if got := s.Search("johndoe", 1); len(got) != 1 {
		t.Errorf("limit: %v", got)
	}
}
