package templates

import (
	"io"
)

// Lang is the language of every page.
const Lang = "en"

// Frame is what every page's layout needs. Each page's view model
// embeds it; the handler fills Title and, on a page with a form, CSRF;
// the render methods fill Lang and Stylesheet.
type Frame struct {
	// Title is the page's <title> (the layout adds the site's name on
	// staff pages).
	Title string
	// Lang is the <html lang> (Lang).
	Lang string
	// CSRF is the hidden token of the page's forms, on pages that have
	// one.
	CSRF string
	// Stylesheet is the path of the one stylesheet (StylesheetPath).
	Stylesheet string
	// Script is the path of the customer pages' optional script
	// (ScriptPath).
	Script string
	// Brand is the provider's branding (Set.Brand), on customer pages.
	Brand *Brand
}

func (f *Frame) frame() *Frame { return f }

// page is a view model: a struct of this package that embeds Frame.
type page interface{ frame() *Frame }

// render completes p's frame and executes the template name with it.
func (s *Set) render(w io.Writer, name string, p page) error {
	f := p.frame()
	f.Lang, f.Stylesheet, f.Script, f.Brand = Lang, StylesheetPath, ScriptPath, s.Brand
	return s.t.ExecuteTemplate(w, name, p)
}
