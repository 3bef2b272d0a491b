package templates_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"mailsetup/templates"
)

// TestTimelineChart: one group per day with its words, the bars inside
// the drawing and each band scaled to its own highest day, the first
// problem day named in the description, the numbers as a table row per
// day; hostile text escaped.
func TestTimelineChart(t *testing.T) {
	start := time.Date(2026, 11, 8, 0, 0, 0, 0, time.UTC)
	days := make([]templates.TimelineDay, 30)
	for i := range days {
		days[i].Date = start.AddDate(0, 0, i)
		days[i].Logins = 200
	}
	days[25].UsernameForm, days[25].Refused = 14, 3
	days[29].BadPassword = 1
	d := templates.TimelineChart("<john>@example.com", days)
	if len(d.Days) != 30 || len(d.Columns) != 6 {
		t.Fatalf("%d days, %d columns", len(d.Days), len(d.Columns))
	}
	for i, g := range d.Days {
		for _, r := range g.Rects {
			if r.X < 0 || r.X+r.W > float64(d.Width) || r.Y < 0 || r.Y+r.H > float64(d.Height) || r.H <= 0 {
				t.Errorf("day %d: a bar outside the drawing: %+v in %dx%d", i, r, d.Width, d.Height)
			}
		}
		if i > 0 && g.Rects[0].X <= d.Days[i-1].Rects[0].X {
			t.Errorf("day %d is not right of day %d", i, i-1)
		}
	}
	if g := d.Days[25]; g.Title != "Thu 3 Dec 2026: 14 refused logins: username not the full address, 3 refused submissions, 200 logins" ||
		fmt.Sprint(g.Values) != "[0 14 0 3 0 200]" {
		t.Errorf("3 Dec: %q %v", g.Title, g.Values)
	}
	// The tallest problem bar fills its band; a day with 1 is small but
	// visible.
	var tall, small float64
	for _, r := range d.Days[25].Rects {
		if r.Class != "c-base" && r.Class != "c-login" {
			tall += r.H
		}
	}
	for _, r := range d.Days[29].Rects {
		if r.Class == "c-pass" {
			small = r.H
		}
	}
	if tall < 89 || small < 2 || small > 10 {
		t.Errorf("bar heights: 17 problems %.1f, 1 problem %.1f", tall, small)
	}
	if !strings.Contains(d.Desc, "Problems on 2 of 30 days, the first on Thursday 3 December") {
		t.Errorf("desc: %s", d.Desc)
	}

	set, err := templates.Parse()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	p := templates.StaffAccountPage{StaffFrame: templates.StaffFrame{Frame: templates.Frame{Title: "<john>"}, User: "alice"}, Address: "<john>@example.com", Timeline: &d}
	if err := set.StaffAccount(&b, p); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	checkPage(t, "account with timeline", out, `<svg id="timeline" role="img" aria-labelledby="timeline-t timeline-d"`, "<title id=\"timeline-t\">What &lt;john&gt;@example.com&#39;s clients did",
		`<g class="day" data-date="2026-12-03"><title>Thu 3 Dec 2026: 14 refused logins`, `<th scope="row">2026-12-03</th><td>0</td><td>14</td><td>0</td><td>3</td><td>0</td><td>200</td>`)
	if n := strings.Count(out, `<g class="day"`); n != 30 {
		t.Errorf("%d day groups", n)
	}
}
