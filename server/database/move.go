package database

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
)

// Moving a files-based installation's observations and audit log into
// the database (mailsetup db import) and back (db export). The files'
// side is streamed into a temporary table and compared with the
// database's in SQL, so that neither side is ever held in memory.

// moveTimeout bounds one part's import or export.
const moveTimeout = 30 * time.Minute

// Part is what is moved: the observations or the audit entries.
type Part struct {
	// Name is the part in messages ("observations").
	Name string
	// rows is the table's rows as (key, last, body).
	rows string
	// example names the row x in a message.
	example string
	// keyed: the key is the body's digest, computed in the database.
	digest bool
	// insert adds the rows of move_in m missing from the table.
	insert string
	// update replaces the table's rows that differ (--replace).
	update string
	// remove deletes the table's rows the files lack (--replace).
	remove string
}

// The parts.
var (
	// Observations: one row per account (key), its state as the
	// snapshot's JSON and the time of its latest event (last, Unix
	// seconds) that orders the accounts.
	Observations = Part{
		Name:    "observations",
		rows:    `SELECT key, last, state AS body FROM observations`,
		example: `x.key`,
		insert: `INSERT INTO observations (key, last, state) SELECT key, last, body FROM move_in m
			WHERE NOT EXISTS (SELECT 1 FROM observations o WHERE o.key = m.key)`,
		update: `UPDATE observations o SET state = m.body, last = m.last, updated = now() FROM move_in m
			WHERE o.key = m.key AND o.state <> m.body`,
		remove: `DELETE FROM observations o WHERE NOT EXISTS (SELECT 1 FROM move_in m WHERE m.key = o.key)`,
	}
	// Audit: the staff audit entries (console.AuditEntry as JSON), found
	// by their content; last orders them by time (Unix microseconds).
	Audit = Part{
		Name: "audit entries",
		rows: `SELECT digest AS key,
			coalesce((extract(epoch FROM (entry->>'time')::timestamptz) * 1000000)::bigint, 0) AS last,
			entry AS body FROM audit`,
		example: `concat_ws(' ', x.body->>'time', x.body->>'staff', x.body->>'action', x.body->>'target')`,
		digest:  true,
		insert: `INSERT INTO audit (at, entry) SELECT to_timestamp(last / 1000000.0), body FROM move_in m
			WHERE NOT EXISTS (SELECT 1 FROM audit a WHERE a.digest = m.key) ORDER BY last`,
		remove: `DELETE FROM audit a WHERE NOT EXISTS (SELECT 1 FROM move_in m WHERE m.key = a.digest)`,
	}
)

// Mode says what to do when the target holds data the source does not.
type Mode int

// The modes.
const (
	// Refuse: the target must be empty or hold only what the source
	// holds (then the move copies what it lacks: running it twice adds
	// nothing).
	Refuse Mode = iota
	// Merge adds what the target lacks and keeps the target's version
	// of what both hold differently and what only the target holds.
	Merge
	// Replace makes the target a copy of the source.
	Replace
)

// Row is one row of a part from the files: Key is the account
// (observations; ignored for the audit), Last orders the rows, Body is
// the JSON.
type Row struct {
	Key  string
	Last int64
	Body []byte
}

// Source returns the files' rows one at a time, io.EOF after the last.
type Source func() (Row, error)

// Counts is what a move did.
type Counts struct {
	// Copied rows were missing from the target and are now there.
	Copied int64
	// Same rows were there already, unchanged.
	Same int64
	// Differ rows are in both with another content: replaced
	// (Replace) or kept as the target had them (Merge).
	Differ int64
	// Extra rows only the target had: removed (Replace) or kept.
	Extra int64

	example *string // a differing or extra row
}

// DifferentError: the target holds other data than the source and the
// mode is Refuse.
type DifferentError struct {
	Part          string
	Differ, Extra int64
	// Example names one differing or extra row.
	Example string
}

func (e *DifferentError) Error() string {
	msg := fmt.Sprintf("the target already holds different %s:", e.Part)
	if e.Differ > 0 {
		msg += fmt.Sprintf(" %d differ from the source's", e.Differ)
	}
	if e.Extra > 0 {
		if e.Differ > 0 {
			msg += ","
		}
		msg += fmt.Sprintf(" %d are not in the source", e.Extra)
	}
	return msg + fmt.Sprintf(" (for example %s)", e.Example)
}

// errCompared rolls back a comparison.
var errCompared = errors.New("compared only")

// Import copies the files' rows (src) into the database's part p; with
// apply false it only compares (and refuses as it would).
func (d *DB) Import(ctx context.Context, p Part, mode Mode, src Source, apply bool) (Counts, error) {
	var c Counts
	err := d.move(ctx, p, src, func(tx pgx.Tx) error {
		var err error
		// The files are the source, the database the target.
		if c, err = compare(ctx, tx, p, false); err != nil {
			return err
		}
		if err := check(p, mode, c); err != nil {
			return err
		}
		if !apply {
			return errCompared
		}
		if mode == Replace {
			if _, err := tx.Exec(ctx, p.remove); err != nil {
				return err
			}
			if p.update != "" {
				if _, err := tx.Exec(ctx, p.update); err != nil {
					return err
				}
			}
		}
		_, err = tx.Exec(ctx, p.insert)
		return err
	})
	if errors.Is(err, errCompared) {
		err = nil
	}
	return c, err
}

// Export compares the database's part p with the files' rows (src) and,
// when the files need a change, calls write with every row they should
// hold afterwards (next returns io.EOF after the last), in order. write
// is not called when the files hold what the database holds already.
func (d *DB) Export(ctx context.Context, p Part, mode Mode, src Source, write func(next func() ([]byte, error)) error) (Counts, error) {
	var c Counts
	err := d.move(ctx, p, src, func(tx pgx.Tx) error {
		var err error
		// The database is the source, the files the target.
		if c, err = compare(ctx, tx, p, true); err != nil {
			return err
		}
		if err := check(p, mode, c); err != nil {
			return err
		}
		if c.Copied == 0 && (mode != Replace || c.Differ+c.Extra == 0) {
			return nil
		}
		q := `SELECT body FROM (SELECT body, last FROM move_in UNION ALL SELECT t.body, t.last FROM (` + p.rows + `) t
			WHERE NOT EXISTS (SELECT 1 FROM move_in m WHERE m.key = t.key)) AS r ORDER BY last`
		if mode == Replace {
			q = `SELECT body FROM (` + p.rows + `) AS r ORDER BY last`
		}
		rows, err := tx.Query(ctx, q)
		if err != nil {
			return err
		}
		defer rows.Close()
		err = write(func() ([]byte, error) {
			if !rows.Next() {
				if err := rows.Err(); err != nil {
					return nil, err
				}
				return nil, io.EOF
			}
			var b []byte
			err := rows.Scan(&b)
			return b, err
		})
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
		return err
	})
	return c, err
}

// Rows calls each with the bodies of the database's part p, in order.
func (d *DB) Rows(ctx context.Context, p Part, each func([]byte) error) error {
	ctx, cancel := context.WithTimeout(ctx, moveTimeout)
	defer cancel()
	rows, err := d.pool.Query(ctx, `SELECT body FROM (`+p.rows+`) AS r ORDER BY last`)
	if err != nil {
		d.noteErr(connErr(err))
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return err
		}
		if err := each(b); err != nil {
			return err
		}
	}
	return rows.Err()
}

// move streams src into the temporary table move_in and runs do in the
// same transaction.
func (d *DB) move(ctx context.Context, p Part, src Source, do func(pgx.Tx) error) error {
	ctx, cancel := context.WithTimeout(ctx, moveTimeout)
	defer cancel()
	return pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, fmt.Sprintf(`SET LOCAL statement_timeout = %d`, moveTimeout.Milliseconds())); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TEMP TABLE move_in (key text, last bigint NOT NULL, body jsonb NOT NULL) ON COMMIT DROP`); err != nil {
			return err
		}
		var srcErr error
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"move_in"}, []string{"key", "last", "body"}, pgx.CopyFromFunc(func() ([]any, error) {
			r, err := src()
			if err == io.EOF {
				return nil, nil
			}
			if err != nil {
				srcErr = err
				return nil, err
			}
			return []any{r.Key, r.Last, string(r.Body)}, nil
		}))
		if srcErr != nil {
			return srcErr
		}
		if err != nil {
			return err
		}
		if p.digest {
			if _, err := tx.Exec(ctx, `UPDATE move_in SET key = md5(body::text)`); err != nil {
				return err
			}
		}
		// A key twice in the files: the later row wins, as when the
		// files are loaded.
		if _, err := tx.Exec(ctx, `DELETE FROM move_in a USING move_in b WHERE a.key = b.key AND a.ctid < b.ctid`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE INDEX ON move_in (key); ANALYZE move_in`); err != nil {
			return err
		}
		return do(tx)
	})
}

// compare counts the rows of move_in against the table's. fromDB: the
// table is the source and move_in the target.
func compare(ctx context.Context, tx pgx.Tx, p Part, fromDB bool) (Counts, error) {
	var c Counts
	var inBoth, onlyFiles, onlyDB int64
	var exDiffer, exFiles, exDB *string
	// The table's rows as a subquery each time (not a CTE, which would
	// be materialized whole), so that its key's index is used.
	t := `(` + p.rows + `)`
	err := tx.QueryRow(ctx, `SELECT b.same, b.differ, b.example, f.n, f.example, d.n, d.example FROM
		(SELECT count(*) FILTER (WHERE t.body = x.body) AS same, count(*) FILTER (WHERE t.body <> x.body) AS differ,
			min(`+p.example+`) FILTER (WHERE t.body <> x.body) AS example
			FROM move_in x JOIN `+t+` t ON t.key = x.key) AS b,
		(SELECT count(*) AS n, min(`+p.example+`) AS example FROM move_in x
			WHERE NOT EXISTS (SELECT 1 FROM `+t+` t WHERE t.key = x.key)) AS f,
		(SELECT count(*) AS n, min(`+p.example+`) AS example FROM `+t+` x
			WHERE NOT EXISTS (SELECT 1 FROM move_in m WHERE m.key = x.key)) AS d`).
		Scan(&c.Same, &inBoth, &exDiffer, &onlyFiles, &exFiles, &onlyDB, &exDB)
	if err != nil {
		return c, err
	}
	c.Differ = inBoth
	c.Copied, c.Extra = onlyFiles, onlyDB
	c.example = exDiffer
	if fromDB {
		c.Copied, c.Extra = onlyDB, onlyFiles
		if c.example == nil {
			c.example = exFiles
		}
	} else if c.example == nil {
		c.example = exDB
	}
	return c, nil
}

// check refuses a move into a target holding other data in Refuse mode.
func check(p Part, mode Mode, c Counts) error {
	if mode != Refuse || c.Differ+c.Extra == 0 {
		return nil
	}
	ex := "?"
	if c.example != nil {
		ex = *c.example
	}
	return &DifferentError{Part: p.Name, Differ: c.Differ, Extra: c.Extra, Example: ex}
}
