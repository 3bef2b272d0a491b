package console

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode"

	"github.com/labstack/echo/v4"

	"mailsetup/internal/csvsafe"
	"mailsetup/server/observe"
	"mailsetup/templates"
)

// The ISP's overview: per domain and UTC day, the accounts whose clients
// made the incident's mistakes (observe.Store.Overview), as a page with
// a trend chart (/staff/overview), its CSV (/staff/overview.csv) and the
// API's JSON (/api/v1/overview). All three take the same query:
// ?domain= (a part of the domain names), ?days=1..30, ?offset= and
// ?limit=1..200 (the domains of one page, default 50).

// maxOverviewFilter bounds the domain filter (a domain name's length).
const maxOverviewFilter = 253

// overviewQuery reads the overview's query; the error names the bad
// parameter.
func overviewQuery(c echo.Context) (observe.OverviewOptions, error) {
	var o observe.OverviewOptions
	var err error
	if o.Days, err = queryInt(c, "days", observe.TimelineDays, 1, observe.TimelineDays); err != nil {
		return o, err
	}
	if o.Offset, err = queryInt(c, "offset", 0, 0, 1_000_000); err != nil {
		return o, err
	}
	if o.Limit, err = queryInt(c, "limit", 50, 1, observe.MaxOverviewDomains); err != nil {
		return o, err
	}
	o.Domain = strings.ToLower(strings.TrimSpace(c.QueryParam("domain")))
	if len(o.Domain) > maxOverviewFilter || strings.ContainsFunc(o.Domain, unicode.IsControl) {
		return o, fmt.Errorf("domain=%.40q...: want part of a domain name, at most %d characters", o.Domain, maxOverviewFilter)
	}
	return o, nil
}

// overviewURL is the link to the overview (or its CSV) for o.
func overviewURL(path string, o observe.OverviewOptions) string {
	q := url.Values{}
	if o.Domain != "" {
		q.Set("domain", o.Domain)
	}
	if o.Days != observe.TimelineDays {
		q.Set("days", strconv.Itoa(o.Days))
	}
	if o.Offset > 0 {
		q.Set("offset", strconv.Itoa(o.Offset))
	}
	if o.Limit != 50 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}

func (a *Console) staffOverview(c echo.Context) error {
	page := templates.StaffOverviewPage{StaffFrame: frameOf(c, "ISP overview")}
	o, err := overviewQuery(c)
	status := http.StatusOK
	if err != nil {
		page.Error, status = err.Error(), http.StatusBadRequest
		o = observe.OverviewOptions{Days: observe.TimelineDays, Limit: 50}
	}
	page.Filter = o.Domain
	if f := a.staff.opts.Overview; f != nil {
		page.Observed = true
		page.Report = overviewView(f(o))
		page.Trend = templates.OverviewChart(page.Report.All, page.Report.Filter)
		page.From = page.Report.Offset + 1
		o.Days = page.Report.Days
		page.CSV = overviewURL("/staff/overview.csv", o)
		if o.Offset > 0 {
			prev := o
			prev.Offset = max(0, o.Offset-o.Limit)
			page.Prev = overviewURL("/staff/overview", prev)
		}
		if o.Offset+o.Limit < page.Report.Domains {
			next := o
			next.Offset = o.Offset + o.Limit
			page.Next = overviewURL("/staff/overview", next)
		}
	}
	a.auditAdd(c, staffOf(c).user, "overview", o.Domain, "")
	return staffPage(c, status, func(w io.Writer) error { return a.pages.StaffOverview(w, page) })
}

// staffOverviewCSV is the CSV behind the overview's chart: a row per
// day and domain of the page, and per day the total of every selected
// domain as "(all)".
func (a *Console) staffOverviewCSV(c echo.Context) error {
	o, err := overviewQuery(c)
	if err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, err.Error())
	}
	f := a.staff.opts.Overview
	if f == nil {
		return echo.NewHTTPError(http.StatusNotFound, "this server observes no mail clients (no mail listeners, no log sources)")
	}
	a.auditAdd(c, staffOf(c).user, "overview-csv", o.Domain, "")
	var b bytes.Buffer
	if err := csvsafe.WriteAll(&b, overviewCSV(f(o))); err != nil {
		return err
	}
	c.Response().Header().Set("Content-Disposition", `attachment; filename="mailsetup-overview.csv"`)
	return c.Blob(http.StatusOK, "text/csv; charset=utf-8", b.Bytes())
}

// overviewAll names the total of the selected domains in the CSV.
const overviewAll = "(all)"

// overviewCSV returns the overview's rows: a heading, then per day the
// total of the selected domains (domain "(all)") and each domain of the
// page, oldest day first.
func overviewCSV(rep observe.OverviewReport) [][]string {
	rows := [][]string{{"date", "domain", "bare_local_part", "no_auth", "leave_forever", "redownload"}}
	row := func(domain string, m observe.Mistakes) []string {
		return []string{m.Date.Format("2006-01-02"), domain, strconv.Itoa(m.LocalPart), strconv.Itoa(m.NoAuth), strconv.Itoa(m.LeaveForever), strconv.Itoa(m.Redownload)}
	}
	for i, all := range rep.All {
		rows = append(rows, row(overviewAll, all))
		for _, d := range rep.Page {
			rows = append(rows, row(d.Domain, d.Days[i]))
		}
	}
	return rows
}

// apiOverview is GET /api/v1/overview: the overview as JSON
// (observe.OverviewReport), with the page's query.
func (a *Console) apiOverview(c echo.Context) error {
	o, err := overviewQuery(c)
	if err != nil {
		return apiFail(c, http.StatusBadRequest, "%v", err)
	}
	a.auditAdd(c, "token:"+c.Get("token").(string), "api-overview", o.Domain, "")
	f := a.staff.opts.Overview
	if f == nil {
		return apiFail(c, http.StatusNotFound, "this server observes no mail clients (no mail listeners, no log sources)")
	}
	return c.JSON(http.StatusOK, f(o))
}
