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
// Imports: the standard library only (html/template, embed); the pages'
// data comes from server/web/selfhelp and server/web/console.
package templates

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
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

// Stylesheet returns the stylesheet the pages link at StylesheetPath.
// The caller must not modify it.
func Stylesheet() []byte { return stylesheet }

// Set is the parsed pages.
type Set struct {
	t *template.Template
}

// Parse parses every embedded page.
func Parse() (*Set, error) {
	funcs := template.FuncMap{"stylesheet": func() string { return StylesheetPath }}
	t, err := template.New("").Funcs(funcs).ParseFS(files, "*.html")
	if err != nil {
		return nil, fmt.Errorf("parsing templates: %w", err)
	}
	return &Set{t: t}, nil
}
