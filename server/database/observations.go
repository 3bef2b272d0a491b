package database

import (
	"context"
	"encoding/json"
	"time"

	"mailsetup/server/events"
)

// KindObservation: one observed event (events.Event), written in the
// batch of the second it was seen, so that every replica's console shows
// what the others' mail listeners and log sources saw.
const KindObservation = "observation"

// FollowObservations hands the other replicas' observations to record.
func (f *Feed) FollowObservations(record func(events.Event)) {
	f.Handle(KindObservation, func(_ context.Context, body []byte) {
		var e events.Event
		if json.Unmarshal(body, &e) == nil {
			record(e)
		}
	})
}

// SaveObservations writes accounts' observations (what changed on this
// replica since its last save; every replica follows the others', so
// they write alike): an account the table holds with a later event is
// left as it is. Accounts whose latest event is older than retention
// are deleted. The table is what a replica starting loads and what
// mailsetup db export writes out.
func (d *DB) SaveObservations(ctx context.Context, rows []Row, retention time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	keys := make([]string, len(rows))
	lasts := make([]int64, len(rows))
	bodies := make([]string, len(rows))
	for i, r := range rows {
		keys[i], lasts[i], bodies[i] = r.Key, r.Last, string(r.Body)
	}
	_, err := d.pool.Exec(ctx, `INSERT INTO observations (key, last, state)
		SELECT k, l, b::jsonb FROM unnest($1::text[], $2::bigint[], $3::text[]) AS u(k, l, b)
		ON CONFLICT (key) DO UPDATE SET last = EXCLUDED.last, state = EXCLUDED.state, updated = now()
		WHERE observations.last <= EXCLUDED.last`, keys, lasts, bodies)
	if err == nil && retention > 0 {
		_, err = d.pool.Exec(ctx, `DELETE FROM observations WHERE last < $1`, time.Now().Add(-retention).Unix())
	}
	d.noteErr(connErr(err))
	return err
}
