package mobileconfig

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// This file holds a small XML property list writer and reader, enough for
// configuration profiles: dict, array, string, integer, true and false on
// output; also real, date and data on input.

const (
	xmlHeader = `<?xml version="1.0" encoding="UTF-8"?>` + "\n"
	// plistDoctype is Apple's PLIST 1.0 document type declaration.
	plistDoctype = `<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">` + "\n"
)

// dict is a plist dictionary under construction. Entries are written
// sorted by key, as Apple's tools write them, so output does not depend
// on construction order.
type dict []entry

type entry struct {
	key   string
	value any // string, int, bool, dict or []any
}

func (d *dict) add(key string, value any) { *d = append(*d, entry{key, value}) }

// encodePlist returns the XML property list document whose root is v.
func encodePlist(v any) ([]byte, error) {
	w := &plistWriter{}
	w.buf.WriteString(xmlHeader)
	w.buf.WriteString(plistDoctype)
	w.buf.WriteString(`<plist version="1.0">` + "\n")
	if err := w.value(v, 0); err != nil {
		return nil, err
	}
	w.buf.WriteString("</plist>\n")
	return w.buf.Bytes(), nil
}

type plistWriter struct {
	buf bytes.Buffer
}

func (w *plistWriter) indent(depth int) {
	for range depth {
		w.buf.WriteByte('\t')
	}
}

// element writes <name>text</name> on its own line, the text escaped.
func (w *plistWriter) element(depth int, name, text string) error {
	w.indent(depth)
	w.buf.WriteString("<" + name + ">")
	// xml.EscapeText escapes &, <, >, quotes and line breaks, and replaces
	// characters XML cannot carry with U+FFFD.
	if err := xml.EscapeText(&w.buf, []byte(text)); err != nil {
		return err
	}
	w.buf.WriteString("</" + name + ">\n")
	return nil
}

func (w *plistWriter) value(v any, depth int) error {
	switch v := v.(type) {
	case string:
		return w.element(depth, "string", v)
	case int:
		return w.element(depth, "integer", strconv.Itoa(v))
	case bool:
		w.indent(depth)
		if v {
			w.buf.WriteString("<true/>\n")
		} else {
			w.buf.WriteString("<false/>\n")
		}
		return nil
	case []any:
		w.indent(depth)
		w.buf.WriteString("<array>\n")
		for _, item := range v {
			if err := w.value(item, depth+1); err != nil {
				return err
			}
		}
		w.indent(depth)
		w.buf.WriteString("</array>\n")
		return nil
	case dict:
		sorted := slices.Clone(v)
		slices.SortStableFunc(sorted, func(a, b entry) int { return strings.Compare(a.key, b.key) })
		for i := 1; i < len(sorted); i++ {
			if sorted[i].key == sorted[i-1].key {
				return fmt.Errorf("mobileconfig: duplicate plist key %q", sorted[i].key)
			}
		}
		w.indent(depth)
		w.buf.WriteString("<dict>\n")
		for _, e := range sorted {
			if err := w.element(depth+1, "key", e.key); err != nil {
				return err
			}
			if err := w.value(e.value, depth+1); err != nil {
				return err
			}
		}
		w.indent(depth)
		w.buf.WriteString("</dict>\n")
		return nil
	}
	return fmt.Errorf("mobileconfig: cannot encode %T in a plist", v)
}

// maxPlistDepth bounds the nesting the reader accepts; a profile needs 3.
const maxPlistDepth = 32

// decodePlist parses an XML property list document into plain Go values:
// map[string]any for dict, []any for array, string for string and date,
// int64 for integer, float64 for real, bool for true/false, []byte for data.
// Every error wraps ErrMalformed.
func decodePlist(data []byte) (any, error) {
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	root, err := nextStart(d)
	if err != nil {
		return nil, err
	}
	if root.Name.Local != "plist" || root.Name.Space != "" {
		return nil, fmt.Errorf("%w: plist: root element is <%s>, want <plist>", ErrMalformed, root.Name.Local)
	}
	start, err := nextStart(d)
	if err != nil {
		return nil, err
	}
	v, err := readValue(d, start, 1)
	if err != nil {
		return nil, err
	}
	if err := expectEnd(d, "plist"); err != nil {
		return nil, err
	}
	// Only whitespace, comments and processing instructions may follow.
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return v, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%w: plist: %v", ErrMalformed, err)
		}
		if !ignorable(tok) {
			return nil, fmt.Errorf("%w: plist: content after </plist>", ErrMalformed)
		}
	}
}

// ignorable reports whether tok may appear between plist elements.
func ignorable(tok xml.Token) bool {
	switch tok := tok.(type) {
	case xml.CharData:
		return len(bytes.TrimSpace(tok)) == 0
	case xml.Comment, xml.ProcInst, xml.Directive:
		return true
	}
	return false
}

// nextStart skips ignorable tokens and returns the next start element.
func nextStart(d *xml.Decoder) (xml.StartElement, error) {
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return xml.StartElement{}, fmt.Errorf("%w: plist: unexpected end of document", ErrMalformed)
		}
		if err != nil {
			return xml.StartElement{}, fmt.Errorf("%w: plist: %v", ErrMalformed, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return t, nil
		case xml.EndElement:
			return xml.StartElement{}, fmt.Errorf("%w: plist: unexpected </%s>", ErrMalformed, t.Name.Local)
		}
		if !ignorable(tok) {
			return xml.StartElement{}, fmt.Errorf("%w: plist: unexpected text", ErrMalformed)
		}
	}
}

// expectEnd skips ignorable tokens and requires </name>.
func expectEnd(d *xml.Decoder, name string) error {
	for {
		tok, err := d.Token()
		if err != nil {
			return fmt.Errorf("%w: plist: want </%s>: %v", ErrMalformed, name, err)
		}
		if end, ok := tok.(xml.EndElement); ok && end.Name.Local == name {
			return nil
		}
		if !ignorable(tok) {
			return fmt.Errorf("%w: plist: unexpected content, want </%s>", ErrMalformed, name)
		}
	}
}

// nextStartOrEnd skips ignorable tokens and returns the next start element,
// or ok == false at the end element that closes the current container.
func nextStartOrEnd(d *xml.Decoder) (start xml.StartElement, ok bool, err error) {
	for {
		tok, err := d.Token()
		if err != nil {
			return xml.StartElement{}, false, fmt.Errorf("%w: plist: %v", ErrMalformed, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return t, true, nil
		case xml.EndElement:
			return xml.StartElement{}, false, nil
		}
		if !ignorable(tok) {
			return xml.StartElement{}, false, fmt.Errorf("%w: plist: unexpected text", ErrMalformed)
		}
	}
}

// readText returns the character data of a leaf element up to its end.
func readText(d *xml.Decoder, name string) (string, error) {
	var sb strings.Builder
	for {
		tok, err := d.Token()
		if err != nil {
			return "", fmt.Errorf("%w: plist: in <%s>: %v", ErrMalformed, name, err)
		}
		switch t := tok.(type) {
		case xml.CharData:
			sb.Write(t)
		case xml.Comment, xml.ProcInst:
		case xml.EndElement:
			return sb.String(), nil
		default:
			return "", fmt.Errorf("%w: plist: markup inside <%s>", ErrMalformed, name)
		}
	}
}

func readValue(d *xml.Decoder, start xml.StartElement, depth int) (any, error) {
	if depth > maxPlistDepth {
		return nil, fmt.Errorf("%w: plist: nested deeper than %d", ErrMalformed, maxPlistDepth)
	}
	name := start.Name.Local
	if start.Name.Space != "" {
		return nil, fmt.Errorf("%w: plist: element <%s:%s>", ErrMalformed, start.Name.Space, name)
	}
	switch name {
	case "dict":
		m := map[string]any{}
		for {
			keyStart, ok, err := nextStartOrEnd(d)
			if err != nil {
				return nil, err
			}
			if !ok {
				return m, nil
			}
			if keyStart.Name.Local != "key" || keyStart.Name.Space != "" {
				return nil, fmt.Errorf("%w: plist: <%s> in <dict> where a <key> belongs", ErrMalformed, keyStart.Name.Local)
			}
			key, err := readText(d, "key")
			if err != nil {
				return nil, err
			}
			if _, dup := m[key]; dup {
				return nil, fmt.Errorf("%w: plist: duplicate key %q", ErrMalformed, key)
			}
			valStart, ok, err := nextStartOrEnd(d)
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, fmt.Errorf("%w: plist: key %q has no value", ErrMalformed, key)
			}
			v, err := readValue(d, valStart, depth+1)
			if err != nil {
				return nil, err
			}
			m[key] = v
		}
	case "array":
		a := []any{}
		for {
			itemStart, ok, err := nextStartOrEnd(d)
			if err != nil {
				return nil, err
			}
			if !ok {
				return a, nil
			}
			v, err := readValue(d, itemStart, depth+1)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
	case "true", "false":
		text, err := readText(d, name)
		if err != nil {
			return nil, err
		}
		if strings.TrimSpace(text) != "" {
			return nil, fmt.Errorf("%w: plist: text inside <%s/>", ErrMalformed, name)
		}
		return name == "true", nil
	case "string", "date":
		return readText(d, name)
	case "integer":
		text, err := readText(d, name)
		if err != nil {
			return nil, err
		}
		n, err := strconv.ParseInt(strings.TrimSpace(text), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: plist: <integer>%.20q</integer>", ErrMalformed, text)
		}
		return n, nil
	case "real":
		text, err := readText(d, name)
		if err != nil {
			return nil, err
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(text), 64)
		if err != nil {
			return nil, fmt.Errorf("%w: plist: <real>%.20q</real>", ErrMalformed, text)
		}
		return f, nil
	case "data":
		text, err := readText(d, name)
		if err != nil {
			return nil, err
		}
		b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(text), ""))
		if err != nil {
			return nil, fmt.Errorf("%w: plist: <data> is not base64", ErrMalformed)
		}
		return b, nil
	}
	return nil, fmt.Errorf("%w: plist: unknown element <%s>", ErrMalformed, name)
}
