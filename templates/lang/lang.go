// Package lang holds the customer pages' languages: the message
// catalogs (one TOML file per language, go-i18n's format), the choice
// of a language for a request (?lang=, the cookie it sets, then the
// Accept-Language header matched with its q-values), and the lookup of
// one message in one language.
//
// English (en.toml) and German (de.toml) are embedded. An ISP adds a
// language, or changes a message, with a file in the data directory's
// lang/ folder named for the language (fr.toml, de-AT.toml): its
// messages are laid over the embedded ones of that language, and a
// message it lacks falls back to English. No template names a
// language.
//
// Messages are Go templates. The pages execute them as html/template
// fragments (T: a value is escaped for where it stands; the message's
// own markup, <strong> and the like, is kept); the Go code of the pages
// takes plain-text messages (S), which the page escapes when it shows
// them. A message's data is what the page passes: the settings
// (.Address, .In.Host, .POP.DeleteAfterDays, ...) or named values.
//
// Imports: go-i18n, x/text/language, the standard library, and finding
// (the findings' sentences, translated by id).
package lang

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	texttemplate "text/template"

	"github.com/BurntSushi/toml"
	"github.com/nicksnyder/go-i18n/v2/i18n"
	i18ntemplate "github.com/nicksnyder/go-i18n/v2/i18n/template"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

//go:embed en.toml de.toml
var builtin embed.FS

// Default is the language of a request that asks for none we have,
// and of every message a catalog lacks.
var Default = language.English

// Param is the query parameter that switches the language; Cookie the
// cookie that remembers the choice.
const (
	Param  = "lang"
	Cookie = "lang"
)

// maxCatalog bounds one catalog file.
const maxCatalog = 1 << 20

// Catalogs are the loaded languages.
type Catalogs struct {
	bundle  *i18n.Bundle
	tags    []language.Tag
	matcher language.Matcher
	// ids are the English catalog's message ids: a catalog that names
	// another id has a typo.
	ids map[string]bool
	// html and text parse messages for the pages and for Go code; each
	// caches what it parsed (go-i18n's own cache would keep one parse
	// per message for both).
	html, text *parser
	local      sync.Map // language.Tag -> *Localizer
}

// Load reads the embedded catalogs and then every *.toml in dir (none
// when dir is "" or does not exist). A file's name is its language tag.
func Load(dir string) (*Catalogs, error) {
	c := &Catalogs{bundle: i18n.NewBundle(Default), ids: map[string]bool{},
		html: &parser{html: true}, text: &parser{}}
	c.bundle.RegisterUnmarshalFunc("toml", toml.Unmarshal)
	for _, name := range []string{"en.toml", "de.toml"} {
		b, err := builtin.ReadFile(name)
		if err != nil {
			return nil, err
		}
		if err := c.add(name, b, name == "en.toml"); err != nil {
			return nil, err
		}
	}
	if dir != "" {
		names, err := filepath.Glob(filepath.Join(dir, "*.toml"))
		if err != nil {
			return nil, err
		}
		slices.Sort(names)
		for _, path := range names {
			b, err := readBounded(path)
			if err != nil {
				return nil, fmt.Errorf("language catalog %s: %w", path, err)
			}
			if err := c.add(path, b, false); err != nil {
				return nil, err
			}
		}
	}
	c.tags = c.bundle.LanguageTags()
	// English first: the matcher's fallback is its first tag.
	slices.SortStableFunc(c.tags, func(a, b language.Tag) int {
		switch {
		case a == Default:
			return -1
		case b == Default:
			return 1
		}
		return strings.Compare(a.String(), b.String())
	})
	c.matcher = language.NewMatcher(c.tags)
	return c, nil
}

// readBounded reads a catalog file of at most maxCatalog bytes.
func readBounded(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Size() > maxCatalog {
		return nil, fmt.Errorf("%d bytes, more than %d", st.Size(), maxCatalog)
	}
	return os.ReadFile(path)
}

// add parses one catalog file into the bundle, checking its ids and
// that every message parses as a page's template; defines: the file is
// the embedded English one, which defines the ids.
func (c *Catalogs) add(path string, b []byte, defines bool) error {
	mf, err := c.bundle.ParseMessageFileBytes(b, path)
	if err != nil {
		return fmt.Errorf("language catalog %s: %w", path, err)
	}
	if mf.Tag == language.Und {
		return fmt.Errorf("language catalog %s: the file name is not a language tag (like fr.toml or de-AT.toml)", path)
	}
	var errs []error
	for _, m := range mf.Messages {
		if defines {
			c.ids[m.ID] = true
		} else if !c.ids[m.ID] && !ownEnglish(m.ID) {
			errs = append(errs, fmt.Errorf("language catalog %s: %q is not a message of the English catalog", path, m.ID))
			continue
		}
		for _, src := range []string{m.Zero, m.One, m.Two, m.Few, m.Many, m.Other} {
			if err := c.html.check(src, m.LeftDelim, m.RightDelim); src != "" && err != nil {
				errs = append(errs, fmt.Errorf("language catalog %s: message %q: %w", path, m.ID, err))
			}
		}
	}
	return errors.Join(errs...)
}

// ownEnglish reports whether id is a message whose English is its
// code's own wording (the findings, the check form's field errors), so
// that only the other languages' catalogs have it.
func ownEnglish(id string) bool {
	for _, p := range []string{"finding.", "form.err.", "form.label."} {
		if strings.HasPrefix(id, p) {
			return true
		}
	}
	return false
}

// Tags are the languages, English first.
func (c *Catalogs) Tags() []language.Tag { return slices.Clone(c.tags) }

// IDs are the English catalog's message ids.
func (c *Catalogs) IDs() []string {
	var out []string
	for id := range c.ids {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// Has reports whether the language tag has its own message id (not
// the English fallback).
func (c *Catalogs) Has(tag language.Tag, id string) bool {
	_, got, err := i18n.NewLocalizer(c.bundle, tag.String()).LocalizeWithTag(&i18n.LocalizeConfig{MessageID: id, TemplateParser: i18ntemplate.IdentityParser{}})
	return err == nil && got == tag
}

// Choose picks the language of a request: the ?lang= parameter when it
// names one of ours, else the cookie's, else the best match of the
// Accept-Language header (q-values and all), else English. set is the
// language to remember in the cookie ("" when the parameter did not
// switch it).
func (c *Catalogs) Choose(param, cookie, acceptLanguage string) (tag language.Tag, set string) {
	if t, ok := c.exact(param); ok {
		return t, t.String()
	}
	if t, ok := c.exact(cookie); ok {
		return t, ""
	}
	if len(acceptLanguage) > 1024 {
		acceptLanguage = acceptLanguage[:1024]
	}
	prefs, _, err := language.ParseAcceptLanguage(acceptLanguage)
	if err != nil || len(prefs) == 0 {
		return Default, ""
	}
	_, i, conf := c.matcher.Match(prefs...)
	if conf == language.No {
		return Default, ""
	}
	return c.tags[i], ""
}

// exact finds the language s names among ours (case does not matter).
func (c *Catalogs) exact(s string) (language.Tag, bool) {
	if s == "" || len(s) > 35 {
		return language.Und, false
	}
	t, err := language.Parse(s)
	if err != nil {
		return language.Und, false
	}
	for _, have := range c.tags {
		if have == t {
			return have, true
		}
	}
	return language.Und, false
}

// For returns the messages of one of the Tags (English for any other).
func (c *Catalogs) For(tag language.Tag) *Localizer {
	if l, ok := c.local.Load(tag); ok {
		return l.(*Localizer)
	}
	if !slices.Contains(c.tags, tag) {
		tag = Default
	}
	l, _ := c.local.LoadOrStore(tag, &Localizer{c: c, tag: tag, loc: i18n.NewLocalizer(c.bundle, tag.String())})
	return l.(*Localizer)
}

// Localizer says messages in one language.
type Localizer struct {
	c   *Catalogs
	tag language.Tag
	loc *i18n.Localizer
}

// Tag is the language.
func (l *Localizer) Tag() language.Tag { return l.tag }

// Code is the language's tag as <html lang> and Content-Language
// write it ("en", "de").
func (l *Localizer) Code() string { return l.tag.String() }

// localize looks a message up, falling back to English where this
// language lacks it; count, when not nil, picks the plural form.
func (l *Localizer) localize(p *parser, id string, data any, count any) (string, error) {
	s, err := l.loc.Localize(&i18n.LocalizeConfig{MessageID: id, TemplateData: data, PluralCount: count, TemplateParser: p})
	var nf *i18n.MessageNotFoundErr
	if errors.As(err, &nf) && s != "" {
		err = nil // the English fallback
	}
	if err != nil {
		return "", fmt.Errorf("message %q in %s: %w", id, l.tag, err)
	}
	return s, nil
}

// T is a message as HTML: its markup kept, the data's values escaped.
// A translation that fails to run (an ISP's message naming a field the
// page does not have) is said in English instead.
func (l *Localizer) T(id string, data any) (htmltemplate.HTML, error) {
	s, err := l.localize(l.c.html, id, data, nil)
	if err != nil && l.tag != Default {
		return l.c.For(Default).T(id, data)
	}
	return htmltemplate.HTML(s), err
}

// TN is T with the plural form for count.
func (l *Localizer) TN(id string, count int, data any) (htmltemplate.HTML, error) {
	s, err := l.localize(l.c.html, id, withCount(data, count), count)
	if err != nil && l.tag != Default {
		return l.c.For(Default).TN(id, count, data)
	}
	return htmltemplate.HTML(s), err
}

// Name is the language's name for itself (its lang.name), or its tag
// when its catalog does not say.
func (l *Localizer) Name() string {
	if n, err := l.own(l.c.text, "lang.name", nil); err == nil {
		return n
	}
	return l.Code()
}

// S is a plain-text message, for Go code (the page escapes it). A
// translation that fails to run is said in English; a message that is
// not there at all says its id, so that a page never fails for a
// word (the catalog tests catch it).
func (l *Localizer) S(id string, data any) string {
	s, err := l.localize(l.c.text, id, data, nil)
	switch {
	case err != nil && l.tag != Default:
		return l.c.For(Default).S(id, data)
	case err != nil:
		return id
	}
	return s
}

// SN is S with the plural form for count.
func (l *Localizer) SN(id string, count int, data any) string {
	s, err := l.localize(l.c.text, id, withCount(data, count), count)
	switch {
	case err != nil && l.tag != Default:
		return l.c.For(Default).SN(id, count, data)
	case err != nil:
		return id
	}
	return s
}

// withCount adds .Count to named values (a map); other data is kept.
func withCount(data any, count int) any {
	switch d := data.(type) {
	case nil:
		return map[string]any{"Count": count}
	case map[string]any:
		m := make(map[string]any, len(d)+1)
		for k, v := range d {
			m[k] = v
		}
		m["Count"] = count
		return m
	}
	return data
}

// parser is a go-i18n template parser that executes messages as
// html/template fragments (html) or text/template, caching each parse.
type parser struct {
	html  bool
	cache sync.Map // parseKey -> *parsed
}

// parseKey is a message's source and delimiters.
type parseKey struct{ left, right, src string }

type parsed struct {
	h *htmltemplate.Template
	t *texttemplate.Template
}

// Cacheable is false: go-i18n's cache is one per message for every
// parser; this parser caches by itself.
func (p *parser) Cacheable() bool { return false }

// Parse parses src (go-i18n's Parser).
func (p *parser) Parse(src, left, right string) (i18ntemplate.ParsedTemplate, error) {
	key := parseKey{left, right, src}
	if v, ok := p.cache.Load(key); ok {
		return v.(*parsed), nil
	}
	out, err := p.parse(src, left, right)
	if err != nil {
		return nil, err
	}
	v, _ := p.cache.LoadOrStore(key, out)
	return v.(*parsed), nil
}

// check parses src only to find its errors when a catalog is loaded:
// a message is kept parsed once a page uses it, so that the languages
// and messages nobody asks for cost no memory (all of them parsed at
// start were 2.6 MB of the idle heap).
func (p *parser) check(src, left, right string) error {
	_, err := p.parse(src, left, right)
	return err
}

func (p *parser) parse(src, left, right string) (*parsed, error) {
	var out parsed
	var err error
	if p.html {
		out.h, err = htmltemplate.New("").Delims(left, right).Option("missingkey=error").Parse(src)
	} else {
		out.t, err = texttemplate.New("").Delims(left, right).Option("missingkey=error").Parse(src)
	}
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// Execute runs a parsed message (go-i18n's ParsedTemplate).
func (t *parsed) Execute(data any) (string, error) {
	var b bytes.Buffer
	var err error
	if t.h != nil {
		err = t.h.Execute(&b, data)
	} else {
		err = t.t.Execute(&b, data)
	}
	return b.String(), err
}

// FS is the embedded catalogs, for tests and for the README's example.
func FS() fs.FS { return builtin }

// Number writes f with digits decimals as the language does ("1.5",
// "1,5").
func (l *Localizer) Number(f float64, digits int) string {
	return message.NewPrinter(l.tag).Sprintf("%.*f", digits, f)
}
