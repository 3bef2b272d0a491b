// Package templates holds the HTML pages, embedded in the binary, and
// parses them with html/template, which escapes every value for its
// context.
//
// Imports: the standard library only (html/template, embed); the pages'
// data comes from server/web/selfhelp and server/web/console.
package templates

import (
	"embed"
	"fmt"
	"html/template"
)

//go:embed *.html
var files embed.FS

// Set is the parsed pages.
type Set struct {
	t *template.Template
}

// Parse parses every embedded page.
func Parse() (*Set, error) {
	t, err := template.New("").ParseFS(files, "*.html")
	if err != nil {
		return nil, fmt.Errorf("parsing templates: %w", err)
	}
	return &Set{t: t}, nil
}
