package templates

import (
	"html/template"
	"io"

	"mailsetup/templates/lang"
)

// Lang is the language of a page whose handler chose none (the staff
// console's).
const Lang = "en"

// Frame is what every page's layout needs. Each page's view model
// embeds it; the handler fills Title, on a page with a form CSRF, and
// on a customer page Lang and Langs; the render methods fill
// Stylesheet, Script and Brand.
type Frame struct {
	// Title is the page's <title> (the layout adds the site's name on
	// staff pages).
	Title string
	// Lang is the <html lang>: the customer page's language (its code,
	// "en", "de"), else Lang.
	Lang string
	// Langs, on a customer page, are the other languages, each a link
	// to this page in it: the language switch.
	Langs []LangLink
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

// LangLink is one language of the switch: its own name for itself and
// the page's URL in it.
type LangLink struct {
	Code, Name, URL string
}

// render completes p's frame and executes the template name with it,
// in the frame's language.
func (s *Set) render(w io.Writer, name string, p page) error {
	f := p.frame()
	if _, ok := s.byLang[f.Lang]; !ok {
		f.Lang = Lang
	}
	f.Stylesheet, f.Script, f.Brand = StylesheetPath, ScriptPath, s.Brand
	t, err := s.in(f.Lang)
	if err != nil {
		return err
	}
	return t.ExecuteTemplate(w, name, p)
}

// in returns the pages in the language code (English for "" or one
// not loaded).
func (s *Set) in(code string) (*template.Template, error) {
	if p, ok := s.byLang[code]; ok {
		return p.get()
	}
	return s.t, nil
}

// Localizer returns the messages of the language code (English for
// one not loaded), for the words the handlers and view models build.
func (s *Set) Localizer(code string) *lang.Localizer {
	if _, ok := s.byLang[code]; !ok {
		code = Lang
	}
	for _, t := range s.langs.Tags() {
		if t.String() == code {
			return s.langs.For(t)
		}
	}
	return s.langs.For(lang.Default)
}
