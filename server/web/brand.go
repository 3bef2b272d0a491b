package web

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"html/template"
	"net/http"
	"path"
	"strings"

	"github.com/labstack/echo/v4"

	"mailsetup/templates"
)

// Branding is the provider's branding of the customer pages (the
// config's [branding], checked there): the name, a logo, the support
// phone and web page, and an accent colour.
type Branding struct {
	Name, Phone, SupportURL string
	// Logo is the logo file's content, LogoType its media type
	// (image/png, image/jpeg, image/svg+xml, image/webp).
	Logo     []byte
	LogoType string
	// Accent is a colour "#rrggbb" (buttons, cards, links), or "".
	Accent string
}

// brandFile is a branding file served under /static/ at a name with
// its content's hash, as the stylesheet is.
type brandFile struct {
	path, typ string
	body      []byte
}

func hashedPath(prefix, ext string, body []byte) string {
	sum := sha256.Sum256(body)
	return "/static/" + prefix + "-" + hex.EncodeToString(sum[:8]) + ext
}

// brand turns the branding into the pages' view and the files to serve.
func brand(b *Branding) (*templates.Brand, []brandFile) {
	if b == nil {
		return nil, nil
	}
	v := &templates.Brand{Name: b.Name, Phone: b.Phone, SupportURL: b.SupportURL}
	if b.Phone != "" {
		// Digits and "+" only: safe to mark as a URL.
		v.PhoneURI = template.URL("tel:" + strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' || r == '+' {
				return r
			}
			return -1
		}, b.Phone))
	}
	var files []brandFile
	if len(b.Logo) > 0 {
		ext := map[string]string{"image/png": ".png", "image/jpeg": ".jpg", "image/svg+xml": ".svg", "image/webp": ".webp"}[b.LogoType]
		f := brandFile{path: hashedPath("logo", ext, b.Logo), typ: b.LogoType, body: b.Logo}
		v.Logo, files = f.path, append(files, f)
	}
	if b.Accent != "" {
		css := []byte(fmt.Sprintf(".help{--accent:%s}\n", b.Accent))
		f := brandFile{path: hashedPath("brand", ".css", css), typ: "text/css; charset=utf-8", body: css}
		v.Stylesheet, files = f.path, append(files, f)
	}
	return v, files
}

// staticFile serves the stylesheet, the script and the branding files
// at their hashed names (see stylesheet).
func (a *App) staticFile(c echo.Context) error {
	for _, f := range a.brandFiles {
		if c.Param("name") == path.Base(f.path) {
			h := c.Response().Header()
			h.Set("Cache-Control", "public, max-age=31536000, immutable")
			h.Set("X-Content-Type-Options", "nosniff")
			if f.typ == "image/svg+xml" {
				// An SVG opened on its own runs nothing and loads nothing.
				h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; sandbox")
			}
			return blob(c, http.StatusOK, f.typ, f.body)
		}
	}
	return stylesheet(c)
}
