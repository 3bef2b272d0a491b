package server

import (
	"strings"
	"testing"
	"time"

	"mailsetup/autoconfig"
	"mailsetup/internal/testkit"
)

// TestPACCRollover: a reload that changes a PACC document keeps the
// earlier digest published beside the new one for one TTL, then drops it.
func TestPACCRollover(t *testing.T) {
	now := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
	l := livePolicies{now: func() time.Time { return now }}
	p := testkit.IMAPFirst()
	l.replace([]autoconfig.Policy{p})
	digests := func() []string {
		var out []string
		for _, r := range l.Policies()[0].Records() {
			if r.Type == "TXT" {
				out = append(out, autoconfig.ParsePACCText(strings.Join(r.Text, "")))
			}
		}
		return out
	}
	first := paccDigest(p)
	if got := digests(); len(got) != 1 || got[0] != first {
		t.Fatalf("before the change: %q, want [%s]", got, first)
	}
	p.DisplayName = "Example Mail, renamed"
	l.replace([]autoconfig.Policy{p})
	second := paccDigest(p)
	if got := digests(); len(got) != 2 || got[0] != second || got[1] != first {
		t.Fatalf("after the change: %q, want [%s %s]", got, second, first)
	}
	if pol, _ := l.Policy("example.com"); pol.DisplayName != p.DisplayName {
		t.Errorf("the web still sees %q", pol.DisplayName)
	}
	// A second change within the TTL keeps both earlier digests.
	now = now.Add(time.Minute)
	p.ShortName = "Ex"
	l.replace([]autoconfig.Policy{p})
	if got := digests(); len(got) != 3 {
		t.Fatalf("second change within the TTL: %q, want 3 digests", got)
	}
	now = now.Add(autoconfig.PACCTTL*time.Second + time.Second)
	if got := digests(); len(got) != 1 || got[0] != paccDigest(p) {
		t.Fatalf("one TTL later: %q, want only the current digest", got)
	}
	// A reload that changes nothing starts no rollover.
	l.replace([]autoconfig.Policy{p})
	if got := digests(); len(got) != 1 {
		t.Fatalf("unchanged reload: %q", got)
	}
}
