package templates_test

import (
	"regexp"
	"strings"
	"testing"

	"mailsetup/autoconfig"
	"mailsetup/probe/clients"
	"mailsetup/templates"
)

// sample is an address's view model with hostile strings in every
// field a policy or a customer controls.
func sample() templates.HelpDomainPage {
	in := templates.HelpServer{Protocol: "IMAP", Host: "imap.example.com", Port: 993, Security: "SSL/TLS", TLS: true}
	pop := templates.HelpServer{Protocol: "POP3", Host: "pop.example.com", Port: 995, Security: "SSL/TLS", TLS: true}
	out := templates.HelpServer{Protocol: "SMTP", Host: "smtp.example.com", Port: 587, Security: "STARTTLS"}
	s := templates.HelpSettings{Address: "john@example.com", Domain: "example.com", DisplayName: "Example Mail & Co <Test>",
		Username: "john@example.com", Prefer: "IMAP", Incoming: []templates.HelpServer{in, pop}, Outgoing: []templates.HelpServer{out},
		In: in, Out: out, InTLS: in, OutTLS: out, IMAP: &in, POP3: &pop, Phone: in,
		POP:     templates.HelpPOP{Offered: true, LeaveOnServer: true, DeleteAfterDays: 2},
		HelpURL: "/help/john@example.com", CheckURL: "/check/john@example.com", JSONURL: "/settings/john@example.com",
		ProfileURL: "/apple/mail.mobileconfig?email=john%40example.com", ThunderbirdURL: "/mail/config-v1.1.xml?emailaddress=john%40example.com"}
	p := templates.HelpDomainPage{Frame: templates.Frame{Title: "Title <b>"}, HelpAddress: templates.HelpAddress{Settings: s}}
	for _, c := range templates.HelpClients {
		c.URL = s.HelpURL + "/" + c.ID
		p.Clients = append(p.Clients, c)
	}
	return p
}

func checkPage(t *testing.T, name, out string, want ...string) {
	t.Helper()
	link := `<link rel="stylesheet" href="` + templates.StylesheetPath + `">`
	for _, w := range append(want, `<html lang="en"`, `<meta name="viewport"`, "<h1>", link) {
		if !strings.Contains(out, w) {
			t.Errorf("%s lacks %q", name, w)
		}
	}
	// The one stylesheet and, on a customer page, the one script are the
	// only things a page may link.
	rest := strings.Replace(out, link, "", 1)
	rest = strings.Replace(rest, `<script src="`+templates.ScriptPath+`" defer></script>`, "", 1)
	for _, bad := range []string{"<Test>", "<script", "<b>", "http://", "https://", "<img", "<link", "<style"} {
		if strings.Contains(rest, bad) {
			t.Errorf("%s: unescaped text or an external asset: %q", name, bad)
		}
	}
}

// TestEveryHelpPageRendersEscaped executes every self-help page with a
// sample view-model.
func TestEveryHelpPageRendersEscaped(t *testing.T) {
	set, err := templates.Parse()
	if err != nil {
		t.Fatal(err)
	}
	p := sample()
	var b strings.Builder
	if err := set.HelpStart(&b, templates.HelpStartPage{Frame: templates.Frame{Title: "Start"}, Address: `"><script>x</script>`, Error: "bad <address>"}); err != nil {
		t.Fatal(err)
	}
	checkPage(t, "start", b.String(), `<label for="address">`, `type="email"`, `autocomplete="email"`, "bad &lt;address&gt;")

	b.Reset()
	if err := set.HelpDomain(&b, p); err != nil {
		t.Fatal(err)
	}
	checkPage(t, "domain", b.String(), "imap.example.com", "delete it from the server after 2 days", `href="/help/john@example.com/thunderbird"`)

	for _, c := range p.Clients {
		b.Reset()
		q := templates.HelpClientPage{Frame: p.Frame, HelpAddress: p.HelpAddress, Client: c}
		if err := set.HelpClient(&b, q); err != nil {
			t.Fatalf("%s: %v", c.ID, err)
		}
		checkPage(t, c.ID, b.String(), "john@example.com", "smtp.example.com", "Other mail programs")
	}
	q := templates.HelpClientPage{Frame: p.Frame, HelpAddress: p.HelpAddress, Client: templates.HelpClient{ID: "netscape"}}
	if err := set.HelpClient(&b, q); err == nil {
		t.Error("an unknown client rendered")
	}

	b.Reset()
	c := templates.HelpCheckPage{Frame: p.Frame, HelpAddress: p.HelpAddress}
	c.CSRF = "tok<en>"
	c.Check = templates.HelpCheck{PasswordAvailable: true, Done: true,
		Form:        templates.HelpCheckForm{InHost: `x"><script>`, InProto: "pop3", OutAuth: "no"},
		FieldErrors: []templates.HelpFieldError{{Field: "in_port", Message: "Incoming port: <bad>"}},
		Problems:    []templates.HelpFinding{{ID: "smtp.auth-disabled", Severity: "critical", Title: "Auth <off>", Fix: "Turn it on.", Evidence: []string{"seen <this>"}}},
		Right:       []string{"Incoming username: <john>"}}
	if err := set.HelpCheck(&b, c); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	checkPage(t, "check", out, `name="csrf" value="tok&lt;en&gt;"`, `<option value="pop3" selected>`, `<option value="no" selected>`,
		`aria-invalid="true"`, "Incoming port: &lt;bad&gt;", "Auth &lt;off&gt;", "seen &lt;this&gt;", "Incoming username: &lt;john&gt;",
		`type="password"`, `<label for="password">`)
	for _, id := range []string{"in_proto", "in_host", "in_port", "in_security", "in_user", "leave", "delete_after", "out_host", "out_port", "out_security", "out_auth", "out_user", "password"} {
		if !strings.Contains(out, `<label for="`+id+`">`) || !strings.Contains(out, `id="`+id+`"`) {
			t.Errorf("check form: field %s has no label", id)
		}
	}
}

// TestStaffPageTakesTheFrame: a console page's layout shows its frame
// (title, language, stylesheet, the session's token) and who is signed
// in.
func TestStaffPageTakesTheFrame(t *testing.T) {
	set, err := templates.Parse()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	p := templates.StaffAuditPage{StaffFrame: templates.StaffFrame{Frame: templates.Frame{Title: "Audit <log>", CSRF: "tok<en>"}, User: "alice"}}
	if err := set.StaffAudit(&b, p); err != nil {
		t.Fatal(err)
	}
	checkPage(t, "staff audit", b.String(), "<title>Audit &lt;log&gt; · mailsetup staff</title>", `<body class="staff">`,
		`name="csrf" value="tok&lt;en&gt;"`, `<span class="muted">alice</span>`)
}

// TestCheckPageSaysWhoseFault: a server fault tells the customer that
// nothing on their side is wrong; a settings problem that they can fix it
// in their mail program. The staff view says whose fault each finding is.
func TestCheckPageSaysWhoseFault(t *testing.T) {
	set, err := templates.Parse()
	if err != nil {
		t.Fatal(err)
	}
	p := sample()
	c := templates.HelpCheckPage{Frame: p.Frame, HelpAddress: p.HelpAddress}
	c.Check = templates.HelpCheck{Done: true, Problems: []templates.HelpFinding{
		{ID: "server.starttls-missing", Severity: "critical", Title: "No STARTTLS", Fix: "Nothing on your side is wrong.", Server: true},
		{ID: "smtp.auth-disabled", Severity: "critical", Title: "Auth off", Fix: "Turn it on."},
	}}
	var b strings.Builder
	if err := set.HelpCheck(&b, c); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	server, settings := strings.Index(out, "Not your settings:"), strings.Index(out, "In your settings:")
	if server < 0 || settings < 0 || server > strings.Index(out, "Auth off") || settings < strings.Index(out, "Auth off") {
		t.Errorf("whose fault is not shown with each finding:\n%s", out)
	}
}

// TestClientsViewInEachLanguage renders "What each mail program would
// set up" from a report's structured fields: the sources, the reasons
// and the settings in the page's words, in English and in German.
func TestClientsViewInEachLanguage(t *testing.T) {
	set, err := templates.Parse()
	if err != nil {
		t.Fatal(err)
	}
	in := autoconfig.Endpoint{Protocol: autoconfig.IMAP, Host: "imap.example.com", Port: 993, Security: autoconfig.TLS}
	out := autoconfig.Endpoint{Protocol: autoconfig.SMTP, Host: "smtp.example.com", Port: 465, Security: autoconfig.TLS}
	st := &clients.Settings{Incoming: &in, Outgoing: &out, Username: "john@example.com"}
	rep := &clients.ClientsReport{Address: "john@example.com", Domain: "example.com", Clients: []clients.ClientView{
		{ID: clients.ClientThunderbird, Client: "Thunderbird desktop", Checked: "Thunderbird 140, December 2026", CheckedOn: "2026-12", Settings: st, Sources: []clients.Source{
			{Name: "autoconfig host, HTTPS", Kind: clients.KindAutoconfigHTTPS, Where: "https://autoconfig.example.com/x", Outcome: clients.SourceUsed, Settings: st},
			{Name: "autoconfig host, HTTP", Kind: clients.KindAutoconfigHTTP, Where: "http://autoconfig.example.com/x", Outcome: clients.SourceSkipped, Reason: clients.ReasonHTTPStatus, Value: "404", Detail: "HTTP error: 404 Not Found"},
			{Name: "Thunderbird's ISP database", Kind: clients.KindISPDB, Where: "https://ispdb", Outcome: clients.SourceNotChecked, Reason: clients.ReasonThirdParty, Detail: "a third party's service"},
		}},
		{ID: clients.ClientMPOP, Client: "mpop --configure", CheckedOn: "2026-12", Sources: []clients.Source{
			{Name: "_pop3s._tcp SRV", Kind: clients.KindSRV, Label: "_pop3s._tcp", Where: "_pop3s._tcp.example.com", Outcome: clients.SourceSkipped, Reason: clients.ReasonNoRecord, Detail: "no record"},
		}},
		{ID: clients.ClientNewOutlook, Client: "new Outlook and Outlook mobile", CheckedOn: "2026-12", Manual: true, Expected: st},
	}}
	page := func(code string) string {
		var b strings.Builder
		p := templates.HelpCheckPage{Frame: templates.Frame{Title: "Check", Lang: code}, HelpAddress: sample().HelpAddress}
		p.Check.Clients = rep
		if err := set.HelpCheck(&b, p); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	for code, want := range map[string][]string{
		"en": {"<h3>Thunderbird desktop</h3>", "<strong>used</strong>: autoconfig host, HTTPS", "(HTTP error: 404 Not Found)", "(a third party&#39;s service)",
			"_pop3s._tcp SRV", "(no record)", `Sets up: <span class="v">incoming IMAP imap.example.com port 993 SSL/TLS, outgoing SMTP smtp.example.com port 465 SSL/TLS, username john@example.com</span>`,
			"Cannot be set up from our records: type by hand", "Lookup order as of Thunderbird 140, December 2026."},
		"de": {"<h3>Thunderbird auf dem Computer</h3>", "<strong>verwendet</strong>: Autoconfig-Server, HTTPS", "(HTTP-Fehler 404)", "(ein Dienst Dritter, nicht gefragt)",
			"SRV-Eintrag _pop3s._tcp", "(kein Eintrag)", `Richtet ein: <span class="v">Posteingang IMAP imap.example.com Port 993 SSL/TLS, Postausgang SMTP smtp.example.com Port 465 SSL/TLS, Benutzername john@example.com</span>`,
			"<h3>Neues Outlook und Outlook-Apps für Handys</h3>", "Suchreihenfolge mit Stand 2026-12."},
	} {
		got := page(code)
		i := strings.Index(got, `id="clients"`)
		if i < 0 {
			t.Fatalf("%s: no clients section", code)
		}
		view := got[i:]
		for _, w := range want {
			if !strings.Contains(view, w) {
				t.Errorf("%s: no %q in\n%s", code, w, view)
			}
		}
		if code == "de" {
			text := regexp.MustCompile(`<[^>]*>`).ReplaceAllString(view, "") // the words, not the attributes
			for _, english := range []string{"used", "skipped", "not checked", "Sets up", "incoming", "third party", "no record", "Lookup order", "Thunderbird desktop", "new Outlook and"} {
				if strings.Contains(text, english) {
					t.Errorf("de: English %q in the clients view", english)
				}
			}
		}
	}
}
