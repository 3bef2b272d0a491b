package web

import (
	"encoding/json"
	"io"
	"sync"
	"time"
)

// AuditEntry is one line of the staff audit log: who looked at or
// probed which account, and every sign-in.
type AuditEntry struct {
	Time time.Time `json:"time"`
	// Staff is the staff member's name, or "token:<name>" for the API.
	Staff  string `json:"staff"`
	Action string `json:"action"` // sign-in, sign-in-failed, sign-out, lookup, search, probe, unblock, api-observations, api-probe, api-troubles
	Target string `json:"target,omitempty"`
	Remote string `json:"remote,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// auditLog appends entries as JSON lines and keeps the latest in memory
// for the console's audit page.
type auditLog struct {
	mu     sync.Mutex
	w      io.Writer
	recent []AuditEntry // ring, oldest first once full
	next   int
	// failed is called when a line cannot be written (disk full): the
	// entry is still in the in-memory list, and the operator must know.
	failed func(error)
}

const auditRecent = 500

func (l *auditLog) add(e AuditEntry) {
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	line, _ := json.Marshal(e) // plain strings and a time: cannot fail
	line = append(line, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.w != nil {
		if _, err := l.w.Write(line); err != nil && l.failed != nil {
			l.failed(err)
		}
	}
	if len(l.recent) < auditRecent {
		l.recent = append(l.recent, e)
		l.next = len(l.recent) % auditRecent
		return
	}
	l.recent[l.next] = e
	l.next = (l.next + 1) % auditRecent
}

// latest returns up to n entries, newest first.
func (l *auditLog) latest(n int) []AuditEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]AuditEntry, 0, min(n, len(l.recent)))
	for i := 0; i < len(l.recent) && len(out) < n; i++ {
		j := (l.next - 1 - i + 2*len(l.recent)) % len(l.recent)
		out = append(out, l.recent[j])
	}
	return out
}
