package lang

import (
	"errors"
	"maps"
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
		parts[i] = l.vars(v)
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

var errNotOwn = errors.New("lang: no message of this language")

// vars translates a finding's {field}.
func (l *Localizer) vars(v finding.Vars) finding.Vars {
	v = maps.Clone(v)
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
