package server

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"mailsetup/server/accounts"
	"mailsetup/server/database"
)

// DatabaseConfig puts the state several replicas share in PostgreSQL.
// Without URL everything stays in the data directory's files.
type DatabaseConfig struct {
	// URL is a postgres:// URL, e.g.
	// "postgres://mailsetup@db.example.net/mailsetup?sslmode=verify-full".
	URL string `toml:"url"`
	// PasswordFile holds the database password (first line), relative
	// to the config file's directory.
	PasswordFile string `toml:"password_file"`
	// AccountCache is how many accounts (and a quarter as many unknown
	// addresses) each process keeps in memory; the others are read when
	// needed. Default 100000.
	AccountCache int `toml:"account_cache"`
}

// validateDatabase checks the [database] keys without connecting.
func (c *Config) validateDatabase(add func(format string, args ...any)) {
	d := c.Database
	switch {
	case d.URL == "" && d.PasswordFile != "":
		add("database.password_file is set but database.url is not: set the URL, or remove the password file to keep the files")
	case d.URL == "":
		return
	}
	if d.AccountCache < 0 {
		add("database.account_cache = %d: want 0 (the default, %d) or more accounts", d.AccountCache, accounts.DefaultCacheSize)
	}
	if _, err := pgconn.ParseConfig(d.URL); err != nil {
		add("database.url: not a PostgreSQL URL (postgres://USER@HOST:PORT/DATABASE?sslmode=verify-full): %v", database.Redact(err, d.URL))
	}
	if d.PasswordFile != "" {
		if _, err := os.Stat(c.Path(d.PasswordFile)); err != nil {
			add("database.password_file: %v", err)
		}
	}
}

// OpenDatabase connects to database.url and brings the schema up to
// date; nil, nil without database.url.
func OpenDatabase(ctx context.Context, cfg *Config, log *slog.Logger) (*database.DB, error) {
	dc := cfg.Database
	if dc.URL == "" {
		return nil, nil
	}
	opts := database.Options{URL: dc.URL, Logger: log.With("component", "database")}
	if dc.PasswordFile != "" {
		opts.PasswordFile = cfg.Path(dc.PasswordFile)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	db, err := database.Open(ctx, opts)
	if err != nil {
		return nil, err
	}
	if _, _, err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("database: %w", err)
	}
	return db, nil
}

// OpenAccounts opens the accounts: in the database with database.url,
// else the data directory's file. close releases the database.
func OpenAccounts(cfg *Config) (store *accounts.Store, close func(), err error) {
	if cfg.Database.URL == "" {
		store, err = accounts.Open(AccountsPath(cfg))
		return store, func() {}, err
	}
	db, err := OpenDatabase(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, nil, err
	}
	return accounts.OpenShared(db.Accounts(), cfg.Database.AccountCache), db.Close, nil
}

// openShared connects the server to the database (database.url): the
// accounts come from it and the change feed carries the replicas'
// changes. A no-op without database.url.
func (s *Server) openShared() (*accounts.Store, error) {
	db, err := OpenDatabase(context.Background(), s.cfg, s.log)
	if db == nil {
		return nil, err
	}
	s.db, s.feed = db, db.NewFeed()
	store := accounts.OpenShared(db.Accounts(), s.cfg.Database.AccountCache)
	s.feed.FollowAccounts(store)
	return store, nil
}

// runShared follows the change feed until ctx ends;
// done is closed when the last queued changes were written.
func (s *Server) runShared(ctx context.Context) (done <-chan struct{}) {
	d := make(chan struct{})
	if s.db == nil {
		close(d)
		return d
	}
	go func() {
		defer close(d)
		s.feed.Run(ctx, database.KindThrottle)
	}()
	return d
}

// degraded is why the replica is degraded ("" when it is not).
func (s *Server) degraded() string {
	if s.db == nil {
		return ""
	}
	why := s.db.Health()
	if n, dropped := s.feed.Pending(); n > 0 && why != "" {
		why += fmt.Sprintf("; %d changes queued for it", n)
		if dropped > 0 {
			why += fmt.Sprintf(", %d dropped", dropped)
		}
	}
	return why
}
