package database

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"mailsetup/server/web/console"
)

// staffSessionMaxAge bounds a stored session (the console's own bound
// is 12 hours; the row goes soon after).
const staffSessionMaxAge = 13 * time.Hour

// Sessions keeps staff sessions in the database, by the SHA-256 of
// their id (the cookie's value is never stored).
type Sessions struct{ db *DB }

// Sessions returns the staff session store.
func (d *DB) Sessions() *Sessions { return &Sessions{db: d} }

func tokenHash(id string) string {
	h := sha256.Sum256([]byte(id))
	return hex.EncodeToString(h[:])
}

type storedBody struct {
	User    string    `json:"user"`
	CSRF    string    `json:"csrf"`
	Created time.Time `json:"created"`
}

// Save stores a session at sign-in.
func (s *Sessions) Save(ctx context.Context, st console.StoredSession) error {
	body, _ := json.Marshal(storedBody{User: st.User, CSRF: st.CSRF, Created: st.Created})
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	_, err := s.db.pool.Exec(ctx, `INSERT INTO staff_sessions (token_hash, body, expires) VALUES ($1, $2, $3)`,
		tokenHash(st.ID), body, st.Created.Add(staffSessionMaxAge))
	s.db.noteErr(connErr(err))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return nil
}

// Load finds a session.
func (s *Sessions) Load(ctx context.Context, id string) (console.StoredSession, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	var body []byte
	err := s.db.pool.QueryRow(ctx, `SELECT body FROM staff_sessions WHERE token_hash = $1 AND expires > now()`, tokenHash(id)).Scan(&body)
	if errors.Is(err, pgx.ErrNoRows) {
		return console.StoredSession{}, false, nil
	}
	s.db.noteErr(connErr(err))
	if err != nil {
		return console.StoredSession{}, false, err
	}
	var b storedBody
	if err := json.Unmarshal(body, &b); err != nil {
		return console.StoredSession{}, false, err
	}
	return console.StoredSession{ID: id, User: b.User, CSRF: b.CSRF, Created: b.Created}, true, nil
}

// Delete ends a session.
func (s *Sessions) Delete(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	_, err := s.db.pool.Exec(ctx, `DELETE FROM staff_sessions WHERE token_hash = $1`, tokenHash(id))
	s.db.noteErr(connErr(err))
	return err
}
