package templates

import (
	"fmt"
	"strings"
	"time"
)

// The console's charts: one bar per UTC day, drawn by the server as an
// inline SVG (no script, nothing loaded), with a text equivalent: the
// SVG's <title> and <desc>, a <title> per day, and a table of the
// numbers in a <details> below (staff_chart.html). The colours are
// classes of the one stylesheet (.staff .c-NAME).

// ChartSeries is one kind of count, stacked in a row's bar.
type ChartSeries struct {
	// Name is what the legend and the table call it.
	Name string
	// Class colours its part of the bar (c-NAME in mailsetup.css).
	Class string
}

// ChartRow is one band of the chart with its own scale: the day's bar
// stacks its series.
type ChartRow struct {
	Name   string
	Series []ChartSeries
}

// Chart is a chart of counts per day. Values[day][row][series] follow
// Dates, Rows and each row's Series.
type Chart struct {
	// ID is the element id of the SVG (the tests find it by it).
	ID string
	// Title names the chart; Desc says in words what it shows (its
	// <desc>, for screen readers).
	Title, Desc string
	Rows        []ChartRow
	Dates       []time.Time
	Values      [][][]int
}

// The drawing's geometry, in the viewBox's units.
const (
	chartWidth    = 600
	chartRowH     = 90
	chartRowGap   = 34
	chartLeft     = 4
	chartTickH    = 26
	chartMinBarPx = 2
)

// ChartRect is one stacked part of a day's bar.
type ChartRect struct {
	X, Y, W, H float64
	Class      string
}

// ChartDay is one day's group of bars.
type ChartDay struct {
	Date time.Time
	// Title is the day in words (its <title>): "2026-12-03: 4 refused
	// logins (username), ...".
	Title string
	Rects []ChartRect
	// Values are the day's numbers, row after row, series after series
	// (the table's cells).
	Values []int
}

// ChartLabel is a text in the drawing.
type ChartLabel struct {
	X, Y   float64
	Text   string
	Anchor string
}

// ChartDrawing is the laid-out chart the template writes.
type ChartDrawing struct {
	Chart
	Width, Height int
	Days          []ChartDay
	Labels        []ChartLabel
	// Columns are the table's headings: every row's series.
	Columns []string
	// Legend lists the series with their colour.
	Legend []ChartSeries
}

// Draw lays the chart out: per row a band scaled to its largest day,
// a bar per day, a date under every seventh day and the last.
func (c Chart) Draw() ChartDrawing {
	d := ChartDrawing{Chart: c, Width: chartWidth}
	n := len(c.Dates)
	if n == 0 {
		return d
	}
	slot := float64(chartWidth-chartLeft) / float64(n)
	barW := max(slot*0.7, 1)
	top := 0.0
	rowTop := make([]float64, len(c.Rows))
	rowMax := make([]int, len(c.Rows))
	for r, row := range c.Rows {
		top += chartRowGap / 2
		d.Labels = append(d.Labels, ChartLabel{X: chartLeft, Y: top + 4, Text: row.Name, Anchor: "start"})
		top += chartRowGap / 2
		rowTop[r] = top
		for day := range n {
			sum := 0
			for s := range row.Series {
				sum += c.value(day, r, s)
			}
			rowMax[r] = max(rowMax[r], sum)
		}
		d.Labels[len(d.Labels)-1].Text += fmt.Sprintf(" (highest: %d a day)", rowMax[r])
		top += chartRowH
		for _, s := range row.Series {
			d.Columns = append(d.Columns, s.Name)
			d.Legend = append(d.Legend, s)
		}
	}
	for day, date := range c.Dates {
		x := chartLeft + float64(day)*slot + (slot-barW)/2
		g := ChartDay{Date: date}
		var words []string
		for r, row := range c.Rows {
			base := rowTop[r] + chartRowH
			for s, ser := range row.Series {
				v := c.value(day, r, s)
				g.Values = append(g.Values, v)
				if v == 0 {
					continue
				}
				words = append(words, fmt.Sprintf("%d %s", v, strings.ToLower(ser.Name)))
				h := max(float64(v)/float64(rowMax[r])*chartRowH, chartMinBarPx)
				base -= h
				g.Rects = append(g.Rects, ChartRect{X: x, Y: base, W: barW, H: h, Class: ser.Class})
			}
			// The baseline of an empty day, so that every day has a
			// visible bar position.
			g.Rects = append(g.Rects, ChartRect{X: x, Y: rowTop[r] + chartRowH, W: barW, H: 1, Class: "c-base"})
		}
		if len(words) == 0 {
			words = []string{"nothing"}
		}
		g.Title = date.UTC().Format("Mon 2 Jan 2006") + ": " + strings.Join(words, ", ")
		d.Days = append(d.Days, g)
		if (day%7 == 0 && n-1-day >= 4) || day == n-1 { // no weekly date that would run into the last
			anchor := "middle"
			switch {
			case day == 0:
				anchor = "start"
			case day == n-1:
				anchor = "end"
			}
			d.Labels = append(d.Labels, ChartLabel{X: x + barW/2, Y: top + chartTickH - 3, Text: date.UTC().Format("2 Jan"), Anchor: anchor})
		}
	}
	d.Height = int(top) + chartTickH + 4
	return d
}

func (c Chart) value(day, row, series int) int {
	if day >= len(c.Values) || row >= len(c.Values[day]) || series >= len(c.Values[day][row]) {
		return 0
	}
	return max(c.Values[day][row][series], 0)
}

// The series of the charts, with the words of the legend and the
// table.
var (
	timelineProblems = ChartRow{Name: "Problems", Series: []ChartSeries{
		{"Refused logins: wrong password", "c-pass"},
		{"Refused logins: username not the full address", "c-user"},
		{"Refused logins: too many failures", "c-throttle"},
		{"Refused submissions", "c-refused"},
		{"Messages downloaded again (POP3)", "c-redl"},
	}}
	timelineLogins = ChartRow{Name: "Successful logins", Series: []ChartSeries{{"Logins", "c-login"}}}
	overviewRow    = ChartRow{Name: "Accounts with a mistake", Series: []ChartSeries{
		{"Bare local part as username", "c-user"},
		{"Sent without authentication", "c-refused"},
		{"POP3: leaves mail for ever", "c-leave"},
		{"POP3: downloaded again", "c-redl"},
	}}
)

// TimelineChart is an account's timeline (one TimelineDay a day): a
// band of problems and a band of logins, one bar per day.
func TimelineChart(address string, days []TimelineDay) ChartDrawing {
	c := Chart{ID: "timeline", Title: "What " + address + "'s clients did, per day (UTC)",
		Rows: []ChartRow{timelineProblems, timelineLogins}}
	first, problemDays := -1, 0
	for i, d := range days {
		c.Dates = append(c.Dates, d.Date)
		c.Values = append(c.Values, [][]int{{d.BadPassword, d.UsernameForm, d.Throttled, d.Refused, d.Redownloaded}, {d.Logins}})
		if d.Failures()+d.Refused+d.Redownloaded > 0 {
			problemDays++
			if first < 0 {
				first = i
			}
		}
	}
	if len(days) > 0 {
		c.Desc = fmt.Sprintf("Refused logins, refused submissions, POP3 re-downloads and successful logins per day from %s to %s. ",
			days[0].Date.Format("2 Jan"), days[len(days)-1].Date.Format("2 Jan 2006"))
		if first < 0 {
			c.Desc += "No problem on any day."
		} else {
			c.Desc += fmt.Sprintf("Problems on %d of %d days, the first on %s.", problemDays, len(days), days[first].Date.Format("Monday 2 January"))
		}
	}
	return c.Draw()
}

// OverviewChart is the overview's trend (StaffOverview.All):
// per day the accounts that made each mistake.
func OverviewChart(days []ChartMistakes, filter string) ChartDrawing {
	what := "all domains"
	if filter != "" {
		what = "the domains that contain “" + filter + "”"
	}
	c := Chart{ID: "trend", Title: "Accounts whose clients made the incident's mistakes, per day (UTC), " + what,
		Rows: []ChartRow{overviewRow}}
	peak, peakDay := 0, 0
	for i, d := range days {
		c.Dates = append(c.Dates, d.Date)
		c.Values = append(c.Values, [][]int{{d.LocalPart, d.NoAuth, d.LeaveForever, d.Redownload}})
		if d.Sum() > peak {
			peak, peakDay = d.Sum(), i
		}
	}
	if len(days) > 0 {
		last := days[len(days)-1]
		c.Desc = fmt.Sprintf("Per day from %s to %s, the accounts that used the bare local part, sent without authentication, left POP3 mail for ever or downloaded again. Today: %d, %d, %d and %d.",
			days[0].Date.Format("2 Jan"), last.Date.Format("2 Jan 2006"), last.LocalPart, last.NoAuth, last.LeaveForever, last.Redownload)
		if peak > 0 {
			c.Desc += fmt.Sprintf(" Most on %s: %d.", days[peakDay].Date.Format("Monday 2 January"), peak)
		}
	}
	return c.Draw()
}
