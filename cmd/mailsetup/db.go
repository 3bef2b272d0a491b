package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"mailsetup/server"
	"mailsetup/server/accounts"
)

// cmdDB runs the database's maintenance: `db migrate` brings the schema
// of database.url up to this binary's version (serve does the same at
// start, under the same lock); `db import` copies the data directory's
// accounts (with their hashes, aliases and quotas) into the database,
// `db export` the other way.
func cmdDB(ctx context.Context, args []string, stdout io.Writer) error {
	var c common
	fs := newFlagSet("db")
	c.flags(fs)
	pos, err := parseArgs(fs, args)
	verb := oneOf(pos, "migrate", "import", "export")
	switch {
	case err != nil:
		return commandError("db", err)
	case len(pos) == 0:
		return usageError{"db", "want an action: migrate, import, export"}
	case verb == "":
		return usageError{"db", fmt.Sprintf("unknown action %q: want migrate, import or export", pos[0])}
	case len(pos) > 1:
		return usageError{"db " + verb, fmt.Sprintf("unexpected argument %q", pos[1])}
	}
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	if cfg.Database.URL == "" {
		return fmt.Errorf("db %s: the config has no database.url: the accounts and the rest are in the data directory's files", verb)
	}
	if verb == "migrate" {
		db, err := server.OpenDatabase(ctx, cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			return fmt.Errorf("db migrate: %w", err)
		}
		defer db.Close()
		fmt.Fprintf(stdout, "database schema at version %d\n", db.SchemaVersion(ctx))
		return nil
	}
	// import: the data directory's accounts file into the database;
	// export: the database's accounts into the file.
	file, err := accounts.Open(server.AccountsPath(cfg))
	if err != nil {
		return fmt.Errorf("db %s: %w", verb, err)
	}
	shared, closeDB, err := server.OpenAccounts(cfg)
	if err != nil {
		return fmt.Errorf("db %s: %w", verb, err)
	}
	defer closeDB()
	from, to, where := file, shared, "into the database"
	if verb == "export" {
		from, to, where = shared, file, "into "+server.AccountsPath(cfg)
	}
	copied, skipped, err := to.Copy(from)
	fmt.Fprintf(stdout, "%d accounts copied %s, %d already there and left as they were\n", copied, where, skipped)
	if err != nil {
		return fmt.Errorf("db %s: %w", verb, err)
	}
	return nil
}
