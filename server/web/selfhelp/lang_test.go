package selfhelp_test

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mailsetup/server/web"
	"mailsetup/server/web/webtest"
)

// TestPagesInGerman: Accept-Language picks German; the page says so
// (lang, Content-Language), varies by the request's language, and
// links to itself in English.
func TestPagesInGerman(t *testing.T) {
	app := helpApp(t, web.Options{}, false)
	for _, target := range []string{"/", "/help/john@example.com", "/help/john@example.com/thunderbird?incoming=pop3", "/check/john@example.com"} {
		w := webtest.Do(app, "GET", target, nil, "Accept-Language", "de-DE,de;q=0.9,en;q=0.5")
		body := w.Body.String()
		if w.Code != 200 {
			t.Fatalf("%s: %d %s", target, w.Code, body)
		}
		if got := w.Header().Get("Content-Language"); got != "de" {
			t.Errorf("%s: Content-Language %q", target, got)
		}
		vary := strings.Join(w.Header().Values("Vary"), ",")
		if !strings.Contains(vary, "Accept-Language") || !strings.Contains(vary, "Cookie") {
			t.Errorf("%s: Vary %q", target, vary)
		}
		u, _ := url.Parse(target)
		q := u.Query()
		q.Set("lang", "en")
		link := `<a href="` + strings.ReplaceAll(u.Path+"?"+q.Encode(), "&", "&amp;") + `" hreflang="en" lang="en">English</a>`
		for _, want := range []string{`<html lang="de"`, link} {
			if !strings.Contains(body, want) {
				t.Errorf("%s lacks %q", target, want)
			}
		}
		for _, english := range []string{"Your email address", "The settings to use", "What to get right", "Check my settings"} {
			if strings.Contains(body, english) {
				t.Errorf("%s: English left: %q", target, english)
			}
		}
	}
	w := webtest.Do(app, "GET", "/help/john@example.com/thunderbird?incoming=pop3", nil, "Accept-Language", "de")
	for _, want := range []string{"Thunderbird: john@example.com einrichten", "Diese Einstellungen verwenden", "Posteingangsserver (POP3)",
		"Kopie auf dem Server lassen", "Bestehende E-Mail-Adresse einrichten", "Nachrichten auf dem Server belassen", "Höchstens 7 Tage",
		"Benutzername", "Passwort, normal", "Ihr Benutzername ist Ihre vollständige E-Mail-Adresse"} {
		if !strings.Contains(w.Body.String(), want) {
			t.Errorf("German Thunderbird page lacks %q", want)
		}
	}
	// English stays the default, and the API stays English.
	if w := webtest.Do(app, "GET", "/help/john@example.com", nil, "Accept-Language", "fr, es;q=0.5"); !strings.Contains(w.Body.String(), `<html lang="en"`) ||
		w.Header().Get("Content-Language") != "en" {
		t.Errorf("unknown languages: %s", w.Header().Get("Content-Language"))
	}
	if w := webtest.Do(app, "GET", "/settings/john@nowhere.test", nil, "Accept-Language", "de"); !strings.Contains(w.Body.String(), "We have no mail settings") {
		t.Errorf("API: %s", w.Body)
	}
}

// TestLanguageSwitchRemembered: ?lang= switches and sets the cookie,
// which then wins over Accept-Language.
func TestLanguageSwitchRemembered(t *testing.T) {
	app := helpApp(t, web.Options{}, false)
	b := &helpBrowser{t: t, app: app, remote: "192.0.2.9:4000"}
	w := b.request("GET", "/?lang=de", nil)
	if !strings.Contains(w.Body.String(), `<html lang="de"`) {
		t.Fatalf("?lang=de: %s", w.Body)
	}
	if c := w.Result().Cookies(); len(c) == 0 || c[0].Name != "lang" || c[0].Value != "de" || !c[0].HttpOnly {
		t.Fatalf("cookie %v", c)
	}
	// The check result in German: the problems, their fixes, the right
	// things and the marked fields.
	bad := url.Values{"in_proto": {"imap"}, "in_host": {"imap.example.com"}, "in_port": {"993"}, "in_security": {"tls"}, "in_user": {"john"},
		"out_host": {"smtp.example.com"}, "out_port": {"465"}, "out_security": {"tls"}, "out_auth": {"no"}}
	body := b.check("john@example.com", bad).Body.String()
	for _, want := range []string{`<html lang="de"`, "2 Punkte zu beheben", "Der Benutzername ist nicht die vollständige E-Mail-Adresse",
		"Ihre vollständige E-Mail-Adresse john@example.com ein statt „john“", "Die Authentifizierung für den Postausgangsserver ist ausgeschaltet",
		"Muss behoben werden", "So beheben Sie es:", "Posteingangsserver: IMAP, imap.example.com, Port 993, SSL/TLS",
		`<strong>Falsch.</strong> Richtig: <span class="v">john@example.com</span>`, `<strong>Falsch.</strong> Richtig: <span class="v">Ja, angehakt</span>`} {
		if !strings.Contains(body, want) {
			t.Errorf("German result lacks %q", want)
		}
	}
	// What we saw: said from the findings' values, never the probe's
	// English lines.
	for _, want := range []string{"<summary>Was wir gesehen haben</summary>", "Eingetragen: „john“ (das Feld „Benutzername“ des Posteingangsservers); richtig: john@example.com",
		"Postausgang: „Authentifizierung erforderlich“ ist ausgeschaltet"} {
		if !strings.Contains(body, want) {
			t.Errorf("German evidence lacks %q", want)
		}
	}
	for _, english := range []string{`incoming username`, `the bare local part`, `"requires authentication" is off`} {
		if strings.Contains(body, english) {
			t.Errorf("English evidence %q on the German page", english)
		}
	}
	if t.Failed() {
		t.Log(body)
	}
	// A field typed wrong: its error in German, the field marked.
	w = b.check("john@example.com", url.Values{"in_host": {"https://imap.example.com"}, "in_port": {"99999"}})
	for _, want := range []string{"Bitte korrigieren Sie das Formular", "Posteingangsserver: „https://imap.example.com“ ist kein Servername",
		"Port des Posteingangsservers: „99999“ ist kein Port"} {
		if w.Code != 400 || !strings.Contains(w.Body.String(), want) {
			t.Errorf("form error: %d, no %q", w.Code, want)
		}
	}
	w = b.request("GET", "/help/john@example.com?lang=en", nil)
	if !strings.Contains(w.Body.String(), `<html lang="en"`) || !strings.Contains(w.Body.String(), "The settings to use") {
		t.Error("?lang=en did not switch back")
	}
}

// TestThirdLanguage: a catalog in the data directory's lang folder (the
// README's example) adds a language to every page, with no template
// changed; what it lacks is English.
func TestThirdLanguage(t *testing.T) {
	// The README's example catalog, as an ISP would save it.
	readme, err := os.ReadFile(filepath.Join("..", "..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, _ := strings.Cut(string(readme), "\n### Languages\n")
	_, fr, ok := strings.Cut(after, "```toml\n")
	fr, _, _ = strings.Cut(fr, "```\n")
	if !ok || !strings.Contains(fr, `"lang.name"`) {
		t.Fatalf("no example catalog in the README's Languages:\n%s", fr)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "fr.toml"), []byte(fr), 0o644); err != nil {
		t.Fatal(err)
	}
	app := helpApp(t, web.Options{LangDir: dir}, false)
	w := webtest.Do(app, "GET", "/", nil, "Accept-Language", "fr-FR,fr;q=0.9")
	body := w.Body.String()
	for _, want := range []string{`<html lang="fr"`, "<title>Configurer votre messagerie</title>", "Afficher mes réglages",
		"Your email address", `hreflang="en" lang="en">English</a>`, `hreflang="de" lang="de">Deutsch</a>`} {
		if !strings.Contains(body, want) {
			t.Errorf("French start page lacks %q", want)
		}
	}
	if w.Header().Get("Content-Language") != "fr" {
		t.Errorf("Content-Language %q", w.Header().Get("Content-Language"))
	}
	if body := webtest.Do(app, "GET", "/help/john@example.com?lang=fr", nil).Body.String(); !strings.Contains(body, "Les réglages à utiliser") {
		t.Error("?lang=fr: no French")
	}
	// A broken catalog stops the start with its name.
	if err := os.WriteFile(filepath.Join(dir, "es.toml"), []byte(`"no.such.id" = "x"`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := web.New(web.Options{Policies: webtest.Policies{}, LangDir: dir}); err == nil || !strings.Contains(err.Error(), "es.toml") {
		t.Errorf("broken catalog: %v", err)
	}
}
