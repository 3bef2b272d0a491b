package web

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"strings"

	"mailsetup/autoconfig"
)

// addressTemplate is a document rendered once per policy and split where
// the address goes, so a request costs a copy and one XML escape of the
// address instead of a full encoding/xml marshal (profiling showed the
// marshal at over 70% of a request's CPU).
//
// It is built only when rendering with a probe address through the
// template gives byte-for-byte what the renderer itself gives; otherwise
// the handler renders each request.
type addressTemplate struct {
	parts [][]byte
}

// markerLocal is a local part no real document contains.
const markerLocal = "mailsetup-address-marker-5b1c9e7a"

type renderFunc func(w io.Writer, p autoconfig.Policy, address string) error

func compileAddressTemplate(render renderFunc, p autoconfig.Policy) (*addressTemplate, error) {
	marker := markerLocal + "@" + p.Domain
	var buf bytes.Buffer
	if err := render(&buf, p, marker); err != nil {
		return nil, err
	}
	parts := bytes.Split(buf.Bytes(), []byte(marker))
	for _, part := range parts {
		if bytes.Contains(part, []byte(markerLocal)) {
			return nil, fmt.Errorf("the address's local part appears on its own in the document")
		}
	}
	t := &addressTemplate{parts: parts}
	// Check with addresses that need escaping and change case.
	for _, probe := range []string{"O'Brien&Sons@" + p.Domain, "a.b+c@" + p.Domain, "Z{z}@" + p.Domain} {
		var want bytes.Buffer
		if err := render(&want, p, probe); err != nil {
			return nil, err
		}
		if got := t.appendTo(nil, probe); !bytes.Equal(got, want.Bytes()) {
			return nil, fmt.Errorf("template output for %q differs from the renderer's", probe)
		}
	}
	return t, nil
}

// size is the document's length for an address of n escaped bytes.
func (t *addressTemplate) size(n int) int {
	total := n * (len(t.parts) - 1)
	for _, p := range t.parts {
		total += len(p)
	}
	return total
}

// appendTo appends the document for address (escaped for XML text and
// attributes) to dst.
func (t *addressTemplate) appendTo(dst []byte, address string) []byte {
	var esc strings.Builder
	_ = xml.EscapeText(&esc, []byte(address)) // writes to a strings.Builder never fail
	a := esc.String()
	if dst == nil {
		dst = make([]byte, 0, t.size(len(a)))
	}
	for i, part := range t.parts {
		if i > 0 {
			dst = append(dst, a...)
		}
		dst = append(dst, part...)
	}
	return dst
}

// docCache holds one template per domain for one renderer.
type docCache struct {
	render renderFunc
	byDom  map[string]*addressTemplate
}

// newDocCache compiles templates for every policy; a policy whose
// template does not verify is rendered per request.
func newDocCache(render renderFunc, policies []autoconfig.Policy) *docCache {
	c := &docCache{render: render, byDom: make(map[string]*addressTemplate, len(policies))}
	for _, p := range policies {
		if t, err := compileAddressTemplate(render, p); err == nil {
			c.byDom[p.Domain] = t
		}
	}
	return c
}

// document returns the document for a non-empty address.
func (c *docCache) document(p autoconfig.Policy, address string) ([]byte, error) {
	if t, ok := c.byDom[p.Domain]; ok && address != "" {
		return t.appendTo(nil, address), nil
	}
	var buf bytes.Buffer
	if err := c.render(&buf, p, address); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
