package database

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"mailsetup/server/auth"
)

// The change feed: every shared write appends rows to changes (under
// writeLock, so ids become visible in order and a follower that reads
// "id > last" never skips one) and notifies feedChannel.
const (
	feedChannel = "mailsetup_changes"
	// pollEvery is how often a follower reads the feed without a
	// notification (a lost notification, a reconnect).
	pollEvery = 2 * time.Second
	// keepChanges is how long the feed is kept: a replica that was cut
	// off for less catches up from it, a new one replays its throttle.
	keepChanges = 24 * time.Hour
	// keepObservations is how long observations stay in the feed: the
	// replicas follow it within seconds, and there are many.
	keepObservations = 10 * time.Minute
	// pruneEvery is how often the feed is pruned.
	pruneEvery = 5 * time.Minute
	// maxQueue bounds the changes waiting for the database (while it is
	// unreachable); beyond it the oldest are dropped and counted.
	maxQueue = 50_000
	// batchEvery is how often queued changes are written, at most
	// maxBatch in one transaction.
	batchEvery = time.Second
	maxBatch   = 5000
)

// change is one row of the feed.
type change struct {
	Kind string
	Body json.RawMessage
}

// Handler applies another replica's change of one kind.
type Handler func(ctx context.Context, body []byte)

// Feed writes this replica's changes and follows the others'.
type Feed struct {
	db       *DB
	handlers map[string]Handler
	// resync reads whole state again after the follower lost the feed.
	resync []func(context.Context) error
	lost   atomic.Bool
	// readMu serializes reading the feed (the follower, Sync); last is
	// the id of the last change read, -1 before the start is known.
	readMu sync.Mutex
	last   int64
	// throttles are the local throttles by What (FollowThrottles).
	throttles map[string]*auth.Throttle

	mu      sync.Mutex
	queue   []change // waiting for the next batch
	dropped int64
}

// NewFeed returns the feed; register handlers with Handle before Run.
func (d *DB) NewFeed() *Feed {
	return &Feed{db: d, handlers: map[string]Handler{}}
}

// Handle registers the handler of a kind of change.
func (f *Feed) Handle(kind string, h Handler) { f.handlers[kind] = h }

// insert writes changes in one transaction under the write lock, with
// do (the state change itself, may be nil) before them.
func (d *DB) insert(ctx context.Context, changes []change, do func(pgx.Tx) error) error {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	err := d.insertOnce(ctx, changes, do)
	if connErr(err) != nil && ctx.Err() == nil {
		// After a database restart the pool's idle connections are dead:
		// the failed one is discarded, the next try gets a fresh one.
		err = d.insertOnce(ctx, changes, do)
	}
	d.noteErr(connErr(err))
	return err
}

func (d *DB) insertOnce(ctx context.Context, changes []change, do func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, writeLock); err != nil {
			return err
		}
		if do != nil {
			if err := do(tx); err != nil {
				return err
			}
		}
		if len(changes) == 0 {
			return nil
		}
		kinds := make([]string, len(changes))
		bodies := make([]string, len(changes))
		for i, c := range changes {
			kinds[i], bodies[i] = c.Kind, string(c.Body)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO changes (origin, kind, body) SELECT $1, k, b::jsonb FROM unnest($2::text[], $3::text[]) AS u(k, b)`, d.origin, kinds, bodies); err != nil {
			return err
		}
		if slices.Contains(kinds, KindAudit) {
			if _, err := tx.Exec(ctx, `INSERT INTO audit (entry) SELECT b::jsonb FROM unnest($1::text[], $2::text[]) AS u(k, b) WHERE k = $3`, kinds, bodies, KindAudit); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, `SELECT pg_notify($1, '')`, feedChannel)
		return err
	})
}

// connErr is err when it says the database is unreachable, nil for the
// errors of a reachable database (a constraint, a refused change).
func connErr(err error) error {
	if err == nil || errors.Is(err, errRefused) {
		return nil
	}
	var pe interface{ SQLState() string }
	if errors.As(err, &pe) {
		// Connection exceptions, operator intervention (shutdown),
		// insufficient resources: the database is not there for us.
		switch st := pe.SQLState(); {
		case strings.HasPrefix(st, "08"), strings.HasPrefix(st, "57P"), strings.HasPrefix(st, "53"):
			return err
		}
		return nil
	}
	return err
}

// errRefused wraps a change the database refused on its merits.
var errRefused = errors.New("refused")

// Now writes a change synchronously (a failed login, a sign-in): when
// the database cannot take it, it is queued and written with the next
// batch that succeeds.
func (f *Feed) Now(kind string, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		return
	}
	c := change{Kind: kind, Body: body}
	if !f.db.down() && f.db.insert(context.Background(), []change{c}, nil) == nil {
		return
	}
	f.enqueue(c)
}

// Later queues a change for the next batch (observations).
func (f *Feed) Later(kind string, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		return
	}
	f.enqueue(change{Kind: kind, Body: body})
}

func (f *Feed) enqueue(c change) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.queue) >= maxQueue {
		n := len(f.queue) / 10
		f.queue = append(f.queue[:0], f.queue[n:]...)
		f.dropped += int64(n)
	}
	f.queue = append(f.queue, c)
}

// Pending is the number of changes waiting for the database and the
// number dropped because the queue was full.
func (f *Feed) Pending() (queued int, dropped int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.queue), f.dropped
}

// flush writes the queued changes, at most maxBatch per transaction.
func (f *Feed) flush(ctx context.Context) {
	f.mu.Lock()
	left := len(f.queue) // what arrives while writing waits for the next tick
	f.mu.Unlock()
	for left > 0 {
		f.mu.Lock()
		n := min(left, len(f.queue), maxBatch)
		batch := append([]change(nil), f.queue[:n]...)
		dropped := f.dropped
		f.mu.Unlock()
		if n == 0 {
			return
		}
		if err := f.db.insert(ctx, batch, nil); err != nil {
			return // kept; retried with the next batch
		}
		f.mu.Lock()
		// Changes dropped from the front while writing (a full queue)
		// took written ones with them first.
		done := max(0, n-int(f.dropped-dropped))
		f.queue = f.queue[min(done, len(f.queue)):]
		f.mu.Unlock()
		left -= n
	}
}

// Run writes the queue every batchEvery, prunes the feed every
// pruneEvery, and
// follows the feed until ctx
// ends: from the current end of the feed, after replaying the kinds in
// replay from the last keepChanges (the throttles' history).
func (f *Feed) Run(ctx context.Context, replay ...string) {
	last := f.start(ctx, replay)
	f.readMu.Lock()
	f.last = last
	f.readMu.Unlock()
	flushed := make(chan struct{})
	defer func() { <-flushed }()
	go func() {
		defer close(flushed)
		t := time.NewTicker(batchEvery)
		defer t.Stop()
		lastPrune := time.Now()
		for {
			select {
			case <-ctx.Done():
				fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				f.flush(fctx)
				cancel()
				return
			case <-t.C:
				f.flush(ctx)
				if time.Since(lastPrune) > pruneEvery {
					lastPrune = time.Now()
					_ = f.db.Prune(ctx)
				}
			}
		}
	}()
	for ctx.Err() == nil {
		f.follow(ctx)
		select {
		case <-ctx.Done():
		case <-time.After(pollEvery):
		}
	}
}

// start replays the history of the given kinds and returns the feed's
// end; -1 when the database was unreachable (follow then starts from
// the first change it can read of the last minute).
func (f *Feed) start(ctx context.Context, replay []string) int64 {
	qctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	var last int64
	if err := f.db.pool.QueryRow(qctx, `SELECT coalesce(max(id), 0) FROM changes`).Scan(&last); err != nil {
		f.lost.Store(true)
		f.db.noteErr(err)
		return -1
	}
	if len(replay) > 0 {
		rows, err := f.db.pool.Query(qctx, `SELECT kind, body FROM changes WHERE at > now() - make_interval(secs => $1) AND kind = ANY($2) AND id <= $3 ORDER BY id`, keepChanges.Seconds(), replay, last)
		if err == nil {
			for rows.Next() {
				var kind string
				var body []byte
				if rows.Scan(&kind, &body) == nil {
					if h := f.handlers[kind]; h != nil {
						h(ctx, body)
					}
				}
			}
			rows.Close()
		}
	}
	return last
}

// follow listens for notifications and reads the feed until the
// connection fails or ctx ends.
func (f *Feed) follow(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, connectTimeout)
	conn, err := f.db.pool.Acquire(cctx)
	cancel()
	if err != nil {
		f.lost.Store(true)
		f.db.noteErr(err)
		return
	}
	defer conn.Release()
	lctx, cancel := context.WithTimeout(ctx, queryTimeout)
	_, err = conn.Exec(lctx, `LISTEN `+feedChannel)
	cancel()
	if err != nil {
		f.db.noteErr(err)
		conn.Conn().Close(context.Background())
		return
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if _, err := conn.Exec(uctx, `UNLISTEN `+feedChannel); err != nil {
			conn.Conn().Close(context.Background())
		}
		cancel()
	}()
	if f.lost.Load() {
		for _, r := range f.resync {
			if err := r(ctx); err != nil {
				f.db.noteErr(connErr(err))
				return
			}
		}
		f.lost.Store(false)
	}
	f.readMu.Lock()
	last := f.last
	f.readMu.Unlock()
	if last < 0 {
		if err := conn.QueryRow(ctx, `SELECT coalesce(max(id), 0) FROM changes WHERE at < now() - interval '1 minute'`).Scan(&last); err != nil {
			f.db.noteErr(err)
			return
		}
		f.readMu.Lock()
		f.last = last
		f.readMu.Unlock()
	}
	for ctx.Err() == nil {
		if err := f.read(ctx, conn.Conn()); err != nil {
			f.lost.Store(true)
			f.db.noteErr(err)
			return
		}
		f.db.noteErr(nil)
		wctx, cancel := context.WithTimeout(ctx, pollEvery)
		_, err := conn.Conn().WaitForNotification(wctx)
		cancel()
		if err != nil && ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) {
			f.lost.Store(true)
			f.db.noteErr(err)
			return
		}
	}
}

// querier is a connection or the pool.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Sync reads the feed now (bounded by a second), so that a decision
// about to be made (an uncached login) sees every change committed
// before it: a lockout through another replica holds at once.
func (f *Feed) Sync(ctx context.Context) {
	if f.db.down() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := f.read(ctx, f.db.pool); err != nil {
		f.db.noteErr(connErr(err))
	}
}

// read applies the other replicas' changes after the last one read.
func (f *Feed) read(ctx context.Context, conn querier) error {
	f.readMu.Lock()
	defer f.readMu.Unlock()
	if f.last < 0 {
		return nil // the follower finds the start
	}
	for {
		last := f.last
		qctx, cancel := context.WithTimeout(ctx, queryTimeout)
		rows, err := conn.Query(qctx, `SELECT id, origin, kind, body FROM changes WHERE id > $1 ORDER BY id LIMIT 1000`, last)
		if err != nil {
			cancel()
			return err
		}
		type row struct {
			origin, kind string
			body         []byte
		}
		var got []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&last, &r.origin, &r.kind, &r.body); err != nil {
				break
			}
			got = append(got, r)
		}
		rows.Close()
		err = rows.Err()
		cancel()
		if err != nil {
			return err
		}
		f.last = last
		for _, r := range got {
			if r.origin == f.db.origin {
				continue
			}
			if h := f.handlers[r.kind]; h != nil {
				h(ctx, r.body)
			}
		}
		if len(got) < 1000 {
			return nil
		}
	}
}

// Prune deletes the feed older than keepChanges (observations older
// than keepObservations) and expired staff sessions (any replica may;
// it is idempotent).
func (d *DB) Prune(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	_, err := d.pool.Exec(ctx, `DELETE FROM changes WHERE at < now() - make_interval(secs => $1) OR (kind = $2 AND at < now() - make_interval(secs => $3))`,
		keepChanges.Seconds(), KindObservation, keepObservations.Seconds())
	if err == nil {
		_, err = d.pool.Exec(ctx, `DELETE FROM staff_sessions WHERE expires < now()`)
	}
	return err
}
