package logwatch

import (
	"net/netip"
	"strings"
	"unicode/utf8"
)

// session is what a parser remembers of a login session (Dovecot, by
// its session id) or an smtpd process (Postfix, by its pid) until a
// later line of it needs it.
type session struct {
	remote netip.Addr
	tls    bool
	client string // the IMAP ID sent before login
	reason string // the auth_verbose reason of a failure
}

// sessions is a map bounded to n entries; the entry added first is
// forgotten first.
type sessions struct {
	m    map[string]session
	ring []string
	next int
}

func newSessions(n int) *sessions {
	return &sessions{m: make(map[string]session, n), ring: make([]string, n)}
}

func (s *sessions) get(k string) session {
	if k == "" {
		return session{}
	}
	return s.m[k]
}

func (s *sessions) put(k string, v session) {
	if k == "" {
		return
	}
	v.client, v.reason = strings.Clone(v.client), strings.Clone(v.reason)
	if _, ok := s.m[k]; !ok {
		k = strings.Clone(k) // not the line's memory
		if old := s.ring[s.next]; old != "" {
			delete(s.m, old)
		}
		s.ring[s.next] = k
		s.next = (s.next + 1) % len(s.ring)
	}
	s.m[k] = v
}

// drop forgets k's value; its slot in the ring is reused in turn.
func (s *sessions) drop(k string) {
	if v, ok := s.m[k]; ok && v != (session{}) {
		s.m[k] = session{}
	}
}

func validUTF8(s string) bool { return utf8.ValidString(s) }
