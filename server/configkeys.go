package server

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/BurntSushi/toml"
)

// unknownKeys turns the keys the decoder did not use into one error each,
// with the nearest known key of the same table as a suggestion
// ("mail.max_conections: unknown key; did you mean `max_connections`?").
// A key inside an unknown table is not listed again.
func unknownKeys(keys []toml.Key) []error {
	seen := map[string]bool{}
	var errs []error
	for _, k := range keys {
		parent := false
		for i := 1; i < len(k); i++ {
			if seen[k[:i].String()] {
				parent = true
				break
			}
		}
		seen[k.String()] = true
		if parent {
			continue
		}
		msg := k.String() + ": unknown key"
		if s := suggestKey(reflect.TypeFor[Config](), k); s != "" {
			msg += "; did you mean `" + s + "`?"
		}
		errs = append(errs, fmt.Errorf("%s", msg))
	}
	return errs
}

// suggestKey follows key through the config's structs to the first part
// that no field is named, and returns the closest field name there, or ""
// when none is close.
func suggestKey(t reflect.Type, key toml.Key) string {
	for _, part := range key {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return ""
		}
		names := tomlNames(t)
		next, ok := names[part]
		if !ok {
			// At most one edit per five letters (and one more) counts as
			// close; the closest wins, ties by name.
			best, bestDist := "", 2+len(part)/5
			for name := range names {
				if d := EditDistance(part, name); d < bestDist || d == bestDist && name < best {
					best, bestDist = name, d
				}
			}
			return best
		}
		t = next
	}
	return ""
}

// tomlNames maps the toml key of each field of the struct type t to its
// type.
func tomlNames(t reflect.Type) map[string]reflect.Type {
	names := map[string]reflect.Type{}
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name != "" && name != "-" && f.IsExported() {
			names[name] = f.Type
		}
	}
	return names
}

// EditDistance is the optimal string alignment distance between a and b:
// insertions, deletions, substitutions and swaps of two neighbours
// ("hots" is one edit from "host"). The did-you-mean of config keys and
// of the command line's flags both use it.
func EditDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
