package web_test

import (
	"net/http"
	"strings"
	"testing"

	"mailsetup/internal/testkit"
	"mailsetup/server/web"
	"mailsetup/server/web/console"
	"mailsetup/server/web/webtest"
	"mailsetup/templates"
)

// TestStylesheet: the pages' one stylesheet is served at its versioned
// path as CSS that browsers may keep; every other name is 404.
func TestStylesheet(t *testing.T) {
	app, err := web.New(web.Options{Policies: webtest.Policies{testkit.IMAPFirst()}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(templates.StylesheetPath, "/static/mailsetup-") || !strings.HasSuffix(templates.StylesheetPath, ".css") {
		t.Fatalf("StylesheetPath %q", templates.StylesheetPath)
	}
	w := webtest.Do(app, "GET", templates.StylesheetPath, nil)
	h := w.Header()
	if w.Code != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "text/css") ||
		!strings.Contains(h.Get("Cache-Control"), "max-age=31536000") || !strings.Contains(h.Get("Cache-Control"), "immutable") ||
		h.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("GET %s: %d %q %q %q", templates.StylesheetPath, w.Code, h.Get("Content-Type"), h.Get("Cache-Control"), h.Get("X-Content-Type-Options"))
	}
	body := w.Body.String()
	if body != string(templates.Stylesheet()) || !strings.Contains(body, "body.help{") || !strings.Contains(body, "body.staff{") {
		t.Errorf("the stylesheet served is not the embedded one for both page families:\n%.300s", body)
	}
	for _, p := range []string{"/static/mailsetup.css", "/static/mailsetup-0000000000000000.css", "/static/", "/static/x/" + templates.StylesheetPath[len("/static/"):]} {
		if w := webtest.Do(app, "GET", p, nil); w.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, w.Code)
		}
	}
}

// TestPagesLinkTheStylesheet: both page families (the customer pages
// and the staff console) link the one stylesheet, carry no inline
// style, and their Content Security Policy allows exactly that: style
// from this site, nothing inline.
func TestPagesLinkTheStylesheet(t *testing.T) {
	app, err := web.New(web.Options{Policies: webtest.Policies{testkit.IMAPFirst()},
		Staff: &console.Options{Users: map[string]string{"alice": "unused"}}})
	if err != nil {
		t.Fatal(err)
	}
	link := `<link rel="stylesheet" href="` + templates.StylesheetPath + `">`
	for _, c := range []struct{ path, body string }{
		{"/", `<body class="help">`},
		{"/help?address=nobody", `<body class="help">`},
		{"/help/john@example.com", `<body class="help">`},
		{"/help/john@example.com/thunderbird", `<body class="help">`},
		{"/check/john@example.com", `<body class="help">`},
		{"/staff/signin", `<body class="staff">`},
	} {
		w := webtest.Do(app, "GET", c.path, nil)
		out := w.Body.String()
		if strings.Count(out, link) != 1 || strings.Count(out, "<link") != 1 || !strings.Contains(out, c.body) {
			t.Errorf("GET %s: want one %s and %s:\n%s", c.path, link, c.body, out)
		}
		if strings.Contains(out, "<style") || strings.Contains(out, "style=") {
			t.Errorf("GET %s: inline style", c.path)
		}
		csp := w.Header().Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "style-src 'self'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("GET %s: Content-Security-Policy %q", c.path, csp)
		}
	}
}
