package console_test

import (
	"encoding/csv"
	"encoding/json"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"mailsetup/server/events"
	"mailsetup/server/observe"
)

// TestStaffTimelineAndOverview: the account page opens with the
// timeline (one bar per day, its text equivalent); the overview page
// draws the trend and lists the domains; the CSV and the API give the
// same numbers; a bad query is refused naming the parameter.
func TestStaffTimelineAndOverview(t *testing.T) {
	env := newStaffApp(t)
	remote := netip.MustParseAddr("203.0.113.7")
	for _, acct := range []string{"john@example.com", "=cmd@evil.example"} {
		env.obs.Record(events.Event{Time: env.clock.now(), Kind: events.SubmissionRefused, Proto: "submission", Remote: remote,
			Account: acct, Result: "auth-required", Detail: "MAIL FROM without AUTH"})
	}
	env.obs.Record(events.Event{Time: env.clock.now(), Kind: events.Auth, Proto: "pop3", Remote: remote,
		Username: "john", Form: events.FormLocalPart, Result: events.ResultUsernameForm})
	b := newBrowserClient(t, env.app)
	b.signIn(staffPassword)

	page := b.do("GET", "/staff/accounts/john@example.com", nil).Body.String()
	if n := strings.Count(page, `<g class="day"`); n != observe.TimelineDays {
		t.Errorf("the timeline has %d days, want %d", n, observe.TimelineDays)
	}
	for _, want := range []string{`<svg id="timeline" role="img" aria-labelledby="timeline-t timeline-d"`, "<desc id=\"timeline-d\">", "Problems on 1 of 30 days",
		`<table id="timeline-table">`, "1 refused submissions", "1 refused logins: username not the full address"} {
		if !strings.Contains(page, want) {
			t.Errorf("the account page lacks %q", want)
		}
	}
	if strings.Index(page, `id="timeline"`) > strings.Index(page, `id="observed"`) {
		t.Error("the timeline does not open the account page")
	}

	ov := b.do("GET", "/staff/overview", nil)
	body := ov.Body.String()
	if ov.Code != http.StatusOK || strings.Count(body, `<g class="day"`) != observe.TimelineDays || !strings.Contains(body, `<svg id="trend"`) ||
		!strings.Contains(body, `href="/staff/overview?domain=example.com"`) || !strings.Contains(body, `href="/staff/overview.csv"`) {
		t.Errorf("overview: %d\n%s", ov.Code, body)
	}
	if w := b.do("GET", "/staff/overview?offset=5", nil); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "There are only 2 domains with mistakes") || !strings.Contains(w.Body.String(), `id="prev"`) {
		t.Errorf("offset past the end: %d", w.Code)
	}
	if w := b.do("GET", "/staff/overview?limit=1", nil); !strings.Contains(w.Body.String(), `<a href="/staff/overview?limit=1&amp;offset=1" id="next">`) || strings.Contains(w.Body.String(), `id="prev"`) {
		t.Errorf("limit=1: no link to the next page:\n%s", w.Body)
	}
	if w := b.do("GET", "/staff/overview?domain=%00x", nil); w.Code != http.StatusBadRequest {
		t.Errorf("a control character in the filter: %d", w.Code)
	}
	if w := b.do("GET", "/staff/overview?days=99", nil); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), `days=&#34;99&#34;: want a number from 1 to 30`) {
		t.Errorf("days=99: %d", w.Code)
	}

	w := b.do("GET", "/staff/overview.csv?domain=", nil)
	if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/csv") {
		t.Fatalf("csv: %d %s", w.Code, w.Header().Get("Content-Type"))
	}
	rows, err := csv.NewReader(w.Body).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	today := env.clock.now().UTC().Format("2006-01-02")
	got := map[string]string{}
	for _, r := range rows[1:] {
		if r[0] == today {
			got[r[1]] = strings.Join(r[2:], ",")
		}
	}
	if got["(all)"] != "1,2,0,0" || got["example.com"] != "1,1,0,0" || got["evil.example"] != "0,1,0,0" {
		t.Errorf("csv today: %v", got)
	}
	if len(rows) != 1+observe.TimelineDays*3 {
		t.Errorf("csv: %d rows", len(rows))
	}

	api := b.do("GET", "/api/v1/overview?domain=example.com&days=7", nil, "Authorization", "Bearer "+env.token)
	var rep observe.OverviewReport
	if err := json.Unmarshal(api.Body.Bytes(), &rep); err != nil || api.Code != http.StatusOK || rep.Days != 7 || rep.Domains != 1 || rep.Page[0].Total.NoAuth != 1 {
		t.Errorf("api: %d %v\n%s", api.Code, err, api.Body)
	}
	if w := b.do("GET", "/api/v1/overview?limit=0", nil, "Authorization", "Bearer "+env.token); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "limit") {
		t.Errorf("api limit=0: %d %s", w.Code, w.Body)
	}
	if !strings.Contains(env.audit.String(), `"action":"overview-csv"`) || !strings.Contains(env.audit.String(), `"action":"api-overview"`) {
		t.Errorf("not audited:\n%s", env.audit)
	}
	env.obs.Record(events.Event{Time: env.clock.now(), Kind: events.POP3Session, Proto: "pop3", Remote: remote, Account: "john@example.com",
		Result: "ok", Retrieved: 4, Redownloaded: 2, Messages: 12, Bytes: 3456, LeftAll: true})
	page = b.do("GET", "/staff/accounts/john@example.com", nil).Body.String()
	// The raw lists, from the console's view of the observations.
	for _, want := range []string{"<td>203.0.113.7</td><td>1</td><td>4</td><td>2</td><td>0</td><td>12 messages, 3456 bytes</td>",
		"<td>submission</td><td>203.0.113.7</td><td>auth-required</td><td>MAIL FROM without AUTH</td><td>1</td>",
		"<td>pop3</td><td>203.0.113.7</td><td>john</td><td>username-form (local-part)</td>"} {
		if !strings.Contains(page, want) {
			t.Errorf("the account page's raw lists lack %q", want)
		}
	}
}
