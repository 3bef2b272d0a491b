package console

import (
	"crypto/subtle"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"mailsetup/probe"
	"mailsetup/server/web/request"
)

// Staff sessions live in memory: a restart signs everybody out, which is
// acceptable for a console used during a phone call. The cookie holds a
// random 32-byte id; the session holds the staff member's name, the CSRF
// token of its forms and the last few probe reports.

const (
	staffCookie = "mailsetup_staff"
	// staffMaxAge bounds a session however active it is.
	staffMaxAge = 12 * time.Hour
	// maxStaffSessions bounds memory (each keeps up to reportsPerSession
	// reports); the oldest sessions go first.
	maxStaffSessions = 500
	// reportsPerSession bounds the probe reports kept for viewing.
	reportsPerSession = 20
)

type staffSession struct {
	id      string
	user    string
	csrf    string
	created time.Time

	mu      sync.Mutex
	seen    time.Time
	reports []storedReport // oldest first
}

type storedReport struct {
	id     string
	report *probe.Report
}

func (s *staffSession) addReport(r *probe.Report) string {
	id := request.NewRandom(9)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reports = append(s.reports, storedReport{id: id, report: r})
	if len(s.reports) > reportsPerSession {
		s.reports = s.reports[len(s.reports)-reportsPerSession:]
	}
	return id
}

func (s *staffSession) report(id string) (*probe.Report, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.reports {
		if r.id == id {
			return r.report, true
		}
	}
	return nil, false
}

type staffSessions struct {
	now func() time.Time

	mu   sync.Mutex
	idle time.Duration // guarded by mu (a reload changes it)
	m    map[string]*staffSession
}

// reconfigure sets the idle timeout and ends the sessions whose member
// keep rejects (removed from the config, or a new password).
func (ss *staffSessions) reconfigure(idle time.Duration, keep func(user string) bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.idle = idle
	for id, s := range ss.m {
		if !keep(s.user) {
			delete(ss.m, id)
		}
	}
}

func (ss *staffSessions) create(user string) *staffSession {
	now := ss.now()
	s := &staffSession{id: request.NewRandom(32), user: user, csrf: request.NewRandom(32), created: now, seen: now}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if len(ss.m) >= maxStaffSessions {
		ss.sweepLocked(now)
	}
	for len(ss.m) >= maxStaffSessions { // still full: drop the oldest
		var oldest *staffSession
		for _, o := range ss.m {
			if oldest == nil || o.created.Before(oldest.created) {
				oldest = o
			}
		}
		delete(ss.m, oldest.id)
	}
	ss.m[s.id] = s
	return s
}

// get returns the live session of id and marks it used.
func (ss *staffSessions) get(id string) (*staffSession, bool) {
	now := ss.now()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.m[id]
	if !ok {
		return nil, false
	}
	s.mu.Lock()
	expired := now.Sub(s.seen) > ss.idle || now.Sub(s.created) > staffMaxAge
	if !expired {
		s.seen = now
	}
	s.mu.Unlock()
	if expired {
		delete(ss.m, id)
		return nil, false
	}
	return s, true
}

func (ss *staffSessions) remove(id string) {
	ss.mu.Lock()
	delete(ss.m, id)
	ss.mu.Unlock()
}

func (ss *staffSessions) sweepLocked(now time.Time) {
	for id, s := range ss.m {
		s.mu.Lock()
		expired := now.Sub(s.seen) > ss.idle || now.Sub(s.created) > staffMaxAge
		s.mu.Unlock()
		if expired {
			delete(ss.m, id)
		}
	}
}

// setStaffCookie sets (or, with an empty id, clears) the session cookie.
func setStaffCookie(c echo.Context, id string) {
	ck := &http.Cookie{Name: staffCookie, Value: id, Path: "/staff/", HttpOnly: true,
		Secure: c.IsTLS(), SameSite: http.SameSiteStrictMode}
	if id == "" {
		ck.MaxAge = -1
	}
	c.SetCookie(ck)
}

// requireStaff lets signed-in staff through and checks the session's
// CSRF token on every POST. Without a session a page view is sent to
// the sign-in form and a form post is refused.
func (a *Console) requireStaff(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		staffHeaders(c)
		var s *staffSession
		if ck, err := c.Cookie(staffCookie); err == nil {
			s, _ = a.staff.sessions.get(ck.Value)
		}
		r := c.Request()
		if s == nil {
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				return c.Redirect(http.StatusSeeOther, "/staff/signin?next="+url.QueryEscape(r.URL.RequestURI()))
			}
			return echo.NewHTTPError(http.StatusUnauthorized, "not signed in, or signed out after a time without use: sign in again at /staff/signin")
		}
		if r.Method == http.MethodPost {
			if err := request.SameOrigin(c); err != nil {
				return err
			}
			if subtle.ConstantTimeCompare([]byte(c.FormValue(request.FormField)), []byte(s.csrf)) != 1 {
				return request.ErrCSRF
			}
		}
		c.Set("staff", s)
		return next(c)
	}
}

func staffOf(c echo.Context) *staffSession {
	s, _ := c.Get("staff").(*staffSession)
	return s
}

// staffHeaders: staff pages are never cached, framed or leaked in a
// Referer, and may load nothing but themselves.
func staffHeaders(c echo.Context) {
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
}

// localNext accepts only a path inside the console as the place to go
// after signing in (no open redirect).
func localNext(next string) string {
	if strings.HasPrefix(next, "/staff/") && !strings.HasPrefix(next, "//") && !strings.ContainsAny(next, "\\\r\n") && next != "/staff/signin" {
		return next
	}
	return "/staff/"
}
