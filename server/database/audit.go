package database

import (
	"context"
	"encoding/json"

	"mailsetup/server/web/console"
)

// KindAudit: a staff audit entry (console.AuditEntry). Besides the feed
// every entry is kept in the table audit (insert), which the feed's
// pruning does not touch.
const KindAudit = "audit"

type auditShare struct{ f *Feed }

// Add writes the entry at once (a staff action); with the database
// down it waits in the queue.
func (s auditShare) Add(e console.AuditEntry) { s.f.Now(KindAudit, e) }

func (s auditShare) Follow(add func(console.AuditEntry)) {
	s.f.Handle(KindAudit, func(_ context.Context, body []byte) {
		var e console.AuditEntry
		if json.Unmarshal(body, &e) == nil {
			add(e)
		}
	})
}

// AuditShare is the console's console.AuditShare.
func (f *Feed) AuditShare() console.AuditShare { return auditShare{f} }

// RecentAudit returns the latest n audit entries of every replica,
// oldest first (the console's list at start).
func (d *DB) RecentAudit(ctx context.Context, n int) ([]console.AuditEntry, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	rows, err := d.pool.Query(ctx, `SELECT entry FROM (SELECT id, entry FROM audit ORDER BY id DESC LIMIT $1) AS l ORDER BY id`, n)
	if err != nil {
		d.noteErr(connErr(err))
		return nil, err
	}
	defer rows.Close()
	var out []console.AuditEntry
	for rows.Next() {
		var body []byte
		var e console.AuditEntry
		if rows.Scan(&body) == nil && json.Unmarshal(body, &e) == nil && !e.Time.IsZero() {
			out = append(out, e)
		}
	}
	return out, rows.Err()
}
