package web

import (
	"net/http"
	"path"

	"github.com/labstack/echo/v4"

	"mailsetup/templates"
)

// stylesheet serves the pages' one stylesheet and the customer pages'
// optional script at their versioned paths (templates.StylesheetPath and
// templates.ScriptPath, named by their content hash): browsers may keep
// them for a year without asking again, since a changed file gets a new
// name. Any other name under /static/ is 404.
func stylesheet(c echo.Context) error {
	var typ string
	var body []byte
	switch c.Param("name") {
	case path.Base(templates.StylesheetPath):
		typ, body = "text/css; charset=utf-8", templates.Stylesheet()
	case path.Base(templates.ScriptPath):
		typ, body = "text/javascript; charset=utf-8", templates.Script()
	default:
		return echo.ErrNotFound
	}
	h := c.Response().Header()
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	h.Set("X-Content-Type-Options", "nosniff")
	return blob(c, http.StatusOK, typ, body)
}
