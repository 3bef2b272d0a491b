package templates_test

import (
	"strings"
	"testing"

	"mailsetup/probe"
	"mailsetup/templates"
)

// TestStaffReportSaysWhatTheCallerReported: "What the caller reported"
// shows the outgoing authentication as the caller gave it: off as off,
// on as on, and nothing when not given (it said "on" for any answer).
func TestStaffReportSaysWhatTheCallerReported(t *testing.T) {
	set, err := templates.Parse()
	if err != nil {
		t.Fatal(err)
	}
	on, off := true, false
	for _, c := range []struct {
		auth      *bool
		want, bad string
	}{{&off, "authentication off", "authentication on"}, {&on, "authentication on", "authentication off"}, {nil, "", "authentication"}} {
		rep := &probe.Report{Address: "john@example.com", Client: &probe.ClientSettings{Outgoing: probe.Outgoing{Host: "smtp.example.com", Auth: c.auth}}}
		var b strings.Builder
		if err := set.StaffReport(&b, templates.StaffReportPage{ID: "r1", Report: rep}); err != nil {
			t.Fatal(err)
		}
		_, reported, _ := strings.Cut(b.String(), `id="reported"`)
		if c.want != "" && !strings.Contains(reported, c.want) || strings.Contains(reported, c.bad) {
			t.Errorf("auth %v: want %q, not %q:\n%s", c.auth, c.want, c.bad, reported)
		}
	}
}
