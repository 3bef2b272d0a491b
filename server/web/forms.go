package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// Forms without a session (the customer's check, the staff sign-in) are
// protected by a signed double-submit token: a random value in a cookie
// that only this site can set and read, and the same value with its
// HMAC in a hidden field. A cross-site form can send the cookie but
// cannot read it to fill in the field. Every POST also has its Origin
// (or Referer) checked when the browser sends one.

const (
	// formCookie holds the anonymous form token.
	formCookie = "mailsetup_form"
	// formField is the hidden field of every form.
	formField = "csrf"
	// formTokenLife bounds how long a page's form stays usable.
	formTokenLife = 12 * time.Hour
)

// errCSRF is the answer to a form post without a valid token.
var errCSRF = echo.NewHTTPError(http.StatusForbidden,
	"this form has expired or did not come from this site: reload the page and send it again")

// newRandom returns n random bytes, URL-safe base64.
func newRandom(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails on supported platforms
	return base64.RawURLEncoding.EncodeToString(b)
}

// formToken returns the token for this browser's forms, setting the
// cookie when the browser has none (or an invalid one).
func (a *App) formToken(c echo.Context) string {
	if ck, err := c.Cookie(formCookie); err == nil && a.validFormCookie(ck.Value) {
		return ck.Value
	}
	v := newRandom(18) + "." + time.Now().UTC().Format("20060102T150405")
	v += "." + a.sign(v)
	c.SetCookie(&http.Cookie{Name: formCookie, Value: v, Path: "/", HttpOnly: true,
		Secure: c.IsTLS(), SameSite: http.SameSiteLaxMode, MaxAge: int(formTokenLife / time.Second)})
	return v
}

func (a *App) sign(v string) string {
	m := hmac.New(sha256.New, a.formKey)
	m.Write([]byte(v))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// validFormCookie checks the signature and age of a token.
func (a *App) validFormCookie(v string) bool {
	i := strings.LastIndexByte(v, '.')
	if i < 0 || !hmac.Equal([]byte(a.sign(v[:i])), []byte(v[i+1:])) {
		return false
	}
	j := strings.LastIndexByte(v[:i], '.')
	if j < 0 {
		return false
	}
	t, err := time.Parse("20060102T150405", v[j+1:i])
	return err == nil && time.Since(t) < formTokenLife
}

// checkFormToken verifies an anonymous form post: same origin, the
// field equal to the cookie, the cookie signed by us and fresh.
func (a *App) checkFormToken(c echo.Context) error {
	if err := sameOrigin(c); err != nil {
		return err
	}
	ck, err := c.Cookie(formCookie)
	field := c.FormValue(formField)
	if err != nil || field == "" || subtle.ConstantTimeCompare([]byte(ck.Value), []byte(field)) != 1 || !a.validFormCookie(field) {
		return errCSRF
	}
	return nil
}

// sameOrigin refuses a POST whose Origin (or, without it, Referer) names
// another host than the one the request was sent to.
func sameOrigin(c echo.Context) error {
	r := c.Request()
	src := r.Header.Get("Origin")
	if src == "" || src == "null" {
		src = r.Header.Get("Referer")
	}
	if src == "" {
		return nil // old browsers and privacy settings send neither; the token decides
	}
	u, err := url.Parse(src)
	if err != nil || !strings.EqualFold(u.Host, r.Host) {
		return echo.NewHTTPError(http.StatusForbidden, "cross-site form post refused: the form must be sent from this site's own page")
	}
	return nil
}

// bodyLimit refuses request bodies larger than n bytes: 413 when the
// length is announced, and a read error (the form then counts as not
// sent) when a chunked body runs over.
func bodyLimit(n int64) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			if r.ContentLength > n {
				return echo.NewHTTPError(http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body is larger than %d bytes", n))
			}
			r.Body = http.MaxBytesReader(c.Response(), r.Body, n)
			return next(c)
		}
	}
}

// secretsAllowed says whether a password or token may be sent on this
// connection: only over TLS, except from the machine itself (the
// embedded default, a local admin or tool).
func secretsAllowed(c echo.Context) bool {
	return c.IsTLS() || remoteAddr(c).IsLoopback()
}

// remoteAddr is the client's address (echo's RealIP without trusting
// forwarding headers: the service is not configured behind a proxy).
func remoteAddr(c echo.Context) netip.Addr {
	ap, err := netip.ParseAddrPort(c.Request().RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}
