package main

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	imagepng "image/png"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/makiuchi-d/gozxing"
	qrreader "github.com/makiuchi-d/gozxing/qrcode"

	"mailsetup/autoconfig/mobileconfig"
	"mailsetup/internal/testkit"
	"mailsetup/server"
	"mailsetup/templates"
)

// widths are the two screens every page is tried at: a desktop and a
// phone.
var widths = []struct {
	name string
	w, h int64
}{{"desktop", 1280, 900}, {"phone", 390, 844}}

// screenshot keeps a full-page picture of what the browser shows as a
// test artifact (go test -artifacts keeps them; they are never
// committed).
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	if err := os.WriteFile(filepath.Join(t.ArtifactDir(), name+".png"), png, 0o644); err != nil {
		t.Error(err)
	}
}

// checkPictures checks a client page's drawn dialogs: at least one,
// drawn within the page's width with its text laid out, the username
// and outgoing authentication marked (and POP3's leave-a-copy when pop),
// and a text equivalent naming each field with its value.
func checkPictures(t *testing.T, ctx context.Context, page string, pop bool) {
	t.Helper()
	got, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`(() => {
		const out = [];
		const figs = document.querySelectorAll('figure.dialog');
		if (figs.length === 0) return ["no picture of the dialog"];
		for (const f of figs) {
			const svg = f.querySelector('svg'), r = svg.getBoundingClientRect();
			if (r.width < 200 || r.right > window.innerWidth) out.push(f.id + ": drawn " + r.width + " px wide, right edge " + r.right);
			for (const tx of svg.querySelectorAll('text')) if (tx.getComputedTextLength() === 0 && tx.textContent) out.push(f.id + ": text not laid out: " + tx.textContent);
			const name = document.getElementById(svg.getAttribute('aria-labelledby'));
			if (!name || !name.textContent.includes(':')) out.push(f.id + ": no text equivalent");
		}
		out.push("marked: " + [...document.querySelectorAll('figure.dialog .dlg-m')].map(e => e.textContent).join("|"));
		out.push("title: " + [...document.querySelectorAll('figure.dialog svg title')].map(e => e.textContent).join("|"));
		return out;
	})()`))
	if err != nil {
		t.Fatal(err)
	}
	marks, title := strings.ToLower(got[len(got)-2]), got[len(got)-1]
	for _, p := range got[:len(got)-2] {
		t.Errorf("%s: %s", page, p)
	}
	if !(strings.Contains(marks, "username") || strings.Contains(marks, "user name")) || !(strings.Contains(marks, "authentication") || strings.Contains(marks, "sign-in") || strings.Contains(marks, "smtp") || strings.Contains(marks, "password")) {
		t.Errorf("%s: the username and outgoing authentication are not both marked: %s", page, marks)
	}
	if !strings.Contains(title, server.DemoAddress+" (marked)") {
		t.Errorf("%s: the text equivalent lacks the marked username: %s", page, title)
	}
	if pop && !strings.Contains(marks, "7 days") {
		t.Errorf("%s: POP3's remove after 7 days is not marked: %s", page, marks)
	}
}

// TestSettingsCardsInBrowser opens the overview and each mail program's
// page at desktop and phone width in headless Chromium against the real
// binary: the settings to use come first, one card per kind with the
// recommended server, port, security and username; the copy buttons the
// optional script adds work under the pages' CSP (the clipboard holds
// the value); the other ports wait behind "other ports, if these are
// blocked", where the server names line up with their rows; and a POP3
// user gets the POP3 card with "leave a copy + remove after 7 days" and
// that step in the main instructions.
func TestSettingsCardsInBrowser(t *testing.T) {
	m := startMail(t)
	defer m.stop(t)
	ctx := newBrowser(t)
	base := m.urls["https"]
	if base == "" {
		t.Fatalf("no https listener printed:\n%s", m.stdout)
	}
	for _, name := range []string{"clipboard-read", "clipboard-write"} {
		if _, err := chromedp.CallBrowser(ctx, browser.SetPermission, browser.SetPermissionParams{
			Permission: &browser.PermissionDescriptor{Name: name}, Setting: browser.PermissionSettingGranted, Origin: base}); err != nil {
			t.Fatalf("permission %s: %v", name, err)
		}
	}
	eval := func(js string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return s
	}
	card := func(id string) string {
		return eval(`[...document.querySelectorAll('#` + id + ` dl > div')].map(d => d.querySelector('dt').textContent + "=" + [...d.querySelector('dd').childNodes].filter(n => !n.classList?.contains('copy-button')).map(n => n.textContent).join("")).join("\n")`)
	}
	user := server.DemoAddress
	wantIMAP := fmt.Sprintf("Server=localhost\nPort=%d\nSecurity=SSL/TLS\nUsername=%s\nPassword=your mail password", m.ports.IMAPS, user)
	wantPOP := fmt.Sprintf("Server=localhost\nPort=%d\nSecurity=SSL/TLS\nUsername=%s\nPassword=your mail password\nLeave a copy on the server=Yes, and remove it after 7 days", m.ports.POP3S, user)
	wantOut := fmt.Sprintf("Server=localhost\nPort=%d\nSecurity=SSL/TLS\nUsername=%s\nRequires authentication=Yes, same username and password", m.ports.Submissions, user)

	for _, size := range widths {
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(size.w, size.h)); err != nil {
			t.Fatal(err)
		}
		for _, pg := range []struct{ name, path, in string }{
			{"overview", "", wantIMAP},
			{"thunderbird", "/thunderbird", wantIMAP},
			{"outlook", "/outlook", wantIMAP},
			{"apple", "/apple", wantIMAP},
			{"android", "/android", wantIMAP},
			{"other", "/other", wantIMAP},
			{"windowsmail", "/windowsmail", wantIMAP},
			{"outlookmac", "/outlookmac", wantIMAP},
			{"outlookmobile", "/outlookmobile", wantIMAP},
			{"samsung", "/samsung", wantIMAP},
			{"emclient", "/emclient", wantIMAP},
			{"samsung-pop3", "/samsung?incoming=pop3", wantIMAP}, // cannot remove POP3 mail after N days
			{"emclient-pop3", "/emclient?incoming=pop3", wantPOP},
			{"thunderbird-pop3", "/thunderbird?incoming=pop3", wantPOP},
			{"outlook-pop3", "/outlook?incoming=pop3", wantPOP},
			{"android-pop3", "/android?incoming=pop3", wantIMAP}, // Android: IMAP, as its steps say
		} {
			name := size.name + "-" + pg.name
			if err := chromedp.Do(ctx,
				chromedp.Navigate(base+"/help/"+user+pg.path),
				chromedp.WaitVisible(chromedp.CSS("#card-in")),
				// The script's buttons: one per copyable value.
				chromedp.WaitVisible(chromedp.CSS("#card-out .copy-button")),
			); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			checkPhonePage(t, ctx, name)
			if got := card("card-in"); got != pg.in {
				t.Errorf("%s: incoming card\n%s\nwant\n%s", name, got, pg.in)
			}
			if got := card("card-out"); got != wantOut {
				t.Errorf("%s: outgoing card\n%s\nwant\n%s", name, got, wantOut)
			}
			// The cards come before everything else the page explains,
			// in large type.
			if got := eval(`document.querySelector('main h2').id`); got != "use-h" && pg.name == "overview" {
				t.Errorf("%s: the first heading is %q, not the settings to use", name, got)
			}
			if got := eval(`getComputedStyle(document.querySelector('#card-in dd .copy').parentElement).fontSize`); got != "21.6px" {
				t.Errorf("%s: the server name's type is %s, want 21.6px (1.35rem)", name, got)
			}
			if got := eval(`String(document.querySelectorAll('.copy').length === document.querySelectorAll('.copy-button').length)`); got != "true" {
				t.Errorf("%s: not one copy button per value", name)
			}
			// The alternates are closed until asked for.
			if got := eval(`String(document.getElementById('other-ports').open) + " " + document.querySelector('#other-ports summary').textContent`); got != "false Other ports, if these are blocked" {
				t.Errorf("%s: other ports: %q", name, got)
			}
			if strings.HasSuffix(pg.name, "pop3") && pg.in == wantPOP {
				if n := eval(`String(document.querySelectorAll('main > ol #pop-main').length)`); n != "1" {
					t.Errorf("%s: the POP3 leave-a-copy step is not in the main steps", name)
				}
			}
			if pg.name != "overview" {
				checkPictures(t, ctx, name, pg.in == wantPOP)
			}
			screenshot(t, ctx, name)
		}

		// The copy button puts the value on the clipboard.
		if err := chromedp.Do(ctx,
			chromedp.Navigate(base+"/help/"+user),
			chromedp.WaitVisible(chromedp.CSS("#card-in .copy-button")),
			chromedp.Click(chromedp.CSS(`#card-in div:nth-child(4) .copy-button`)),
		); err != nil {
			t.Fatal(err)
		}
		clip, err := chromedp.Run(ctx, chromedp.Evaluate[string](`navigator.clipboard.readText()`, chromedp.EvalAwaitPromise))
		if err != nil || clip != user {
			t.Errorf("%s: the username's copy button copied %q (%v)", size.name, clip, err)
		}
		if got := eval(`document.querySelector('#card-in div:nth-child(4) .copy-button').textContent`); got != "Copied" {
			t.Errorf("%s: the copy button says %q after copying", size.name, got)
		}

		// Other ports: every server, its name in line with its row.
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#other-ports summary")), chromedp.WaitVisible(chromedp.CSS("#other-ports table"))); err != nil {
			t.Fatal(err)
		}
		rows := eval(`[...document.querySelectorAll('#other-ports tbody')[0].rows].map(r => [...r.cells].map(c => c.textContent).join(" ")).join("\n")`)
		for _, p := range []int{m.ports.IMAPS, m.ports.IMAP, m.ports.POP3S, m.ports.POP3, m.ports.Submissions, m.ports.Submission} {
			if !strings.Contains(rows, fmt.Sprintf("localhost %d", p)) {
				t.Errorf("%s: port %d is not among the other ports:\n%s", size.name, p, rows)
			}
		}
		misaligned := eval(`[...document.querySelectorAll('#other-ports tbody')[0].rows].filter(r => {
			const tops = [...r.cells].map(c => c.firstChild.nodeType === 3 ? (() => { const g = document.createRange(); g.selectNodeContents(c); return g.getBoundingClientRect().top })() : c.firstElementChild.getBoundingClientRect().top);
			return Math.max(...tops) - Math.min(...tops) > 2;
		}).map(r => r.textContent).join("; ")`)
		if misaligned != "" {
			t.Errorf("%s: server names out of line with their rows: %s", size.name, misaligned)
		}
		screenshot(t, ctx, size.name+"-other-ports")
	}
}

// withSlowIMAP adds to the demo domain an IMAP server that accepts and
// never greets, so that a check takes seconds (its connect step waits
// out its time limit) while the other steps finish at once.
func withSlowIMAP(t *testing.T, _ *mailService, config string) string {
	t.Helper()
	return config + fmt.Sprintf("\n  [[domain.imap]]\n  host = \"127.0.0.1\"\n  port = %d\n  security = \"tls\"\n", testkit.Tarpit(t))
}

// TestCheckResultInBrowser posts the check with the incident's
// mistakes in Chromium at desktop and phone width against the real
// binary: the page shows the finished steps while the check still runs
// (the browser is still loading the page, the result not there yet),
// then the problems first, each with its severity in an icon and in
// words, and the wrong fields of the re-filled form marked with the
// right value beside them; the right ones are not marked.
func TestCheckResultInBrowser(t *testing.T) {
	m := startMailWith(t, withSlowIMAP)
	defer m.stop(t)
	ctx := newBrowser(t)
	base := m.urls["https"]
	user := server.DemoAddress
	for _, size := range widths {
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(size.w, size.h),
			chromedp.Navigate(base+"/check/"+user), chromedp.WaitVisible(chromedp.CSS("#in_user"))); err != nil {
			t.Fatal(err)
		}
		var acts []chromedp.Action[chromedp.Void]
		for id, v := range map[string]string{"in_proto": "imap", "in_host": "localhost", "in_port": fmt.Sprint(m.ports.IMAPS), "in_security": "starttls",
			"in_user": "demo", "out_host": "localhost", "out_port": fmt.Sprint(m.ports.Submission), "out_security": "starttls", "out_auth": "no"} {
			acts = append(acts, chromedp.SetValue(chromedp.CSS("#"+id), v))
		}
		acts = append(acts, chromedp.Evaluate[chromedp.Void](`window.oldPage = true`), chromedp.Click(chromedp.CSS(`button[type=submit]`)))
		if err := chromedp.Do(ctx, acts...); err != nil {
			t.Fatal(err)
		}
		// While the page loads: steps shown, the result not yet.
		streamed, deadline := "", time.Now().Add(20*time.Second)
		for time.Now().Before(deadline) {
			s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(window.oldPage ? "old" : document.readyState) + " " + document.querySelectorAll('#progress li.step').length + " " + !!document.getElementById('result')`))
			if err == nil && strings.HasPrefix(s, "loading ") && !strings.HasPrefix(s, "loading 0 ") && strings.HasSuffix(s, " false") {
				streamed = s
			}
			if err == nil && strings.HasPrefix(s, "complete ") {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if streamed == "" {
			t.Errorf("%s: never saw finished steps while the check ran", size.name)
		}
		if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS("#result"))); err != nil {
			t.Fatal(err)
		}
		name := size.name + "-check"
		checkPhonePage(t, ctx, name)
		got, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`(() => {
			const out = [];
			const steps = [...document.querySelectorAll('#progress li.step')];
			out.push("steps " + steps.length + " unfinished " + steps.filter(s => s.classList.contains('unfinished')).length);
			out.push("done " + (document.getElementById('progress-done')?.textContent || ""));
			const order = ['problems', 'right'].map(id => document.getElementById(id));
			const form = document.querySelector('form');
			out.push("order " + (order[0] && order[1] && (order[0].compareDocumentPosition(order[1]) & 4) && (order[1].compareDocumentPosition(form) & 4) ? "ok" : "wrong"));
			for (const li of document.querySelectorAll('#problems li.finding')) out.push("problem " + li.dataset.id + " " + li.querySelector('.sev-icon').textContent + " " + li.querySelector('.sev').textContent);
			for (const el of document.querySelectorAll('form .wrong')) out.push("wrong " + el.id + ": " + document.getElementById(el.id + '-right').textContent.trim());
			return out;
		})()`))
		if err != nil {
			t.Fatal(err)
		}
		text := strings.Join(got, "\n")
		for _, want := range []string{"unfinished 1", "order ok",
			"problem username.not-full-address ✖ Must fix", "problem smtp.auth-disabled ✖ Must fix",
			"wrong in_security: ✖ Wrong. Right: SSL/TLS", "wrong in_user: ✖ Wrong. Right: " + user, "wrong out_auth: ✖ Wrong. Right: Yes, ticked"} {
			if !strings.Contains(text, want) {
				t.Errorf("%s: no %q in\n%s", name, want, text)
			}
		}
		for _, right := range []string{"in_host", "in_port", "out_host", "out_port", "out_security"} {
			if strings.Contains(text, "wrong "+right+":") {
				t.Errorf("%s: the right field %s is marked wrong\n%s", name, right, text)
			}
		}
		screenshot(t, ctx, name)
	}
}

// TestProfileQRInBrowser: the Apple page, in Chromium at desktop and
// phone width against the real binary, shows a QR code drawn by the
// server; a picture of it as the browser draws it decodes (gozxing) to
// the absolute link of the address's profile, which serves the
// profile.
func TestProfileQRInBrowser(t *testing.T) {
	m := startMail(t)
	defer m.stop(t)
	ctx := newBrowser(t)
	base := m.urls["https"]
	want := fmt.Sprintf("https://localhost:%d/apple/mail.mobileconfig?email=%s", m.ports.HTTPS, url.QueryEscape(server.DemoAddress))
	for _, size := range widths {
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(size.w, size.h),
			chromedp.Navigate(base+"/help/"+server.DemoAddress+"/apple"), chromedp.WaitVisible(chromedp.CSS("#profile-qr svg"))); err != nil {
			t.Fatal(err)
		}
		checkPhonePage(t, ctx, size.name+"-apple-qr")
		png, err := chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS("#profile-qr svg")))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(t.ArtifactDir(), size.name+"-profile-qr.png"), png, 0o644); err != nil {
			t.Error(err)
		}
		img, err := imagepng.Decode(bytes.NewReader(png))
		if err != nil {
			t.Fatal(err)
		}
		bmp, err := gozxing.NewBinaryBitmapFromImage(img)
		if err != nil {
			t.Fatal(err)
		}
		res, err := qrreader.NewQRCodeReader().Decode(bmp, nil)
		if err != nil {
			t.Fatalf("%s: the QR code does not decode: %v", size.name, err)
		}
		if res.GetText() != want {
			t.Errorf("%s: the QR code says %q, want %q", size.name, res.GetText(), want)
		}
		alt, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('profile-qr-t').textContent`))
		if err != nil || !strings.Contains(alt, want) {
			t.Errorf("%s: the QR code's text equivalent %q (%v)", size.name, alt, err)
		}
	}
	// The link serves the profile (over the loopback address the
	// binary printed: localhost names the same listener).
	served := curl(t, strings.Replace(want, fmt.Sprintf("https://localhost:%d", m.ports.HTTPS), base, 1))
	if _, _, err := mobileconfig.Content(served.body); served.status != 200 || err != nil {
		t.Errorf("the QR code's link: %d, %v", served.status, err)
	}
}

// withBranding gives the demo config a [branding]: a PNG logo made
// here, a name, the support phone and page, and an accent colour.
func withBranding(t *testing.T, m *mailService, config string) string {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 64, 32))
	for x := range 64 {
		for y := range 32 {
			img.Set(x, y, color.RGBA{0x7a, 0x1f, 0x5c, 0xff})
		}
	}
	var b bytes.Buffer
	if err := imagepng.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(filepath.Dir(m.config), "logo.png"), b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return config + "\n[branding]\nname = \"Example Net\"\nlogo = \"logo.png\"\nsupport_phone = \"+49 30 1234567\"\nsupport_url = \"https://help.example.net/mail\"\naccent = \"#7a1f5c\"\n"
}

// TestBrandingInBrowser: with [branding], every customer page in
// Chromium (desktop and phone width, the real binary) shows the name and
// the logo (loaded under the pages' CSP), the support phone as a tel:
// link and the support page, and uses the accent colour; the start page
// lists no served domain.
func TestBrandingInBrowser(t *testing.T) {
	m := startMailWith(t, withBranding)
	defer m.stop(t)
	ctx := newBrowser(t)
	base := m.urls["https"]
	user := server.DemoAddress
	pages := []string{"/", "/help/" + user, "/check/" + user}
	for _, c := range templates.HelpClients {
		pages = append(pages, "/help/"+user+"/"+c.ID)
	}
	for _, size := range widths {
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(size.w, size.h)); err != nil {
			t.Fatal(err)
		}
		for _, p := range pages {
			name := size.name + strings.ReplaceAll(p, "/", "-")
			if p == "/" {
				name = size.name + "-start"
			}
			if err := chromedp.Do(ctx, chromedp.Navigate(base+p), chromedp.WaitVisible(chromedp.CSS("footer.support"))); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => {
				const logo = document.querySelector('header.brand img.logo');
				const button = document.querySelector('button[type=submit], a.button');
				return [document.querySelector('header.brand .brand-name')?.textContent,
					logo && logo.complete && logo.naturalWidth,
					document.querySelector('footer.support a[href^="tel:"]')?.getAttribute('href'),
					document.querySelector('footer.support a[href^="https:"]')?.getAttribute('href'),
					button ? getComputedStyle(button).backgroundColor : "no button"].join("|");
			})()`))
			if err != nil {
				t.Fatal(err)
			}
			want := "Example Net|64|tel:+49301234567|https://help.example.net/mail|rgb(122, 31, 92)"
			if strings.HasSuffix(got, "no button") {
				want = strings.TrimSuffix(want, "rgb(122, 31, 92)") + "no button"
			}
			if got != want {
				t.Errorf("%s: %s, want %s", name, got, want)
			}
			checkPhonePage(t, ctx, name)
			if p == "/" {
				body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
				if strings.Contains(body, "example.test") {
					t.Errorf("the start page lists a served domain:\n%s", body)
				}
				screenshot(t, ctx, name)
			}
		}
	}
}
