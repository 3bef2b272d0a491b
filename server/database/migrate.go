package database

import (
	"context"
	"fmt"
	"time"
)

// migrations are the schema's versions, in order: version i+1 is
// migrations[i]. Never edit one that has shipped; append a new one.
var migrations = []string{
	// 1: accounts and aliases, the change feed, staff sessions.
	`CREATE TABLE accounts (
		key text PRIMARY KEY,
		address text NOT NULL,
		password_hash text NOT NULL,
		quota_bytes bigint NOT NULL DEFAULT 0,
		created timestamptz NOT NULL,
		changed timestamptz NOT NULL
	);
	CREATE TABLE aliases (
		alias text PRIMARY KEY,
		address text NOT NULL,
		account text NOT NULL REFERENCES accounts(key) ON DELETE CASCADE
	);
	CREATE INDEX aliases_account ON aliases (account);
	CREATE TABLE changes (
		id bigserial PRIMARY KEY,
		at timestamptz NOT NULL DEFAULT now(),
		origin text NOT NULL,
		kind text NOT NULL,
		body jsonb NOT NULL
	);
	CREATE INDEX changes_at ON changes (at);
	CREATE INDEX changes_kind_at ON changes (kind, at);
	CREATE TABLE staff_sessions (
		token_hash text PRIMARY KEY,
		body jsonb NOT NULL,
		expires timestamptz NOT NULL
	);
	CREATE INDEX staff_sessions_expires ON staff_sessions (expires);`,
	// 2: the staff audit log of every replica.
	`CREATE TABLE audit (
		id bigserial PRIMARY KEY,
		at timestamptz NOT NULL DEFAULT now(),
		entry jsonb NOT NULL
	);`,
	// 3: the observations kept (mailsetup db import, and each replica's
	// start), the audit entries found by their content (so that an
	// import run twice adds nothing the second time), and the secrets
	// every replica shares (the web forms' signing key).
	`CREATE TABLE observations (
		key text PRIMARY KEY,
		last bigint NOT NULL,
		state jsonb NOT NULL,
		updated timestamptz NOT NULL DEFAULT now()
	);
	CREATE INDEX observations_last ON observations (last);
	ALTER TABLE audit ADD COLUMN digest text GENERATED ALWAYS AS (md5(entry::text)) STORED;
	CREATE INDEX audit_digest ON audit (digest);
	CREATE TABLE secrets (
		name text PRIMARY KEY,
		value bytea NOT NULL
	);`,
}

// Version is the schema version this binary wants.
func Version() int { return len(migrations) }

// Lock ids (pg_advisory_lock's key space is shared by the database's
// users: these are "mailsetup" in ASCII plus a number).
const (
	migrateLock int64 = 0x6d61696c7365_01
	writeLock   int64 = 0x6d61696c7365_02
)

// Migrate brings the schema to Version, under an advisory lock so that
// replicas starting together run each migration once; it returns the
// versions before and after. A database newer than this binary is an
// error (an older replica must not write to a schema it does not know).
func (d *DB) Migrate(ctx context.Context) (from, to int, err error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	conn, err := d.pool.Acquire(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrateLock); err != nil {
		return 0, 0, fmt.Errorf("migration lock: %w", err)
	}
	defer conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, migrateLock)
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version int PRIMARY KEY, applied timestamptz NOT NULL DEFAULT now())`); err != nil {
		return 0, 0, fmt.Errorf("schema_version: %w", err)
	}
	if err := conn.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_version`).Scan(&from); err != nil {
		return 0, 0, err
	}
	if from > len(migrations) {
		return from, from, fmt.Errorf("the database's schema is version %d, newer than this binary's %d: upgrade mailsetup", from, len(migrations))
	}
	for v := from + 1; v <= len(migrations); v++ {
		tx, err := conn.Begin(ctx)
		if err != nil {
			return from, v - 1, err
		}
		if _, err := tx.Exec(ctx, migrations[v-1]); err != nil {
			tx.Rollback(ctx)
			return from, v - 1, fmt.Errorf("migration %d: %w", v, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_version (version) VALUES ($1)`, v); err != nil {
			tx.Rollback(ctx)
			return from, v - 1, fmt.Errorf("migration %d: %w", v, err)
		}
		if err := tx.Commit(ctx); err != nil {
			return from, v - 1, fmt.Errorf("migration %d: %w", v, err)
		}
		d.log.Info("database migrated", "version", v)
	}
	return from, len(migrations), nil
}

// SchemaVersion is the database's schema version (0 when unknown).
func (d *DB) SchemaVersion(ctx context.Context) int {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	var v int
	_ = d.pool.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_version`).Scan(&v)
	return v
}
