package web

import (
	"net/http"
	"path"

	"github.com/labstack/echo/v4"

	"mailsetup/templates"
)

// stylesheet serves the pages' one stylesheet at its versioned path
// (templates.StylesheetPath, named by its content hash): browsers may
// keep it for a year without asking again, since a changed stylesheet
// gets a new name. Any other name under /static/ is 404.
func stylesheet(c echo.Context) error {
	if c.Param("name") != path.Base(templates.StylesheetPath) {
		return echo.ErrNotFound
	}
	h := c.Response().Header()
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	h.Set("X-Content-Type-Options", "nosniff")
	return blob(c, http.StatusOK, "text/css; charset=utf-8", templates.Stylesheet())
}
