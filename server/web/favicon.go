package web

import (
	_ "embed"
	"net/http"

	"github.com/labstack/echo/v4"
)

// faviconICO is the default icon (an envelope; 16 and 32 pixels, PNG in
// an ICO file). Browsers ask for /favicon.ico on every page they show;
// without it each page view logged a 404.
//
//go:embed favicon.ico
var faviconICO []byte

// favicon serves faviconICO; browsers may keep it for a day.
func favicon(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "public, max-age=86400")
	return blob(c, http.StatusOK, "image/x-icon", faviconICO)
}
