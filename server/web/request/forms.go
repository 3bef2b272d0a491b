package request

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
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
	// FormField is the hidden field of every form (the session's token
	// on console pages, the anonymous one elsewhere).
	FormField = "csrf"
	// formTokenLife bounds how long a page's form stays usable.
	formTokenLife = 12 * time.Hour
)

// ErrCSRF is the answer to a form post without a valid token.
var ErrCSRF = echo.NewHTTPError(http.StatusForbidden,
	"this form has expired or did not come from this site: reload the page and send it again")

// NewRandom returns n random bytes, URL-safe base64.
func NewRandom(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails on supported platforms
	return base64.RawURLEncoding.EncodeToString(b)
}

// Forms signs and checks the anonymous form tokens. One Forms serves
// every page of the site: the customer's check and the staff sign-in
// share the browser's cookie.
type Forms struct {
	key []byte // random per process, or the replicas' shared key
}

// NewForms makes the tokens' signing key; with key (the replicas'
// shared one) it signs with that, so that a form one replica served may
// be posted to another.
func NewForms(key []byte) *Forms {
	if len(key) == 0 {
		key = []byte(NewRandom(32))
	}
	return &Forms{key: key}
}

// Token returns the token for this browser's forms, setting the
// cookie when the browser has none (or an invalid one).
func (a *Forms) Token(c echo.Context) string {
	if ck, err := c.Cookie(formCookie); err == nil && a.validFormCookie(ck.Value) {
		return ck.Value
	}
	v := NewRandom(18) + "." + time.Now().UTC().Format("20060102T150405")
	v += "." + a.sign(v)
	c.SetCookie(&http.Cookie{Name: formCookie, Value: v, Path: "/", HttpOnly: true,
		Secure: c.IsTLS(), SameSite: http.SameSiteLaxMode, MaxAge: int(formTokenLife / time.Second)})
	return v
}

func (a *Forms) sign(v string) string {
	m := hmac.New(sha256.New, a.key)
	m.Write([]byte(v))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// validFormCookie checks the signature and age of a token.
func (a *Forms) validFormCookie(v string) bool {
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

// Check verifies an anonymous form post: same origin, the field equal
// to the cookie, the cookie signed by us and fresh.
func (a *Forms) Check(c echo.Context) error {
	if err := SameOrigin(c); err != nil {
		return err
	}
	ck, err := c.Cookie(formCookie)
	field := c.FormValue(FormField)
	if err != nil || field == "" || subtle.ConstantTimeCompare([]byte(ck.Value), []byte(field)) != 1 || !a.validFormCookie(field) {
		return ErrCSRF
	}
	return nil
}

// SameOrigin refuses a POST whose Origin (or, without it, Referer) names
// another host than the one the request was sent to.
func SameOrigin(c echo.Context) error {
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
