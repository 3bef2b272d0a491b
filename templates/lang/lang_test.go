package lang_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"golang.org/x/text/language"

	"mailsetup/finding"
	"mailsetup/probe/clients"
	"mailsetup/templates"
	"mailsetup/templates/lang"
)

func load(t *testing.T, dir string) *lang.Catalogs {
	t.Helper()
	c, err := lang.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestChoose: the parameter, then the cookie, then Accept-Language
// with its q-values; English when nothing matches.
func TestChoose(t *testing.T) {
	c := load(t, "")
	for _, tc := range []struct {
		param, cookie, accept string
		want, set             string
	}{
		{accept: "", want: "en"},
		{accept: "de", want: "de"},
		{accept: "de-DE,de;q=0.9,en;q=0.8", want: "de"},
		{accept: "de-AT", want: "de"},
		{accept: "de-CH, fr;q=0.5", want: "de"},
		{accept: "en-US,en;q=0.9,de;q=0.8", want: "en"},
		{accept: "en;q=0.4, de;q=0.9", want: "de"},
		{accept: "fr-FR, fr;q=0.9, de;q=0.3", want: "de"},
		{accept: "fr, es", want: "en"},
		{accept: "*", want: "en"},
		{accept: "de;q=0, en", want: "en"},
		{accept: "garbage;;;q=x", want: "en"},
		{accept: strings.Repeat("de-DE,", 2000), want: "en"},
		{cookie: "de", accept: "en", want: "de"},
		{cookie: "xx", accept: "de", want: "de"},
		{param: "en", cookie: "de", accept: "de", want: "en", set: "en"},
		{param: "DE", accept: "en", want: "de", set: "de"},
		{param: "fr", accept: "de", want: "de"},
		{param: "<script>", accept: "", want: "en"},
	} {
		got, set := c.Choose(tc.param, tc.cookie, tc.accept)
		if got.String() != tc.want || set != tc.set {
			t.Errorf("Choose(%q, %q, %.40q) = %s, %q; want %s, %q", tc.param, tc.cookie, tc.accept, got, set, tc.want, tc.set)
		}
	}
}

// TestEveryMessageTranslated fails when a message of the English
// catalog is missing in German, or a German one names an id English
// does not have (a typo), or an English one is used nowhere.
func TestEveryMessageTranslated(t *testing.T) {
	c := load(t, "")
	de := language.German
	for _, id := range c.IDs() {
		if !c.Has(de, id) {
			t.Errorf("%s: in en.toml, not in de.toml", id)
		}
	}
	// Every finding's title and fix, and each settings field's name.
	for _, e := range finding.Catalog {
		for _, part := range []string{"title", "fix"} {
			if !c.Has(de, "finding."+e.ID+"."+part) {
				t.Errorf("finding %s: no German %s (finding.%s.%s)", e.ID, part, e.ID, part)
			}
		}
	}
	for _, f := range lang.FieldIDs() {
		if !c.Has(de, "finding.field."+f) {
			t.Errorf("finding.field.%s: no German name", f)
		}
	}
	if !c.Has(de, "finding.evidence") {
		t.Error("finding.evidence: no German words for what was seen")
	}
	// German's own finding ids name findings that exist.
	b, err := os.ReadFile("de.toml")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`(?m)^"finding\.([a-z0-9-]+\.[a-z0-9-]+)\.(title|fix|fix-many|evidence)"`).FindAllStringSubmatch(string(b), -1) {
		if _, ok := finding.Lookup(m[1]); !ok && !strings.HasPrefix(m[1], "field.") {
			t.Errorf("de.toml: finding %s is not in the finding catalog", m[1])
		}
	}

	// Used: an id is quoted in a page or in the Go code of the pages;
	// a dialog's label (dlg.x.y) as "x.y" in dialogs.go; the ids built
	// from a client's id or a security are listed here.
	var src strings.Builder
	for _, glob := range []string{"../*.html", "../*.go", "../../server/web/selfhelp/*.go", "*.go"} {
		files, _ := filepath.Glob(glob)
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			src.Write(b)
		}
	}
	built := []string{"security.tls", "security.starttls", "security.none", "lang.name"}
	for _, cl := range templates.HelpClients {
		built = append(built, "title.client."+cl.ID, "client."+cl.ID+".name")
		if cl.NoPOPExpiry != "" {
			built = append(built, "client."+cl.ID+".nopop")
		}
	}
	// The clients view's words, from probe/clients' structured fields:
	// every kind, reason and client family has its message in English
	// and in German.
	var clientIDs []string
	for _, k := range clients.SourceKinds {
		clientIDs = append(clientIDs, "clients.source."+k)
	}
	for _, r := range clients.SkipReasons {
		clientIDs = append(clientIDs, "clients.reason."+r)
	}
	for _, id := range clients.ClientIDs {
		clientIDs = append(clientIDs, "clients.name."+id)
	}
	for _, id := range clientIDs {
		if !c.Has(language.English, id) || !c.Has(de, id) {
			t.Errorf("%s: the clients view has no English or no German words for it", id)
		}
	}
	built = append(built, clientIDs...)
	for _, k := range []string{"imap", "pop"} {
		built = append(built, "dlg.ol.title-"+k, "dlg.ol."+k+"-user", "dlg.ol."+k+"-password", "dlg.ol."+k+"-server")
	}
	all := src.String()
	for _, id := range c.IDs() {
		used := strings.Contains(all, `"`+id+`"`) || slices.Contains(built, id) ||
			strings.HasPrefix(id, "dlg.") && strings.Contains(all, `"`+strings.TrimPrefix(id, "dlg.")+`"`)
		if !used {
			t.Errorf("%s: in en.toml but used nowhere", id)
		}
	}
}

// TestFindingsInGerman: a fix is said with its values, the field in
// German; merged findings are one sentence naming each server.
func TestFindingsInGerman(t *testing.T) {
	l := load(t, "").For(language.German)
	f := finding.New("username.not-full-address", finding.Vars{"field": finding.FieldInUser, "address": "kim@example.com", "value": "kim"})
	title, fix := l.Finding(f)
	if title != "Der Benutzername ist nicht die vollständige E-Mail-Adresse" {
		t.Errorf("title %q", title)
	}
	if want := `Tragen Sie in das Feld „Benutzername“ des Posteingangsservers Ihre vollständige E-Mail-Adresse kim@example.com ein statt „kim“.`; fix != want {
		t.Errorf("fix\n%q, want\n%q", fix, want)
	}
	merged := finding.Merge([]finding.Finding{
		finding.New("server.unreachable", finding.Vars{"value": "imap.example.com:993"}),
		finding.New("server.unreachable", finding.Vars{"value": "smtp.example.com:465"}),
		finding.New("server.unreachable", finding.Vars{"value": "pop.example.com:995"}),
	})
	_, fix = l.Finding(merged[0])
	if !strings.Contains(fix, "Die Server imap.example.com:993, smtp.example.com:465 und pop.example.com:995 antworten nicht") {
		t.Errorf("merged fix %q", fix)
	}
	// A fix changed after New is not the catalog's sentence: it stays.
	g := finding.New("server.wrong-port", finding.Vars{"field": finding.FieldInPort, "value": "1", "expected": "993"})
	g.Fix = "something else"
	if _, fix := l.Finding(g); fix != "something else" {
		t.Errorf("changed fix became %q", fix)
	}
	// English is the finding's own wording.
	if title, fix := load(t, "").For(lang.Default).Finding(f); title != f.Title || fix != f.Fix {
		t.Errorf("English: %q %q", title, fix)
	}
}

// TestAddLanguage: a catalog file in the folder adds a language; what
// it lacks is English; a typo'd id or a broken message is refused with
// the file's name.
func TestAddLanguage(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("fr.toml", `"lang.name" = "Français"
"start.button" = '''<button type="submit">Afficher mes réglages</button>'''
`)
	c := load(t, dir)
	if got := c.Tags(); len(got) != 3 || got[0] != language.English {
		t.Fatalf("tags %v", got)
	}
	if tag, _ := c.Choose("", "", "fr-CA, en;q=0.5"); tag.String() != "fr" {
		t.Errorf("fr-CA chose %s", tag)
	}
	fr := c.For(language.French)
	if got := fr.S("lang.name", nil); got != "Français" {
		t.Errorf("lang.name %q", got)
	}
	if got := fr.S("title.start", nil); got != "Set up your email" {
		t.Errorf("a missing message is not English: %q", got)
	}

	write("es.toml", `"start.buton" = "typo"`)
	if _, err := lang.Load(dir); err == nil || !strings.Contains(err.Error(), "es.toml") || !strings.Contains(err.Error(), "start.buton") {
		t.Errorf("typo: %v", err)
	}
	os.Remove(filepath.Join(dir, "es.toml"))
	write("it.toml", `"start.button" = "{{.Nope"`)
	if _, err := lang.Load(dir); err == nil || !strings.Contains(err.Error(), "it.toml") {
		t.Errorf("broken template: %v", err)
	}
	os.Remove(filepath.Join(dir, "it.toml"))
	write("notalanguage.toml", `"start.button" = "x"`)
	if _, err := lang.Load(dir); err == nil || !strings.Contains(err.Error(), "notalanguage.toml") {
		t.Errorf("bad name: %v", err)
	}
}

// TestMessagesEscapeValues: a value in a page's message is escaped; the
// message's own markup is kept.
func TestMessagesEscapeValues(t *testing.T) {
	l := load(t, "").For(language.German)
	got, err := l.T("domain.intro", map[string]string{"DisplayName": "<b>X</b>", "Address": `a"b@example.com`})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(got), "<b>") || !strings.Contains(string(got), `<span class="v">a&#34;b@example.com</span>`) {
		t.Errorf("not escaped: %s", got)
	}
}

// TestBrokenTranslationFallsBack: an ISP's message that names a field
// the page does not have is said in English, not a broken page; a
// catalog without lang.name is named by its tag.
func TestBrokenTranslationFallsBack(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "nl.toml"), []byte(`"domain.choose" = "<h2>Kies {{.Nope}}</h2>"
"title.domain" = "Instellingen voor {{.Nope}}"
`), 0o644); err != nil {
		t.Fatal(err)
	}
	nl := load(t, dir).For(language.Dutch)
	if got, err := nl.T("domain.choose", struct{ Address string }{"a@b"}); err != nil || got != "<h2>Choose your mail program</h2>" {
		t.Errorf("T: %q %v", got, err)
	}
	if got := nl.S("title.domain", "a@b"); got != "Mail settings for a@b" {
		t.Errorf("S: %q", got)
	}
	if got := nl.Name(); got != "nl" {
		t.Errorf("name %q", got)
	}
	if got := load(t, "").For(language.German).Name(); got != "Deutsch" {
		t.Errorf("German's name %q", got)
	}
}

// TestFieldErrorsInGerman: every kind of a check form's field error and
// every field's name has its German words.
func TestFieldErrorsInGerman(t *testing.T) {
	c := load(t, "")
	de := language.German
	for _, k := range templates.FieldErrKinds {
		if !c.Has(de, "form.err."+k) {
			t.Errorf("form.err.%s: no German", k)
		}
	}
	for _, f := range templates.CheckFields {
		if !c.Has(de, "form.label."+f) {
			t.Errorf("form.label.%s: no German", f)
		}
	}
	got := c.For(de).FieldError("in_host", templates.FieldErrHost, "http://x", 0, "english")
	if got != "Posteingangsserver: „http://x“ ist kein Servername; tragen Sie nur den Namen ein, etwa mail.beispiel.de, ohne http:// und ohne Port." {
		t.Errorf("host error %q", got)
	}
	if got := c.For(lang.Default).FieldError("in_host", templates.FieldErrHost, "x", 0, "english"); got != "english" {
		t.Errorf("English: %q", got)
	}
}

// TestEvidenceAndDurationsInGerman: what was seen is said from the
// finding's values, never the probe's English lines; a duration is said
// in German inside the fix; English keeps the probe's own lines.
func TestEvidenceAndDurationsInGerman(t *testing.T) {
	c := load(t, "")
	de := c.For(language.German)
	delay := finding.New("pop3.login-delay", finding.Vars{"value": "POP3 [LOGIN-DELAY] wait", "expected": "15 minutes", "minutes": "15"}, "POP3 [LOGIN-DELAY] wait")
	_, fix := de.Finding(delay)
	if !strings.Contains(fix, "höchstens alle 15 Minuten") || strings.Contains(fix, "minutes") {
		t.Errorf("login delay fix %q", fix)
	}
	if ev := de.Evidence(delay, nil); len(ev) != 1 || ev[0] != "Der Server erlaubt eine POP3-Anmeldung höchstens alle 15 Minuten" {
		t.Errorf("login delay evidence %q", ev)
	}
	unknown := finding.New("pop3.login-delay", finding.Vars{"value": "POP3 [LOGIN-DELAY]", "expected": "a few minutes (the server does not say how long)"})
	if _, fix := de.Finding(unknown); strings.Contains(fix, "minutes") || !strings.Contains(fix, "seltener") {
		t.Errorf("unknown delay fix %q", fix)
	}
	forever := finding.New("pop3.leave-forever", finding.Vars{"value": "120 messages, oldest 40 days", "expected": "7", "messages": "120", "oldest": "40"}, "mailbox holds 120 messages")
	if ev := de.Evidence(forever, nil); len(ev) != 1 || !strings.Contains(ev[0], "120 E-Mails, die älteste seit 40 Tagen") || strings.Contains(ev[0], "messages") {
		t.Errorf("leave forever evidence %q", ev)
	}
	// A finding without its own words: the value and what is right.
	mx := finding.New("dns.mx-missing", finding.Vars{"value": "example.com.", "expected": "10 mx.example.com."}, "example.com. MX: got nothing, want 10 mx.example.com.")
	if ev := de.Evidence(mx, nil); len(ev) != 1 || ev[0] != "Betroffen: example.com.; richtig: 10 mx.example.com." {
		t.Errorf("generic evidence %q", ev)
	}
	// words: a value said in the page's words (a mail program's name).
	byHand := finding.New("clients.type-by-hand", finding.Vars{"value": "new Outlook and Outlook mobile", "expected": "incoming IMAP x"})
	words := func(s string) string {
		return map[string]string{"new Outlook and Outlook mobile": "Das neue Outlook", "incoming IMAP x": "Posteingang IMAP x"}[s]
	}
	if _, fix := de.FindingIn(byHand, words); !strings.Contains(fix, "Das neue Outlook") || strings.Contains(fix, "new Outlook and") || strings.Contains(fix, "incoming") {
		t.Errorf("mapped fix %q", fix)
	}
	if ev := c.For(lang.Default).Evidence(delay, nil); len(ev) != 1 || ev[0] != "POP3 [LOGIN-DELAY] wait" {
		t.Errorf("English evidence %q", ev)
	}
}
