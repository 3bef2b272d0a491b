// Package webtest is what the tests of server/web and of its parts
// share: a policy source over a list, one request through a handler, and
// a log buffer that concurrent writers may share. Only tests import it;
// it imports autoconfig and the standard library.
package webtest

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"

	"mailsetup/autoconfig"
)

// Policies is a policy source over a list (request.PolicySource).
type Policies []autoconfig.Policy

// Policy returns the policy of a domain.
func (ps Policies) Policy(d string) (autoconfig.Policy, bool) {
	for _, p := range ps {
		if p.Domain == d {
			return p, true
		}
	}
	return autoconfig.Policy{}, false
}

// Policies returns the list.
func (ps Policies) Policies() []autoconfig.Policy { return ps }

// Do sends one request through h; hdr are header names and values.
func Do(h http.Handler, method, target string, body io.Reader, hdr ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, body)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// LockedBuffer is a buffer safe for concurrent writes (a log sink).
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
