package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"mailsetup/server"
)

// cmdDB runs the database's maintenance: `db migrate` brings the schema
// of database.url up to this binary's version (serve does the same at
// start, under the same lock).
func cmdDB(ctx context.Context, args []string, stdout io.Writer) error {
	var c common
	fs := newFlagSet("db")
	c.flags(fs)
	pos, err := parseArgs(fs, args)
	verb := oneOf(pos, "migrate")
	switch {
	case err != nil:
		return commandError("db", err)
	case len(pos) == 0:
		return usageError{"db", "want an action: migrate"}
	case verb == "":
		return usageError{"db", fmt.Sprintf("unknown action %q: want migrate", pos[0])}
	case len(pos) > 1:
		return usageError{"db migrate", fmt.Sprintf("unexpected argument %q", pos[1])}
	}
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	if cfg.Database.URL == "" {
		return fmt.Errorf("db migrate: the config has no database.url: the accounts and the rest are in the data directory's files")
	}
	db, err := server.OpenDatabase(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return fmt.Errorf("db migrate: %w", err)
	}
	defer db.Close()
	fmt.Fprintf(stdout, "database schema at version %d\n", db.SchemaVersion(ctx))
	return nil
}
