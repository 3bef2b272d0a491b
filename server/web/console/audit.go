package console

import (
	"bytes"
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
	// share, when set, carries every entry to the other replicas (the
	// database keeps them all).
	share AuditShare
}

// AuditShare carries audit entries between replicas: each replica's file
// keeps its own entries, the console's list shows everybody's.
type AuditShare interface {
	// Add publishes an entry made here; it must not block for long.
	Add(AuditEntry)
	// Follow registers add for the entries other replicas made.
	Follow(add func(AuditEntry))
}

const auditRecent = 500

func (l *auditLog) add(e AuditEntry) {
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	line, _ := json.Marshal(e) // plain strings and a time: cannot fail
	line = append(line, '\n')
	if l.share != nil {
		l.share.Add(e)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.w != nil {
		if _, err := l.w.Write(line); err != nil && l.failed != nil {
			l.failed(err)
		}
	}
	l.remember(e)
}

// other keeps an entry another replica made (not written here).
func (l *auditLog) other(e AuditEntry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.remember(e)
}

// remember puts an entry in the in-memory list (caller holds mu).
func (l *auditLog) remember(e AuditEntry) {
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

// seed puts entries from before this start into the in-memory list
// (oldest first), without writing them again.
func (l *auditLog) seed(entries []AuditEntry) {
	if len(entries) > auditRecent {
		entries = entries[len(entries)-auditRecent:]
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recent = append(l.recent[:0], entries...)
	l.next = len(l.recent) % auditRecent
}

// ReadAuditTail returns the last entries (at most max) of an audit log
// of JSON lines, oldest first, reading only its last 512 KiB; lines that
// do not parse are skipped.
func ReadAuditTail(r io.ReaderAt, size int64, max int) []AuditEntry {
	const window = 512 << 10
	start := size - window
	if start < 0 {
		start = 0
	}
	buf := make([]byte, size-start)
	n, _ := r.ReadAt(buf, start)
	lines := bytes.Split(buf[:n], []byte("\n"))
	if start > 0 && len(lines) > 0 {
		lines = lines[1:] // cut in the middle of a line
	}
	var out []AuditEntry
	for _, line := range lines {
		var e AuditEntry
		if len(bytes.TrimSpace(line)) == 0 || json.Unmarshal(line, &e) != nil || e.Time.IsZero() {
			continue
		}
		out = append(out, e)
	}
	if len(out) > max {
		out = out[len(out)-max:]
	}
	return out
}
