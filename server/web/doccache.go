package web

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"

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
	a := address
	if needsEscape(address) {
		var esc strings.Builder
		_ = xml.EscapeText(&esc, []byte(address)) // writes to a strings.Builder never fail
		a = esc.String()
	}
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

// needsEscape reports whether xml.EscapeText would change s: anything
// but printable ASCII without the five markup characters.
func needsEscape(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < ' ' || c > '~', c == '"', c == '\'', c == '&', c == '<', c == '>':
			return true
		}
	}
	return false
}

// docBufs are buffers for documents built per request; a handler puts
// its buffer back once the response is written.
var docBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

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
// appendDocument appends the policy's document for the address to dst.
func (c *docCache) appendDocument(dst []byte, p autoconfig.Policy, address string) ([]byte, error) {
	if t, ok := c.byDom[p.Domain]; ok && address != "" {
		if dst == nil {
			dst = make([]byte, 0, t.size(len(address)*6))
		}
		return t.appendTo(dst, address), nil
	}
	buf := bytes.NewBuffer(dst)
	if err := c.render(buf, p, address); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// serve writes the document from a pooled buffer.
func (c *docCache) serve(ec echo.Context, contentType string, p autoconfig.Policy, address string) error {
	bp := docBufs.Get().(*[]byte)
	doc, err := c.appendDocument((*bp)[:0], p, address)
	if err != nil {
		docBufs.Put(bp)
		return err
	}
	err = blob(ec, http.StatusOK, contentType, doc)
	if cap(doc) <= 64<<10 { // do not keep an outsized buffer
		*bp = doc[:0]
		docBufs.Put(bp)
	}
	return err
}
