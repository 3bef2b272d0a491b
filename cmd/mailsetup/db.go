package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"mailsetup/server"
	"mailsetup/server/database"
)

// cmdDB runs the database's maintenance: `db migrate` brings the schema
// of database.url up to this binary's version (serve does the same at
// start, under the same lock); `db import` moves the data directory's
// accounts (with their hashes, aliases and quotas), observations and
// staff audit log into the database, `db export` the other way.
func cmdDB(ctx context.Context, args []string, stdout io.Writer) error {
	var (
		c              common
		merge, replace bool
	)
	fs := newFlagSet("db")
	c.flags(fs)
	fs.BoolVar(&merge, "merge", false, "add what the target lacks, keep what it holds")
	fs.BoolVar(&replace, "replace", false, "make the target a copy of the source")
	pos, err := parseArgs(fs, args)
	verb := oneOf(pos, "migrate", "import", "export")
	switch {
	case err != nil:
		return commandError("db", err)
	case merge && replace:
		return usageError{"db", "--merge and --replace exclude each other: pick one"}
	case (merge || replace) && verb == "migrate":
		return usageError{"db migrate", "--merge and --replace are for import and export"}
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
	mode := database.Refuse
	switch {
	case merge:
		mode = database.Merge
	case replace:
		mode = database.Replace
	}
	rep, err := server.MoveData(ctx, cfg, verb == "export", mode)
	where := "into the database"
	if verb == "export" {
		where = "into the data directory " + cfg.Path(cfg.DataDir)
	}
	for _, p := range rep.Parts {
		line := fmt.Sprintf("%s: %d copied %s, %d already there", p.Name, p.Copied, where, p.Same)
		switch {
		case p.Differ > 0 && mode == database.Replace:
			line += fmt.Sprintf(", %d different replaced", p.Differ)
		case p.Differ > 0:
			line += fmt.Sprintf(", %d different kept as the target had them", p.Differ)
		}
		switch {
		case p.Extra > 0 && mode == database.Replace:
			line += fmt.Sprintf(", %d only in the target removed", p.Extra)
		case p.Extra > 0:
			line += fmt.Sprintf(", %d only in the target kept", p.Extra)
		}
		fmt.Fprintln(stdout, line)
	}
	var diff *database.DifferentError
	if errors.As(err, &diff) {
		target := "the database"
		if verb == "export" {
			target = "the data directory " + cfg.Path(cfg.DataDir)
		}
		return fmt.Errorf("db %s: nothing copied: %s already holds different %s (%d differ, %d only there; for example %s): run again with --merge to add only what it lacks, or --replace to make it a copy",
			verb, target, diff.Part, diff.Differ, diff.Extra, diff.Example)
	}
	if err != nil {
		return fmt.Errorf("db %s: %w", verb, err)
	}
	return nil
}
