package console

import (
	"testing"
	"time"
)

// TestStaffSessionsBounded: sign-ins beyond the bound push the oldest
// sessions out; idle ones expire.
func TestStaffSessionsBounded(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	ss := &staffSessions{idle: 30 * time.Minute, now: func() time.Time { return now }, m: map[string]*staffSession{}}
	first, _ := ss.create("alice")
	for i := 0; i < maxStaffSessions+100; i++ {
		now = now.Add(time.Second)
		ss.create("bob")
	}
	if n := len(ss.m); n > maxStaffSessions {
		t.Errorf("%d sessions, bound %d", n, maxStaffSessions)
	}
	if _, ok := ss.get(first.id); ok {
		t.Error("the oldest session survived the bound")
	}
	s, _ := ss.create("carol")
	now = now.Add(31 * time.Minute)
	if _, ok := ss.get(s.id); ok {
		t.Error("an idle session survived its timeout")
	}
	for i := 0; i < reportsPerSession+5; i++ {
		s.addReport(nil)
	}
	if len(s.reports) != reportsPerSession {
		t.Errorf("%d reports kept, bound %d", len(s.reports), reportsPerSession)
	}
}
