package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/chromedp"

	"mailsetup/server"
)

// chartDOM is what the browser shows of a chart (staff_chart.html).
type chartDOM struct {
	Role, Labelled, Title, Desc string
	// Days are the <g class="day"> groups, Titled those with a <title>,
	// Ascending whether their bars go left to right.
	Days, Titled int
	Ascending    bool
	Width        float64
	Right        float64
	Viewport     float64
	TableRows    int
	LastRow      []string
	LastTitle    string
	LegendSize   int
}

// readChart reads the chart whose SVG has id.
func readChart(t *testing.T, ctx context.Context, id string) chartDOM {
	t.Helper()
	c, err := chromedp.Run(ctx, chromedp.Evaluate[chartDOM](`(() => {
		const svg = document.getElementById(`+"`"+id+"`"+`);
		if (!svg) return {};
		const days = [...svg.querySelectorAll('g.day')];
		const xs = days.map(g => g.querySelector('rect').getBoundingClientRect().x);
		const rows = [...document.querySelectorAll('#`+id+`-table tbody tr')];
		const last = rows.length ? [...rows.at(-1).children].map(c => c.textContent) : [];
		const r = svg.getBoundingClientRect();
		const label = (x) => (document.getElementById(x) || {}).textContent || "";
		const ids = (svg.getAttribute('aria-labelledby') || "").split(' ');
		return {Role: svg.getAttribute('role'), Labelled: svg.getAttribute('aria-labelledby'), Title: label(ids[0]), Desc: label(ids[1] || ""),
			Days: days.length, Titled: days.filter(g => (g.querySelector(':scope > title') || {}).textContent).length,
			Ascending: xs.every((x, i) => i === 0 || x > xs[i-1]), Width: r.width, Right: r.right, Viewport: window.innerWidth,
			TableRows: rows.length, LastRow: last, LastTitle: days.length ? days.at(-1).querySelector('title').textContent : "",
			LegendSize: svg.closest('figure').querySelectorAll('.legend li').length};
	})()`))
	if err != nil {
		t.Fatalf("reading the chart %s: %v", id, err)
	}
	return c
}

// checkChart: one bar per day, left to right, each with its words; a
// name and a description; the numbers as a table, a row per day; drawn
// within the page's width.
func checkChart(t *testing.T, page string, c chartDOM, days int) {
	t.Helper()
	if c.Role != "img" || c.Title == "" || c.Desc == "" {
		t.Errorf("%s: the chart has no text equivalent: role %q, labelled by %q: %q / %q", page, c.Role, c.Labelled, c.Title, c.Desc)
	}
	if c.Days != days || c.Titled != days || !c.Ascending {
		t.Errorf("%s: %d day groups (%d with a title, left to right %v), want %d", page, c.Days, c.Titled, c.Ascending, days)
	}
	if c.TableRows != days {
		t.Errorf("%s: the table of the numbers has %d rows, want %d", page, c.TableRows, days)
	}
	if c.Width < 300 || c.Right > c.Viewport {
		t.Errorf("%s: the chart is %.0f px wide, its right edge at %.0f of %.0f", page, c.Width, c.Right, c.Viewport)
	}
}

// TestStaffPagesInBrowser: every staff page at desktop and phone width
// in Chromium against the real binary, after real clients made the
// incident's mistakes on two domains: swaks logs in as "john" and sends
// without authentication, fetchmail keeps john's mail on the server;
// curl logs in to POP3 as "mary" and mpop, keeping mary@pacc.test's
// mail, downloads it again once its UIDL state is gone. The account
// page opens with the timeline (one bar per day, today's counts in its
// table), the overview's trend and table give each domain's accounts,
// the CSV (curl with a staff session, and the browser's download) has
// the same numbers, and "what each mail program would set up" shows
// every client family and a finding, on the staff account page and on
// the customer's check page. No page breaks its Content-Security-Policy
// (the browser's log says so). The screenshots are kept as artifacts.
func TestStaffPagesInBrowser(t *testing.T) {
	m := startMailWith(t, func(t *testing.T, m *mailService, config string) string { return config + paccDomain })
	defer m.stop(t)
	const john, mary, pw = "john@example.test", "mary@pacc.test", "a long enough password"
	for _, a := range []string{john, mary} {
		if code, _, stderr := runCLI(t, pw+"\n", "user", "add", "--config", m.config, a); code != 0 {
			t.Fatalf("user add %s: %s", a, stderr)
		}
	}
	sub := fmt.Sprintf("127.0.0.1:%d", m.ports.Submission)
	if out := swaks(t, sub, "--tls", "--auth", "PLAIN", "--auth-user", "john", "--auth-password", pw, "--from", john, "--to", john); !strings.Contains(out, "535") {
		t.Fatalf("swaks as john was not refused:\n%s", out)
	}
	if out := swaks(t, sub, "--tls", "--from", john, "--to", john); !strings.Contains(out, "530 5.7.0") {
		t.Fatalf("swaks without AUTH was not refused:\n%s", out)
	}
	for i := range 2 {
		for _, to := range []string{john, mary} {
			if out := swaks(t, sub, "--tls", "--auth", "PLAIN", "--auth-user", server.DemoAddress, "--auth-password", m.password,
				"--from", server.DemoAddress, "--to", to, "--header", fmt.Sprintf("Subject: message %d", i)); !strings.Contains(out, "<~  250 2.0.0") {
				t.Fatalf("submission to %s failed:\n%s", to, out)
			}
		}
	}
	if n := fetchmailRunAs(t, m, t.TempDir(), john, pw); n != 2 {
		t.Fatalf("fetchmail downloaded %d messages, want 2", n)
	}
	if ok, out := curlPOP3Login(t, m.ports.POP3S, "mary", pw); ok || !strings.Contains(out, "use your full email address") {
		t.Fatalf("POP3 login as mary was not refused with the fix:\n%s", out)
	}
	work := t.TempDir()
	if n := mpopRunAs(t, m.ports.POP3S, mary, pw, work); n != 2 {
		t.Fatalf("mpop fetched %d, want 2", n)
	}
	states, _ := filepath.Glob(filepath.Join(work, "*.uidls"))
	for _, f := range states {
		os.Remove(f)
	}
	if len(states) == 0 {
		t.Fatal("mpop kept no UIDL state")
	}
	if n := mpopRunAs(t, m.ports.POP3S, mary, pw, work); n != 2 {
		t.Fatalf("mpop without its UIDL state fetched %d, want 2 again", n)
	}
	today := time.Now().UTC().Format("2006-01-02")
	// What the CSV must say today: bare local part, without
	// authentication, leave for ever, downloaded again.
	wantToday := map[string]string{"(all)": "2,1,2,1", "example.test": "1,1,1,0", "pacc.test": "1,0,1,1"}

	// The CSV with curl and a staff session; without one, no CSV.
	base := fmt.Sprintf("https://127.0.0.1:%d", m.ports.HTTPS)
	if r := curl(t, base+"/staff/overview.csv"); r.status != 303 || strings.Contains(string(r.body), "example.test") {
		t.Errorf("the CSV without a session: %d\n%s", r.status, r.body)
	}
	jar := filepath.Join(t.TempDir(), "cookies")
	form := curlStaff(t, jar, base+"/staff/signin")
	token := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(form.body)
	if token == nil {
		t.Fatalf("no csrf on the sign-in form:\n%s", form.body)
	}
	if r := curlStaff(t, jar, "--data-urlencode", "csrf="+string(token[1]), "--data-urlencode", "name="+server.DefaultStaff,
		"--data-urlencode", "password="+m.staffPassword, base+"/staff/signin"); r.status != 303 {
		t.Fatalf("curl sign-in: %d\n%s", r.status, r.body)
	}
	var csvBody []byte
	for deadline := time.Now().Add(10 * time.Second); ; { // the events reach the store through the bus
		r := curlStaff(t, jar, base+"/staff/overview.csv")
		if r.status != 200 || !strings.HasPrefix(r.contentType, "text/csv") || !strings.Contains(r.headers, "attachment") {
			t.Fatalf("the CSV: %d %s\n%s", r.status, r.contentType, r.headers)
		}
		csvBody = r.body
		if got := csvToday(t, csvBody, today); maps.Equal(got, wantToday) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got := csvToday(t, csvBody, today); !maps.Equal(got, wantToday) {
		t.Errorf("the CSV's numbers today: %v, want %v\n%s", got, wantToday, csvBody)
	}
	if rows, _ := csv.NewReader(bytes.NewReader(csvBody)).ReadAll(); len(rows) != 1+30*3 || strings.Join(rows[0], ",") != "date,domain,bare_local_part,no_auth,leave_forever,redownload" {
		t.Errorf("the CSV has %d rows, heading %v", len(rows), rows[0])
	}

	ctx := newBrowser(t)
	violations := watchCSP(t, ctx)
	var report string
	for i, size := range widths {
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(size.w, size.h)); err != nil {
			t.Fatal(err)
		}
		shot := func(name string) {
			checkPhonePage(t, ctx, name+" at "+size.name)
			screenshot(t, ctx, "staff-"+name+"-"+size.name)
		}
		if err := chromedp.Do(ctx, chromedp.Navigate(base+"/staff/signin"), chromedp.WaitVisible(chromedp.CSS("#password"))); err != nil {
			t.Fatal(err)
		}
		shot("signin")
		if i == 0 {
			signInBrowser(t, ctx, server.DefaultStaff, m.staffPassword)
		} else if err := chromedp.Do(ctx, chromedp.Navigate(base+"/staff/"), chromedp.WaitVisible(chromedp.CSS("#address"))); err != nil {
			t.Fatal(err)
		}
		// The served domains: a count and a filter, not every name.
		served, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#served-h').textContent + "|" + [...document.querySelectorAll('#served-domains a')].map(a => a.textContent).join(",")`))
		if err != nil || served != "Domains served here: 2|example.test,pacc.test" {
			t.Errorf("the start page's served domains: %q %v", served, err)
		}
		shot("home")
		if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS("#domain"), "pacc"), chromedp.Click(chromedp.CSS("#domains-filter")), chromedp.WaitVisible(chromedp.CSS("#all-served"))); err != nil {
			t.Fatalf("the served domains' filter: %v", err)
		}
		served, err = chromedp.Run(ctx, chromedp.Evaluate[string](`location.search + "|" + document.querySelector('#served p.muted').textContent + "|" + [...document.querySelectorAll('#served-domains a')].map(a => a.textContent).join(",")`))
		if err != nil || !strings.HasPrefix(served, "?domain=pacc|1 domain contains “pacc”") || !strings.HasSuffix(served, "|pacc.test") {
			t.Errorf("the served domains filtered: %q %v", served, err)
		}
		shot("home-filtered")
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#all-served")), chromedp.WaitVisible(chromedp.CSS("#overview-link"))); err != nil {
			t.Fatal(err)
		}

		// The overview: linked from the start page.
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#overview-link")), chromedp.WaitVisible(chromedp.CSS("#trend"))); err != nil {
			t.Fatalf("overview: %v", err)
		}
		trend := readChart(t, ctx, "trend")
		checkChart(t, "overview at "+size.name, trend, 30)
		if got := strings.Join(trend.LastRow, ","); got != today+",2,1,2,1" {
			t.Errorf("the trend's numbers today: %s", got)
		}
		if !strings.Contains(trend.LastTitle, "2 bare local part as username") || !strings.Contains(trend.Desc, "Today: 2, 1, 2 and 1") || trend.LegendSize != 4 {
			t.Errorf("the trend's words: %q, %q, legend %d", trend.LastTitle, trend.Desc, trend.LegendSize)
		}
		rows, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#domain-table tbody tr')].map(r => [...r.children].map(c => c.textContent).join(","))`))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(rows, "|") != "example.test,1,1,1,0,3|pacc.test,1,0,1,1,3" {
			t.Errorf("the domains' table: %q", rows)
		}
		shot("overview")
		if i == 0 {
			if got := downloadByClick(t, ctx, "#csv"); !bytes.Equal(got, csvBody) {
				t.Errorf("the browser's CSV differs from curl's:\n%s\n---\n%s", got, csvBody)
			}
			// The filter keeps one domain: its trend, its CSV link.
			if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS("#domain"), "pacc"), chromedp.Click(chromedp.CSS("#filter")), chromedp.WaitVisible(chromedp.CSS("#all-domains"))); err != nil {
				t.Fatal(err)
			}
			if c := readChart(t, ctx, "trend"); strings.Join(c.LastRow, ",") != today+",1,0,1,1" {
				t.Errorf("the trend of pacc.test today: %v", c.LastRow)
			}
			if href, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('csv').getAttribute('href')`)); err != nil || href != "/staff/overview.csv?domain=pacc" {
				t.Errorf("the filtered CSV link: %q %v", href, err)
			}
		}

		// The account page opens with the timeline.
		if err := chromedp.Do(ctx, chromedp.Navigate(base+"/staff/accounts/"+john), chromedp.WaitVisible(chromedp.CSS("#timeline"))); err != nil {
			t.Fatal(err)
		}
		tl := readChart(t, ctx, "timeline")
		checkChart(t, "account at "+size.name, tl, 30)
		// Today: wrong password, username, throttled, refused
		// submissions, downloaded again, logins (fetchmail's).
		if len(tl.LastRow) != 7 || strings.Join(tl.LastRow[:6], ",") != today+",0,1,0,1,0" || tl.LastRow[6] == "0" {
			t.Errorf("the timeline's numbers today: %v", tl.LastRow)
		}
		if !strings.Contains(tl.LastTitle, "1 refused logins: username not the full address") || !strings.Contains(tl.LastTitle, "1 refused submissions") ||
			!strings.Contains(tl.Desc, "Problems on 1 of 30 days, the first on "+time.Now().UTC().Format("Monday 2 January")) || tl.LegendSize != 6 {
			t.Errorf("the timeline's words: %q, %q, legend %d", tl.LastTitle, tl.Desc, tl.LegendSize)
		}
		if first, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('main section').id`)); err != nil || first != "timeline-section" {
			t.Errorf("the account page's first section is %q (%v), not the timeline", first, err)
		}
		shot("account")

		// A probe with what the caller reads out: the report page.
		if i == 0 {
			if err := chromedp.Do(ctx,
				chromedp.SetValue(chromedp.CSS("#in_proto"), "imap"),
				chromedp.SendKeys(chromedp.CSS("#in_user"), "john"),
				chromedp.SetValue(chromedp.CSS("#out_auth"), "no"),
				chromedp.Click(chromedp.CSS("#run-probe")),
				chromedp.WaitVisible(chromedp.CSS("#wrong")),
			); err != nil {
				t.Fatalf("probe: %v", err)
			}
			report, _ = chromedp.Run(ctx, chromedp.Location())
		} else if err := chromedp.Do(ctx, chromedp.Navigate(report), chromedp.WaitVisible(chromedp.CSS("#wrong"))); err != nil {
			t.Fatal(err)
		}
		if wrong, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#wrong"))); !strings.Contains(wrong, "username.not-full-address") || !strings.Contains(wrong, "smtp.auth-disabled") {
			t.Errorf("the report at %s:\n%s", size.name, wrong)
		}
		shot("report")

		if err := chromedp.Do(ctx, chromedp.Navigate(base+"/staff/audit"), chromedp.WaitVisible(chromedp.CSS("table"))); err != nil {
			t.Fatal(err)
		}
		if audit, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main"))); !strings.Contains(audit, "overview-csv") || !strings.Contains(audit, "probe") {
			t.Errorf("the audit page lacks the CSV download or the probe:\n%s", audit)
		}
		shot("audit")
	}

	// Every client's view (issue 18): on the staff account page and on
	// the customer's check page, loaded once and looked at in both
	// widths.
	for _, pg := range []struct{ name, url string }{
		{"staff-clients", base + "/staff/accounts/" + john + "?clients=1#clients"},
		{"check-clients", base + "/check/" + john + "?clients=1#clients"},
	} {
		if err := chromedp.Do(ctx, chromedp.Navigate(pg.url), chromedp.WaitVisible(chromedp.CSS("#clients"))); err != nil {
			t.Fatalf("%s: %v", pg.name, err)
		}
		for _, size := range widths {
			if err := chromedp.Do(ctx, chromedp.EmulateViewport(size.w, size.h)); err != nil {
				t.Fatal(err)
			}
			got, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#clients .client-view')].map(v => v.querySelector('h3').textContent + "=" + v.querySelector('h3').getBoundingClientRect().width)
				.concat([...document.querySelectorAll('#clients .finding[data-id]')].map(f => "finding " + f.dataset.id))`))
			if err != nil {
				t.Fatal(err)
			}
			all := strings.Join(got, "\n")
			for _, want := range []string{"Thunderbird desktop=", "Thunderbird for Android", "classic Outlook", "new Outlook", "Apple", "PACC", "msmtp", "mpop", "finding "} {
				if !strings.Contains(all, want) {
					t.Errorf("%s at %s: no %q in:\n%s", pg.name, size.name, want, all)
				}
			}
			if strings.Contains(all, "=0\n") {
				t.Errorf("%s at %s: a client's heading is not laid out:\n%s", pg.name, size.name, all)
			}
			checkPhonePage(t, ctx, pg.name+" at "+size.name)
			screenshot(t, ctx, pg.name+"-"+size.name)
		}
	}
	if v := violations(); len(v) > 0 {
		t.Errorf("the pages broke their Content-Security-Policy:\n%s", strings.Join(v, "\n"))
	}
}

// watchCSP collects what the browser logs about the pages breaking
// their Content-Security-Policy (an inline style, a loaded asset), from
// now on; the returned func lists them.
func watchCSP(t *testing.T, ctx context.Context) func() []string {
	t.Helper()
	var mu sync.Mutex
	var seen []string
	if err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*cdplog.EventEntryAdded); ok && strings.Contains(e.Entry.Text, "Content Security Policy") {
			mu.Lock()
			seen = append(seen, e.Entry.URL+": "+e.Entry.Text)
			mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{}); err != nil {
		t.Fatalf("Log.enable: %v", err)
	}
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(seen)
	}
}

// csvToday returns the overview CSV's rows of day by domain: the four
// counts joined by commas.
func csvToday(t *testing.T, body []byte, day string) map[string]string {
	t.Helper()
	rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatalf("the CSV does not parse: %v\n%s", err, body)
	}
	out := map[string]string{}
	for _, r := range rows[1:] {
		if len(r) == 6 && r[0] == day {
			out[r[1]] = strings.Join(r[2:], ",")
		}
	}
	return out
}
