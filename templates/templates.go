// Package templates holds the HTML pages and their one stylesheet,
// embedded in the binary, and parses the pages with html/template,
// which escapes every value for its context.
//
// Both page families, the customer pages (help_*.html, index.html, laid
// out by help_layout.html) and the staff console (staff_*.html, laid out
// by staff_layout.html), link the same stylesheet, mailsetup.css, at
// StylesheetPath; the web shell serves it there. Rules that differ
// between the families are scoped by the class of <body> ("help" or
// "staff"). The pages carry no inline style, so their Content Security
// Policy needs only style-src 'self'.
//
// One view-model convention serves both families. Every page has its
// own typed view model declared here, a struct named for the page with
// the suffix Page (HelpStartPage, HelpDomainPage, HelpClientPage,
// HelpCheckPage; StaffSignInPage, StaffHomePage, StaffAccountPage,
// StaffReportPage, StaffAuditPage), and one method of Set renders it,
// named for the page without the suffix (Set.HelpStart(w,
// HelpStartPage), Set.StaffHome(w, StaffHomePage), ...). Each view
// model embeds Frame, what every layout needs: the title, the language,
// the CSRF token on a page with a form, and the stylesheet's path; the
// staff pages embed it through StaffFrame, which adds who is signed in.
// The handlers (server/web/selfhelp, server/web/console) fill the view
// models, Title and CSRF included, and on a customer page its language
// (Frame.Lang) and the language switch (Frame.Langs); the render
// methods fill Stylesheet and run the pages of the frame's language.
// The customer pages' words are messages of package lang, which the
// templates say with the functions t (a message, given its data) and
// tn (with a plural count); the staff pages are English. No page takes
// an untyped value.
//
// Imports: the standard library (html/template, embed), templates/lang,
// and the types the pages show as they are: autoconfig, finding, probe
// and probe/clients; never the server (what the server saw comes as
// this package's own view types, staffview.go, which the console fills).
// The pages' data comes from server/web/selfhelp and server/web/console.
package templates

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"strings"
	"sync"

	"mailsetup/templates/lang"
)

//go:embed *.html
var files embed.FS

//go:embed mailsetup.css
var stylesheet []byte

// StylesheetPath is where the web serves the stylesheet: the name
// carries a hash of its content, so that browsers may keep it for good
// and a new version is fetched under its new name.
var StylesheetPath = func() string {
	sum := sha256.Sum256(stylesheet)
	return "/static/mailsetup-" + hex.EncodeToString(sum[:8]) + ".css"
}()

//go:embed copy.js
var script []byte

// ScriptPath is where the web serves the customer pages' one script,
// optional (copy buttons; the pages work without it), named by its
// content hash as the stylesheet is.
var ScriptPath = func() string {
	sum := sha256.Sum256(script)
	return "/static/mailsetup-" + hex.EncodeToString(sum[:8]) + ".js"
}()

// Script returns the script the customer pages load from ScriptPath.
// The caller must not modify it.
func Script() []byte { return script }

// Stylesheet returns the stylesheet the pages link at StylesheetPath.
// The caller must not modify it.
func Stylesheet() []byte { return stylesheet }

// Set is the parsed pages.
type Set struct {
	// t is the pages in English (the staff console's only language),
	// parsed at start; byLang the pages in each language of the
	// catalogs, by code, each parsed when a page is first served in it
	// (a language's parsed pages are about 0.1 MB of heap that an idle
	// server need not hold).
	t      *template.Template
	byLang map[string]*langPages
	langs  *lang.Catalogs
	// Brand, when set before the pages are served, brands every page.
	Brand *Brand
}

// langPages is the pages in one language, parsed on first use.
type langPages struct {
	l    *lang.Localizer
	once sync.Once
	t    *template.Template
	err  error
}

func (p *langPages) get() (*template.Template, error) {
	p.once.Do(func() { p.t, p.err = parsePages(p.l) })
	return p.t, p.err
}

// Parse parses every embedded page, with the embedded languages.
func Parse() (*Set, error) {
	c, err := lang.Load("")
	if err != nil {
		return nil, err
	}
	return ParseLang(c)
}

// ParseLang parses every embedded page for the default language and
// readies them for each other language of c, parsed on first use: the
// customer pages' words come from the catalogs (the functions t and tn
// of the templates; see package lang). The pages' text and functions are
// the same in every language, so what parses in one parses in all.
func ParseLang(c *lang.Catalogs) (*Set, error) {
	s := &Set{byLang: map[string]*langPages{}, langs: c}
	for _, tag := range c.Tags() {
		p := &langPages{l: c.For(tag)}
		if tag == lang.Default {
			if _, err := p.get(); err != nil {
				return nil, err
			}
			s.t = p.t
		}
		s.byLang[p.l.Code()] = p
	}
	return s, nil
}

// parsePages parses every embedded page with l's words.
func parsePages(l *lang.Localizer) (*template.Template, error) {
	t, err := template.New("").Funcs(template.FuncMap{
		"t":     l.T,
		"tn":    l.TN,
		"args":  args,
		"upper": upper,
	}).ParseFS(files, "*.html")
	if err != nil {
		return nil, fmt.Errorf("parsing templates: %w", err)
	}
	return t, nil
}

// Langs are the pages' languages.
func (s *Set) Langs() *lang.Catalogs { return s.langs }

// upper is a value in capitals ("imap" -> "IMAP"), of any string type.
func upper(v any) string { return strings.ToUpper(fmt.Sprint(v)) }

// args makes a message's named values from pairs: args "Days" 7 "Name" .X.
func args(kv ...any) (map[string]any, error) {
	if len(kv)%2 != 0 {
		return nil, fmt.Errorf("args: %d values, want name and value pairs", len(kv))
	}
	m := make(map[string]any, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		k, ok := kv[i].(string)
		if !ok {
			return nil, fmt.Errorf("args: name %v is not a string", kv[i])
		}
		m[k] = kv[i+1]
	}
	return m, nil
}
