package selfhelp

import (
	"math"
	"net/http"
	"net/url"
	"time"

	"github.com/labstack/echo/v4"

	"mailsetup/templates"
	"mailsetup/templates/lang"
)

// The customer pages' language: ?lang= (which the cookie then
// remembers for a year), else the cookie, else Accept-Language. Every
// page says which one it is (Content-Language, <html lang>) and that
// it depends on the request (Vary), so that no cache hands one
// customer's language to another.

// langKey is where a request keeps its chosen language.
const langKey = "selfhelp.lang"

// language returns the request's language, choosing it once per
// request (and setting the cookie when ?lang= switched it).
func (a *Pages) language(c echo.Context) *lang.Localizer {
	if l, ok := c.Get(langKey).(*lang.Localizer); ok {
		return l
	}
	var cookie string
	if ck, err := c.Cookie(lang.Cookie); err == nil {
		cookie = ck.Value
	}
	cats := a.pages.Langs()
	tag, set := cats.Choose(c.QueryParam(lang.Param), cookie, c.Request().Header.Get("Accept-Language"))
	l := cats.For(tag)
	if set != "" && set != cookie {
		c.SetCookie(&http.Cookie{Name: lang.Cookie, Value: set, Path: "/", MaxAge: 365 * 24 * 3600,
			HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: c.IsTLS()})
	}
	c.Set(langKey, l)
	return l
}

// frame is a customer page's frame in the request's language: its
// title, and the language switch (this page's URL in each other
// language).
func (a *Pages) frame(c echo.Context, title string) templates.Frame {
	l := a.language(c)
	f := templates.Frame{Title: title, Lang: l.Code()}
	u := *c.Request().URL
	for _, tag := range a.pages.Langs().Tags() {
		if tag == l.Tag() {
			continue
		}
		q := u.Query()
		q.Set(lang.Param, tag.String())
		link := url.URL{Path: u.Path, RawPath: u.RawPath, RawQuery: q.Encode()}
		f.Langs = append(f.Langs, templates.LangLink{Code: tag.String(), Name: a.pages.Langs().For(tag).Name(), URL: link.String()})
	}
	return f
}

// langHeaders say the page's language and that it depends on the
// request's.
func langHeaders(c echo.Context) {
	h := c.Response().Header()
	h.Add("Vary", "Accept-Language")
	h.Add("Vary", "Cookie")
	if l, ok := c.Get(langKey).(*lang.Localizer); ok {
		h.Set("Content-Language", l.Code())
	}
}

// waitWords is a wait as a sentence says it: "5 minutes", "1 minute",
// "30 seconds".
func waitWords(l *lang.Localizer, d time.Duration) string {
	if d < time.Minute {
		return l.SN("wait.seconds", int(d.Seconds())+1, nil)
	}
	return l.SN("wait.minutes", max(1, int(math.Ceil(d.Minutes()))), nil)
}
