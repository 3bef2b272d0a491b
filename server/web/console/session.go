package console

import (
	"context"
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
// acceptable for a console used during a phone call. With a SessionStore
// (the database, several replicas) they are saved at sign-in, so any
// replica knows them; each replica keeps its copy and asks the store
// again at most every sessionRecheck (a sign-out elsewhere). The cookie holds a
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

// SessionStore keeps staff sessions where every replica finds them.
type SessionStore interface {
	// Save stores a new session; an error refuses the sign-in.
	Save(ctx context.Context, s StoredSession) error
	// Load finds a session by its id.
	Load(ctx context.Context, id string) (StoredSession, bool, error)
	// Delete ends a session.
	Delete(ctx context.Context, id string) error
}

// StoredSession is what a SessionStore keeps of a session.
type StoredSession struct {
	ID, User, CSRF string
	Created        time.Time
}

// sessionRecheck is how long a replica trusts its copy of a shared
// session before asking the store whether it still exists.
const sessionRecheck = 5 * time.Second

// sessionStoreTimeout bounds one SessionStore call.
const sessionStoreTimeout = 5 * time.Second

type staffSession struct {
	id      string
	user    string
	csrf    string
	created time.Time

	mu      sync.Mutex
	seen    time.Time
	checked time.Time      // last confirmed by the store
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
	now   func() time.Time
	store SessionStore // nil: this process's memory only
	// known says whether a stored session's member is configured here.
	known func(user string) bool

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

func (ss *staffSessions) create(user string) (*staffSession, error) {
	now := ss.now()
	s := &staffSession{id: request.NewRandom(32), user: user, csrf: request.NewRandom(32), created: now, seen: now, checked: now}
	if ss.store != nil {
		ctx, cancel := context.WithTimeout(context.Background(), sessionStoreTimeout)
		err := ss.store.Save(ctx, StoredSession{ID: s.id, User: user, CSRF: s.csrf, Created: now})
		cancel()
		if err != nil {
			return nil, err
		}
	}
	ss.add(s, now)
	return s, nil
}

// add keeps s, dropping the oldest sessions when full.
func (ss *staffSessions) add(s *staffSession, now time.Time) {
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
}

// load asks the store for a session this replica does not know, or
// confirms one it has not confirmed lately; with the store unreachable
// a known session stays.
func (ss *staffSessions) load(id string, known *staffSession, now time.Time) *staffSession {
	if ss.store == nil || len(id) > 100 {
		return known
	}
	if known != nil {
		known.mu.Lock()
		fresh := now.Sub(known.checked) < sessionRecheck
		known.mu.Unlock()
		if fresh {
			return known
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), sessionStoreTimeout)
	st, ok, err := ss.store.Load(ctx, id)
	cancel()
	switch {
	case err != nil:
		return known
	case !ok || (ss.known != nil && !ss.known(st.User)):
		if known != nil {
			ss.remove(id)
		}
		return nil
	case known != nil:
		known.mu.Lock()
		known.checked = now
		known.mu.Unlock()
		return known
	}
	s := &staffSession{id: st.ID, user: st.User, csrf: st.CSRF, created: st.Created, seen: now, checked: now}
	ss.add(s, now)
	return s
}

// get returns the live session of id and marks it used.
func (ss *staffSessions) get(id string) (*staffSession, bool) {
	now := ss.now()
	ss.mu.Lock()
	s := ss.m[id]
	ss.mu.Unlock()
	if s = ss.load(id, s, now); s == nil {
		return nil, false
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
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

// signOut ends a session here and in the store.
func (ss *staffSessions) signOut(id string) {
	ss.remove(id)
	if ss.store != nil {
		ctx, cancel := context.WithTimeout(context.Background(), sessionStoreTimeout)
		_ = ss.store.Delete(ctx, id)
		cancel()
	}
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
