package lang

import (
	"errors"
	"maps"
	"slices"
	"strings"

	"github.com/nicksnyder/go-i18n/v2/i18n"

	"mailsetup/finding"
)

// The findings' customer sentences in the page's language. English is
// the finding catalog's own wording (package finding); another
// language has finding.<id>.title, finding.<id>.fix and, where the
// catalog words several values as one sentence, finding.<id>.fix-many,
// with the placeholders as named values: {{.value}}, {{.field}},
// {{.address}}, {{.expected}}, {{.port}}, {{.speaks}}, {{.days}}.

// fieldIDs name finding's settings fields ({field}) for their
// translations, field.<name>.
var fieldIDs = map[string]string{
	finding.FieldInUser:  "in-user",
	finding.FieldInHost:  "in-host",
	finding.FieldInPort:  "in-port",
	finding.FieldInSec:   "in-security",
	finding.FieldOutUser: "out-user",
	finding.FieldOutHost: "out-host",
	finding.FieldOutPort: "out-port",
	finding.FieldOutSec:  "out-security",
}

// FieldIDs are the ids of the translated settings fields
// (finding.field.<id>).
func FieldIDs() []string {
	var out []string
	for _, id := range fieldIDs {
		out = append(out, id)
	}
	return out
}

// Finding returns f's title and fix in the language: its translation
// where the language has one for the id and f's fix is the catalog's
// wording, else f's own English.
func (l *Localizer) Finding(f finding.Finding) (title, fix string) {
	return l.FindingIn(f, nil)
}

// FindingIn is Finding with each placeholder's value passed through
// words first, where words is not nil: the page's words for a value
// the probe said in English (a mail program's name, a summary of
// settings).
func (l *Localizer) FindingIn(f finding.Finding, words func(string) string) (title, fix string) {
	title, fix = f.Title, f.Fix
	if l.tag == Default {
		return title, fix
	}
	if t, err := l.own(l.c.text, "finding."+f.ID+".title", nil); err == nil {
		title = t
	}
	parts, many, ok := f.Sentences()
	if !ok {
		return title, fix
	}
	for i, v := range parts {
		parts[i] = l.vars(v, words)
	}
	if many {
		var values []string
		for _, v := range parts {
			values = append(values, v["value"])
		}
		v := maps.Clone(parts[0])
		v["value"] = l.List(values)
		if t, err := l.own(l.c.text, "finding."+f.ID+".fix-many", v); err == nil {
			return title, t
		}
		return title, fix
	}
	var said []string
	for _, v := range parts {
		t, err := l.own(l.c.text, "finding."+f.ID+".fix", v)
		if err != nil {
			return title, fix
		}
		said = append(said, t)
	}
	return title, strings.Join(said, " ")
}

// Evidence is what was seen, for a page's "What we saw": in English
// f's own lines; in another language one line per value the finding
// was made with, from finding.<id>.evidence where the language has it,
// else from finding.evidence (the value and what is right). The
// probe's own lines are English (server replies, errors, the CLI's
// words), so no other language shows them. words is as for FindingIn.
func (l *Localizer) Evidence(f finding.Finding, words func(string) string) []string {
	if l.tag == Default {
		return f.Evidence
	}
	parts, _, ok := f.Sentences()
	if !ok {
		parts = []finding.Vars{f.Vars()}
	}
	var out []string
	for _, v := range parts {
		v = l.vars(v, words)
		t, err := l.own(l.c.text, "finding."+f.ID+".evidence", v)
		if err != nil {
			t, err = l.own(l.c.text, "finding.evidence", v)
		}
		if t = strings.TrimSpace(t); err == nil && t != "" && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

var errNotOwn = errors.New("lang: no message of this language")

// vars translates a finding's {field}, and its values through words.
func (l *Localizer) vars(v finding.Vars, words func(string) string) finding.Vars {
	v = maps.Clone(v)
	if v == nil {
		v = finding.Vars{}
	}
	if words != nil {
		for k, val := range v {
			v[k] = words(val)
		}
	}
	if id, ok := fieldIDs[v["field"]]; ok {
		if t, err := l.own(l.c.text, "finding.field."+id, nil); err == nil {
			v["field"] = t
		}
	}
	return v
}

// own is a message of this language itself: an error where it has
// none (no English fallback).
func (l *Localizer) own(p *parser, id string, data any) (string, error) {
	s, tag, err := l.loc.LocalizeWithTag(&i18n.LocalizeConfig{MessageID: id, TemplateData: data, TemplateParser: p})
	if err != nil || tag != l.tag {
		return "", errNotOwn
	}
	return s, nil
}

// List joins values for a sentence: "a", "a and b", "a, b and c", with
// the language's "and" (list.and).
func (l *Localizer) List(values []string) string {
	if len(values) < 2 {
		return strings.Join(values, "")
	}
	and := l.S("list.and", nil)
	return strings.Join(values[:len(values)-1], ", ") + " " + and + " " + values[len(values)-1]
}

// Or joins alternatives: "a", "a or b", "a or b or c" (list.or).
func (l *Localizer) Or(values []string) string {
	return strings.Join(values, " "+l.S("list.or", nil)+" ")
}

// FieldError says a check form field's error in the language:
// form.err.<kind> with the field's name (form.label.<field>) as .Label,
// the value as typed (.Value) and a length's limit (.Max); english, the
// form's own message, where the language has no such message (and in
// English).
func (l *Localizer) FieldError(field, kind, value string, maxLen int, english string) string {
	if l.tag == Default || kind == "" {
		return english
	}
	label, err := l.own(l.c.text, "form.label."+field, nil)
	if err != nil {
		return english
	}
	msg, err := l.own(l.c.text, "form.err."+kind, map[string]any{"Label": label, "Value": value, "Max": maxLen})
	if err != nil {
		return english
	}
	return msg
}
