package finding

import (
	"cmp"
	"maps"
	"slices"
	"strings"
)

// Finding is one thing found wrong (or right), with the fix in plain
// words. Its JSON is part of the probe's report and the support API.
type Finding struct {
	// ID is stable and documented, "area.thing" (see Catalog).
	ID       string   `json:"id"`
	Severity Severity `json:"severity"`
	// Fault says whether the customer's settings or the server is at
	// fault ("settings" or "server").
	Fault Fault `json:"fault"`
	// Title is one short line.
	Title string `json:"title"`
	// Evidence is what was seen: reported values, server replies.
	Evidence []string `json:"evidence,omitempty"`
	// Fix tells the customer what to change, naming the field as the
	// client's settings dialog calls it.
	Fix string `json:"fix,omitempty"`
	// Staff is one line for support staff.
	Staff string `json:"staff,omitempty"`

	// vars are the placeholder values New filled in; Merge uses them
	// to say a sentence once for several values.
	vars Vars
	// parts are the placeholders of each distinct fix Merge folded
	// into this one, in order (nil: just vars).
	parts []Vars
}

// Vars fill the placeholders of a catalog entry: "value" fills {value}.
type Vars map[string]string

// New builds the finding id with its catalog wording, the placeholders
// ({address}, {field}, {value}, {expected}, {days}, {port}) filled from
// v. The probe and the server's observations both build findings with
// it, so that what the server saw reads exactly like what the probe
// found. It panics on an id that is not in the catalog: ids are
// constants.
func New(id string, v Vars, evidence ...string) Finding {
	e, ok := Lookup(id)
	if !ok {
		panic("finding: id not in the catalog: " + id)
	}
	return Finding{ID: e.ID, Severity: e.Severity, Fault: e.Fault, Title: e.Title, Evidence: evidence,
		Fix: fill(e.Fix, v), Staff: fill(e.Staff, v), vars: v}
}

// Reported is New for a finding built from what the customer reports
// (the probe's comparison of the client settings): its staff line says
// "the customer reports ...", never states the value as observed.
func Reported(id string, v Vars, evidence ...string) Finding {
	f := New(id, v, evidence...)
	if s, ok := staffReported[id]; ok {
		f.Staff = fill(s, v)
	}
	return f
}

// fill replaces the placeholders of text with the values of v.
func fill(text string, v Vars) string {
	pairs := make([]string, 0, 2*len(v))
	for k, val := range v {
		pairs = append(pairs, "{"+k+"}", val)
	}
	return strings.NewReplacer(pairs...).Replace(text)
}

// Merge folds findings with the same id into one, at the place of the
// first: the worst severity, every distinct piece of evidence, fix and
// staff line, in order. Fixes that are the catalog's sentence for
// different values of {value} are said once, naming every value, where
// the catalog has a wording for several (server.unreachable: "the
// servers a, b and c are not answering").
func Merge(in []Finding) []Finding {
	var out []Finding
	var parts [][]Finding // parts[i]: the findings folded into out[i]
	for _, f := range in {
		i := slices.IndexFunc(out, func(g Finding) bool { return g.ID == f.ID })
		if i < 0 {
			out = append(out, f)
			parts = append(parts, []Finding{f})
			continue
		}
		parts[i] = append(parts[i], f)
	}
	for i, fs := range parts {
		if len(fs) > 1 {
			out[i] = fold(fs)
		}
	}
	return out
}

// fold merges findings of one id (see Merge).
func fold(fs []Finding) Finding {
	g := fs[0]
	g.Evidence = slices.Clip(g.Evidence)
	var fixed []Finding
	var staff, seen []string
	g.parts = nil
	for i, f := range fs {
		g.Severity = max(g.Severity, f.Severity)
		if i > 0 {
			g.Evidence = appendNew(g.Evidence, f.Evidence...)
		}
		if f.Fix != "" {
			fixed = append(fixed, f)
			if !slices.Contains(seen, f.Fix) {
				seen = append(seen, f.Fix)
				g.parts = append(g.parts, f.vars)
			}
		}
		if f.Staff != "" {
			staff = appendNew(staff, f.Staff)
		}
	}
	g.Fix, g.Staff = fixOf(fixed), strings.Join(staff, "; ")
	if many, ok := staffForMany[g.ID]; ok && len(staff) > 1 {
		if values, ok := valuesOf(fs); ok {
			v := maps.Clone(fs[0].vars)
			v["value"] = list(values)
			g.Staff = fill(many, v)
		}
	}
	return g
}

// fixOf says the fixes of fs (findings of one id) once each, in order,
// or, when they differ only in {value} and the catalog words that case
// (fixForMany), one sentence naming every value.
func fixOf(fs []Finding) string {
	var fixes []string
	for _, f := range fs {
		fixes = appendNew(fixes, f.Fix)
	}
	if len(fixes) < 2 {
		return strings.Join(fixes, "")
	}
	if many, ok := fixForMany[fs[0].ID]; ok {
		if values, ok := valuesOf(fs); ok {
			v := Vars{}
			maps.Copy(v, fs[0].vars)
			v["value"] = list(values)
			return fill(many, v)
		}
	}
	return strings.Join(fixes, " ")
}

// valuesOf returns the distinct {value}s of fs, in order, when every fix
// is still the catalog's sentence (New's, not changed since) and the
// findings' placeholders differ in {value} only.
func valuesOf(fs []Finding) ([]string, bool) {
	e, _ := Lookup(fs[0].ID)
	others := func(v Vars) Vars {
		v = maps.Clone(v)
		delete(v, "value")
		return v
	}
	var values []string
	for _, f := range fs {
		if f.Fix != fill(e.Fix, f.vars) || !maps.Equal(others(f.vars), others(fs[0].vars)) {
			return nil, false
		}
		values = appendNew(values, f.vars["value"])
	}
	return values, true
}

// appendNew appends the elements of add not yet in list.
func appendNew(list []string, add ...string) []string {
	for _, s := range add {
		if !slices.Contains(list, s) {
			list = append(list, s)
		}
	}
	return list
}

// list joins values for a sentence: "a", "a and b", "a, b and c".
func list(values []string) string {
	if len(values) < 2 {
		return strings.Join(values, "")
	}
	return strings.Join(values[:len(values)-1], ", ") + " and " + values[len(values)-1]
}

// Sort orders findings worst first, then in catalog order.
func Sort(fs []Finding) {
	order := func(id string) int {
		return slices.IndexFunc(Catalog, func(e Entry) bool { return e.ID == id })
	}
	slices.SortStableFunc(fs, func(a, b Finding) int {
		if c := cmp.Compare(b.Severity, a.Severity); c != 0 {
			return c
		}
		return cmp.Compare(order(a.ID), order(b.ID))
	})
}

// Vars are the placeholder values New filled in (a copy).
func (f Finding) Vars() Vars { return maps.Clone(f.vars) }

// Sentences returns the placeholders of each catalog sentence f.Fix
// says, in order, so that a page in another language can say the same
// sentences: one for a finding New built, one per distinct fix for one
// Merge folded. many: Merge said them as one sentence naming every
// {value} (the catalog's wording for several). ok is false when f.Fix
// is not the catalog's wording (changed after New): then only f.Fix
// says it.
func (f Finding) Sentences() (parts []Vars, many, ok bool) {
	e, found := Lookup(f.ID)
	if !found || f.Fix == "" {
		return nil, false, false
	}
	parts = f.parts
	if parts == nil {
		parts = []Vars{f.vars}
	}
	var fixes []string
	for _, v := range parts {
		fixes = append(fixes, fill(e.Fix, v))
	}
	if f.Fix == strings.Join(fixes, " ") {
		return cloneAll(parts), false, true
	}
	if m, isMany := fixForMany[f.ID]; isMany && len(parts) > 1 {
		var values []string
		for _, v := range parts {
			values = append(values, v["value"])
		}
		v := maps.Clone(parts[0])
		v["value"] = list(values)
		if f.Fix == fill(m, v) {
			return cloneAll(parts), true, true
		}
	}
	return nil, false, false
}

func cloneAll(vs []Vars) []Vars {
	out := make([]Vars, len(vs))
	for i, v := range vs {
		out[i] = maps.Clone(v)
	}
	return out
}
