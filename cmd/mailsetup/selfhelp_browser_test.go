package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"mailsetup/autoconfig/mobileconfig"
	"mailsetup/server"
)

// TestSelfHelpInBrowser walks the customer self-help pages in headless
// Chromium at phone width against the real binary: enter the address,
// read the Thunderbird and Apple instructions, download the Apple
// profile from the page's link, and check settings with the two errors
// of the incident (bare local part as username, outgoing authentication
// off), then correct ones with the password.
func TestSelfHelpInBrowser(t *testing.T) {
	m := startMail(t)
	defer m.stop(t)
	ctx := newBrowser(t)
	base := m.urls["https"]
	if base == "" {
		t.Fatalf("no https listener printed:\n%s", m.stdout)
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	contains := func(page, got string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: no %q in:\n%s", page, w, got)
			}
		}
	}
	location := func() string {
		t.Helper()
		l, err := chromedp.Run(ctx, chromedp.Location())
		if err != nil {
			t.Fatal(err)
		}
		return l
	}

	// The start page: type the address, submit.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS("#address")),
		chromedp.SendKeys(chromedp.CSS("#address"), server.DemoAddress),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`a[href$="/thunderbird"]`)),
	); err != nil {
		t.Fatalf("start page: %v", err)
	}
	if l := location(); l != base+"/help/"+server.DemoAddress {
		t.Errorf("the address form led to %s", l)
	}
	checkPhonePage(t, ctx, "overview")
	contains("overview", text("main"), "Example Test Mail", "localhost", fmt.Sprint(m.ports.IMAPS), fmt.Sprint(m.ports.Submissions), "Check my settings")

	// Thunderbird: automatic, and what to do if it is not.
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`a[href$="/thunderbird"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#client-thunderbird`)),
	); err != nil {
		t.Fatalf("thunderbird page: %v", err)
	}
	checkPhonePage(t, ctx, "thunderbird")
	contains("thunderbird", text("main"), "Configuration found at email provider", "Configure manually", `"Hostname": localhost`,
		fmt.Sprintf(`"Port": %d`, m.ports.IMAPS), `"Connection security": SSL/TLS`, `"Authentication method": Normal password`,
		`"Username": `+server.DemoAddress, `"For at most" and type 7 days`)

	// Apple: the one-tap profile.
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`a[href$="/apple"]`)),
		chromedp.WaitVisible(chromedp.CSS("#client-apple")),
	); err != nil {
		t.Fatalf("apple page: %v", err)
	}
	checkPhonePage(t, ctx, "apple")
	contains("apple", text("main"), "Download the settings profile", "Profile Downloaded", `"User Name": `+server.DemoAddress)
	href, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('profile-link').href`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(href, base+"/apple/mail.mobileconfig?email=") {
		t.Fatalf("profile link %q", href)
	}
	downloaded := downloadByClick(t, ctx, "#profile-link")
	served := curl(t, href)
	if served.status != 200 {
		t.Fatalf("curl %s: %d", href, served.status)
	}
	// The default config signs profiles, and a CMS signature carries its
	// signing time (and ECDSA is randomised), so two downloads are never
	// byte-equal: compare the signed content, the profile itself, which
	// is byte-stable (name-based UUIDs), and require both to be signed.
	gotPlist, gotSigned, err := mobileconfig.Content(downloaded)
	if err != nil {
		t.Fatalf("downloaded profile: %v", err)
	}
	wantPlist, wantSigned, err := mobileconfig.Content(served.body)
	if err != nil {
		t.Fatalf("served profile: %v", err)
	}
	if !gotSigned || !wantSigned || !bytes.Equal(gotPlist, wantPlist) {
		t.Errorf("the page's download differs from the endpoint's profile (signed %v/%v)\npage:\n%s\nendpoint:\n%s", gotSigned, wantSigned, gotPlist, wantPlist)
	}
	if !bytes.Contains(gotPlist, []byte(server.DemoAddress)) {
		t.Errorf("the profile is not for the address:\n%s", gotPlist)
	}

	// The check, from the overview's button, with the incident's two
	// mistakes.
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`a[href="/help/`+server.DemoAddress+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(`a.button[href^="/check/"]`)),
		chromedp.Click(chromedp.CSS(`a.button[href^="/check/"]`)),
		chromedp.WaitVisible(chromedp.CSS("#in_user")),
	); err != nil {
		t.Fatalf("check page: %v", err)
	}
	checkPhonePage(t, ctx, "check form")
	fill := func(values map[string]string) []chromedp.Action[chromedp.Void] {
		var acts []chromedp.Action[chromedp.Void]
		for _, id := range []string{"in_proto", "in_host", "in_port", "in_security", "in_user", "leave", "delete_after", "out_host", "out_port", "out_security", "out_auth", "out_user", "password"} {
			v, ok := values[id]
			if !ok {
				continue
			}
			acts = append(acts, chromedp.SetValue(chromedp.CSS("#"+id), v))
		}
		// The previous result goes first, so that waiting for #result
		// waits for the new page.
		return append(acts, chromedp.Evaluate[chromedp.Void](`document.getElementById('result')?.remove()`),
			chromedp.Click(chromedp.CSS(`button[type=submit]`)), chromedp.WaitVisible(chromedp.CSS("#result")))
	}
	bad := map[string]string{"in_proto": "imap", "in_host": "localhost", "in_port": fmt.Sprint(m.ports.IMAPS), "in_security": "tls",
		"in_user": "demo", "out_host": "localhost", "out_port": fmt.Sprint(m.ports.Submission), "out_security": "starttls", "out_auth": "no"}
	if err := chromedp.Do(ctx, fill(bad)...); err != nil {
		t.Fatalf("posting the check: %v\n%s", err, text("body"))
	}
	checkPhonePage(t, ctx, "check result")
	ids, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#problems li.finding')].map(e => e.dataset.id)`))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids, []string{"username.not-full-address", "smtp.auth-disabled"}) {
		t.Errorf("findings %v, want the username and the authentication\n%s", ids, text("main"))
	}
	contains("result", text("#problems"), "The username is not the full email address",
		`type your full email address `+server.DemoAddress+` instead of "demo"`,
		"Outgoing server authentication is turned off", `Turn on "My outgoing server (SMTP) requires authentication"`,
		"In your settings:") // both are the customer's to fix
	contains("result", text("#right"), fmt.Sprintf("Incoming server: IMAP, localhost, port %d, SSL/TLS", m.ports.IMAPS))
	if v, _ := chromedp.Run(ctx, chromedp.Value(chromedp.CSS("#in_user"))); v != "demo" {
		t.Errorf("the form was not re-filled: in_user %q", v)
	}

	// Corrected, with the password: everything right.
	good := map[string]string{"in_user": server.DemoAddress, "out_auth": "yes", "out_user": server.DemoAddress, "password": m.password}
	if err := chromedp.Do(ctx, fill(good)...); err != nil {
		t.Fatalf("posting the corrected check: %v", err)
	}
	checkPhonePage(t, ctx, "check result (right)")
	body := text("main")
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int64](`document.querySelectorAll('#all-right').length`)); err != nil || n != 1 {
		t.Fatalf("no all-right box (%v):\n%s", err, body)
	}
	contains("right result", body, "Everything is right", "and your password works", "Incoming username: "+server.DemoAddress,
		"Outgoing server requires authentication: yes", fmt.Sprintf("Your password works on the IMAP server localhost:%d", m.ports.IMAPS))
	pw, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS("#password")))
	if err != nil || pw != "" {
		t.Errorf("the password field is re-filled (%v)", err)
	}
	html, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	if err != nil || strings.Contains(html, m.password) {
		t.Errorf("the password is in the page (%v)", err)
	}
}

// downloadByClick clicks sel and returns the downloaded file.
func downloadByClick(t *testing.T, ctx context.Context, sel string) []byte {
	t.Helper()
	dir := t.TempDir()
	on := true
	if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dir, EventsEnabled: &on}); err != nil {
		t.Fatalf("download behaviour: %v", err)
	}
	done := make(chan string, 1)
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := chromedp.ListenBrowser(lctx, func(ev any) {
		if e, ok := ev.(*browser.EventDownloadProgress); ok && e.State == browser.DownloadProgressStateCompleted {
			select {
			case done <- e.GUID:
			default:
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
		t.Fatal(err)
	}
	select {
	case guid := <-done:
		data, err := os.ReadFile(filepath.Join(dir, guid))
		if err != nil {
			t.Fatal(err)
		}
		return data
	case <-time.After(30 * time.Second):
		t.Fatal("the download did not complete")
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	return nil
}
