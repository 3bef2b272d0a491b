// Package database keeps the state that several replicas share in
// PostgreSQL (database.url): the accounts and aliases, the login
// throttles, staff sessions and the observations. It owns the connection
// (pgx), the versioned schema and its migrations (run once under an
// advisory lock, however many replicas start together), and the change
// feed: every shared write appends a row to the table changes and
// notifies; each replica follows the feed (LISTEN, and a poll every
// couple of seconds that also catches up after an outage) and applies the
// other replicas' changes to its local copies, so the hot paths (a cached
// login, a console page) never wait for the database.
//
// Imports accounts, auth and events (the state it carries), pgx and the
// standard library.
package database

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Timeouts of every database operation: no library default is used.
const (
	connectTimeout = 5 * time.Second
	queryTimeout   = 10 * time.Second
)

// ErrUnavailable: the database cannot be reached; the change was not
// made.
var ErrUnavailable = errors.New("the database is unavailable")

// Options say where the database is.
type Options struct {
	// URL is a postgres:// URL (or key=value connection string).
	URL string
	// PasswordFile, when set, holds the password (its first line), so it
	// need not be in the URL or the config file.
	PasswordFile string
	Logger       *slog.Logger
}

// DB is one replica's connection to the shared database.
type DB struct {
	pool   *pgxpool.Pool
	log    *slog.Logger
	origin string // this replica's id in the change feed

	mu       sync.Mutex
	downErr  error     // the last failure, nil when healthy
	downFrom time.Time // when it started failing
}

// Open connects (the first connection is made here, so a wrong URL or
// password is reported at start).
func Open(ctx context.Context, opts Options) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("database.url: %w", Redact(err, opts.URL))
	}
	if opts.PasswordFile != "" {
		b, err := os.ReadFile(opts.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("database.password_file: %w", err)
		}
		pw, _, _ := strings.Cut(string(b), "\n")
		cfg.ConnConfig.Password = strings.TrimRight(pw, "\r")
	}
	cfg.ConnConfig.ConnectTimeout = connectTimeout
	cfg.MaxConns = 8
	cfg.MaxConnIdleTime = time.Minute
	cfg.HealthCheckPeriod = 5 * time.Second
	if cfg.ConnConfig.RuntimeParams == nil {
		cfg.ConnConfig.RuntimeParams = map[string]string{}
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = "mailsetup"
	cfg.ConnConfig.RuntimeParams["statement_timeout"] = "10000"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("database %s: %w", cfg.ConnConfig.Host, err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	id := make([]byte, 8)
	rand.Read(id)
	return &DB{pool: pool, log: log, origin: hex.EncodeToString(id)}, nil
}

// Redact keeps a password in the URL out of an error message.
func Redact(err error, url string) error {
	msg := err.Error()
	if i := strings.Index(url, "://"); i >= 0 {
		if at := strings.LastIndex(url, "@"); at > i {
			if c := strings.Index(url[i+3:at], ":"); c >= 0 {
				msg = strings.ReplaceAll(msg, url[i+3+c+1:at], "xxxxx")
			}
		}
	}
	return errors.New(msg)
}

// Close closes the connections.
func (d *DB) Close() { d.pool.Close() }

// Health is "" when the database answers, else the reason the replica
// is degraded.
func (d *DB) Health() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.downErr == nil {
		return ""
	}
	return fmt.Sprintf("database unreachable since %s: %v", d.downFrom.UTC().Format(time.RFC3339), d.downErr)
}

// noteErr records the outcome of a database operation for Health.
func (d *DB) noteErr(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case err == nil:
		if d.downErr != nil {
			d.log.Info("database reachable again", "down_for", time.Since(d.downFrom).Round(time.Second))
		}
		d.downErr = nil
	case d.downErr == nil:
		d.downErr, d.downFrom = err, time.Now()
		d.log.Warn("database unreachable", "err", err)
	default:
		d.downErr = err
	}
}

// down reports whether the last operation failed.
func (d *DB) down() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.downErr != nil
}
