package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"mailsetup/server"
)

// TestGermanPagesInBrowser: with Accept-Language: de, Chromium (at
// desktop and phone width, against the real binary) gets the start
// page, a client page and a check result in German; the switch on the
// page leads to English, which the cookie then keeps. Screenshots are
// kept as test artifacts. A third language from the data directory's
// lang/ folder joins the switch.
func TestGermanPagesInBrowser(t *testing.T) {
	m := startMailWith(t, withFrench)
	defer m.stop(t)
	ctx := newBrowser(t)
	base := m.urls["https"]
	user := server.DemoAddress
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{
		Headers: network.Headers{"Accept-Language": "de-DE,de;q=0.9,en;q=0.4"}}); err != nil {
		t.Fatal(err)
	}
	page := func(name string, want ...string) {
		t.Helper()
		got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.lang + "\n" + document.title + "\n" + document.body.innerText + "\n" + [...document.querySelectorAll('svg text')].map(e => e.textContent).join("\n")`))
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range want {
			// innerText is as the page shows it: the severities in capitals.
			if !strings.Contains(strings.ToLower(got), strings.ToLower(w)) {
				t.Errorf("%s: no %q in:\n%s", name, w, got)
			}
		}
		checkPhonePage(t, ctx, name)
		screenshot(t, ctx, name)
	}
	for _, size := range widths {
		// Each width starts as a new visitor: no language cookie.
		if _, err := chromedp.Call(ctx, network.ClearBrowserCookies, cdp.Empty{}); err != nil {
			t.Fatal(err)
		}
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(size.w, size.h),
			chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#address"))); err != nil {
			t.Fatal(err)
		}
		page(size.name+"-de-start", "de\nE-Mail einrichten", "Ihre E-Mail-Adresse", "Meine Einstellungen anzeigen", "English", "Français")

		if err := chromedp.Do(ctx, chromedp.Navigate(base+"/help/"+user+"/thunderbird"), chromedp.WaitVisible(chromedp.CSS("#client-thunderbird"))); err != nil {
			t.Fatal(err)
		}
		page(size.name+"-de-thunderbird", "Thunderbird: "+user+" einrichten", "Diese Einstellungen verwenden", "Posteingangsserver (IMAP)",
			"Ihr Benutzername ist Ihre vollständige E-Mail-Adresse", "Bestehende E-Mail-Adresse einrichten", "Authentifizierungsmethode",
			"Passwort, normal", "Manuell einrichten")

		if err := chromedp.Do(ctx, chromedp.Navigate(base+"/check/"+user), chromedp.WaitVisible(chromedp.CSS("#in_user"))); err != nil {
			t.Fatal(err)
		}
		var acts []chromedp.Action[chromedp.Void]
		for id, v := range map[string]string{"in_proto": "imap", "in_host": "localhost", "in_port": fmt.Sprint(m.ports.IMAPS), "in_security": "tls",
			"in_user": "demo", "out_host": "localhost", "out_port": fmt.Sprint(m.ports.Submission), "out_security": "starttls", "out_auth": "no"} {
			acts = append(acts, chromedp.SetValue(chromedp.CSS("#"+id), v))
		}
		acts = append(acts, chromedp.Click(chromedp.CSS(`button[type=submit]`)), chromedp.WaitVisible(chromedp.CSS("#result")))
		if err := chromedp.Do(ctx, acts...); err != nil {
			t.Fatal(err)
		}
		// The whole result, "What we saw" (closed) included: no English.
		result, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('main').textContent`))
		if err != nil {
			t.Fatal(err)
		}
		if english := englishIn(result); len(english) > 0 {
			t.Errorf("%s: the German check result says in English: %q", size.name, english)
		}
		for _, want := range []string{"Was wir gesehen haben", "Eingetragen: „demo“", "richtig: " + user, "Postausgang: „Authentifizierung erforderlich“ ist ausgeschaltet"} {
			if !strings.Contains(result, want) {
				t.Errorf("%s: the German check result lacks %q", size.name, want)
			}
		}
		page(size.name+"-de-check", "Ihre Einstellungen werden geprüft", "Verbindung zum IMAP-Server localhost:", "Fertig:", ",", "Sekunden",
			"2 Punkte zu beheben", "Der Benutzername ist nicht die vollständige E-Mail-Adresse", "Muss behoben werden",
			"So beheben Sie es:", "Ihre vollständige E-Mail-Adresse "+user+" ein statt „demo“",
			"Falsch. Richtig: "+user, "Falsch. Richtig: Ja, angehakt", "Was richtig ist")

		// What each mail program would set up, in German.
		if err := chromedp.Do(ctx, chromedp.Navigate(base+"/check/"+user+"?clients=1#clients"), chromedp.WaitVisible(chromedp.CSS("#clients"))); err != nil {
			t.Fatal(err)
		}
		view, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#clients').textContent`))
		if err != nil {
			t.Fatal(err)
		}
		if english := englishIn(view); len(english) > 0 {
			t.Errorf("%s: the German clients view says in English: %q\n%s", size.name, english, view)
		}
		for _, want := range []string{"Thunderbird auf dem Computer", "Neues Outlook und Outlook-Apps für Handys", "Autoconfig-Server, HTTPS", "Suchreihenfolge mit Stand"} {
			if !strings.Contains(view, want) {
				t.Errorf("%s: the German clients view lacks %q:\n%s", size.name, want, view)
			}
		}
		screenshot(t, ctx, size.name+"-de-clients")

		// The switch: a plain link to this page in English.
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#langs a[hreflang="en"]`)), chromedp.WaitVisible(chromedp.CSS("#in_user"))); err != nil {
			t.Fatal(err)
		}
		page(size.name+"-en-check", "en\nCheck the settings of "+user, "Incoming mail", "Check my settings", "Deutsch")
		if err := chromedp.Do(ctx, chromedp.Navigate(base+"/help/"+user), chromedp.WaitVisible(chromedp.CSS("#card-in"))); err != nil {
			t.Fatal(err)
		}
		page(size.name+"-en-overview", "en\nMail settings for "+user, "The settings to use", "What to get right")
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#langs a[hreflang="fr"]`)), chromedp.WaitVisible(chromedp.CSS(`html[lang="fr"] #card-in`))); err != nil {
			t.Fatal(err)
		}
		page(size.name+"-fr-overview", "fr\n", "Les réglages à utiliser", "What to get right", "English", "Deutsch")
	}
}

// englishOnGermanPages are sentences and words of the English pages, the
// probe's evidence and the clients report that a German page must never
// show (the check result, "What we saw", the clients view).
var englishOnGermanPages = []string{
	// the probe's evidence lines
	"incoming username", "outgoing username", "the bare local part", `"requires authentication" is off`, "the policy has",
	"the policy:", "every reported setting matches", "remove after", "with connection security", "timed out",
	// the clients report's words
	"Sets up", "skipped", "usable", "not checked", "no record", "a third party's service", "Lookup order as of",
	"incoming IMAP", "outgoing SMTP", "username ", "autoconfig host", "Thunderbird desktop", "new Outlook and Outlook mobile",
	"classic Outlook", "with the profile", "PACC clients", "cannot be simulated", "the policy has no web URL", "redirect to",
	// the pages' own English
	"What we saw", "How to fix", "Must fix", "Should fix", "Checking your settings", "What is right",
}

// englishIn lists the englishOnGermanPages that text contains.
func englishIn(text string) []string {
	var out []string
	for _, e := range englishOnGermanPages {
		if strings.Contains(text, e) {
			out = append(out, e)
		}
	}
	return out
}

// withFrench puts a French catalog into the data directory's lang/
// folder, as an ISP adds a language.
func withFrench(t *testing.T, m *mailService, config string) string {
	t.Helper()
	dir := filepath.Join(filepath.Dir(m.config), "lang")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	fr := "\"lang.name\" = \"Français\"\n\"cards.heading\" = '<h2 id=\"use-h\">Les réglages à utiliser</h2>'\n"
	if err := os.WriteFile(filepath.Join(dir, "fr.toml"), []byte(fr), 0o644); err != nil {
		t.Fatal(err)
	}
	return config
}
