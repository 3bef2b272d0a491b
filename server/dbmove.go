package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"mailsetup/server/accounts"
	"mailsetup/server/database"
	"mailsetup/server/observe"
	"mailsetup/server/web/console"
)

// MoveReport is what `mailsetup db import` or `db export` did, part by
// part (accounts, observations, audit entries).
type MoveReport struct {
	Parts []MovePart
}

// MovePart is one part's counts (see database.Counts).
type MovePart struct {
	Name string
	database.Counts
}

// maxAuditLine bounds one line of the audit file (an entry is a few
// hundred bytes).
const maxAuditLine = 64 << 10

// MoveData copies a files-based installation's accounts, observations
// and audit log into database.url (export: the database's into the data
// directory's files). It holds the data directory's lock, so it refuses
// while a serve runs on the same data. Every part is compared first: a
// bad file, or a target holding other data (mode database.Refuse), is
// refused before anything is written; the report is then empty.
func MoveData(ctx context.Context, cfg *Config, export bool, mode database.Mode) (MoveReport, error) {
	unlock, err := lockData(cfg)
	if err != nil {
		if errors.Is(err, errLocked) {
			err = fmt.Errorf("%w: a running mailsetup serve uses these files; stop it first", err)
		}
		return MoveReport{}, err
	}
	defer unlock()
	db, err := OpenDatabase(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return MoveReport{}, err
	}
	defer db.Close()
	m := mover{cfg: cfg, db: db, export: export, mode: mode}
	pass := func(apply bool) (MoveReport, error) {
		var rep MoveReport
		for _, part := range []func(context.Context, bool) (MovePart, error){m.accounts, m.observations, m.audit} {
			p, err := part(ctx, apply)
			if err != nil {
				return rep, err
			}
			rep.Parts = append(rep.Parts, p)
		}
		return rep, nil
	}
	// Every part is compared first and nothing written, so that a
	// refusal or a bad file leaves all as it was; when there is nothing
	// to change (a second run) that is all.
	rep, err := pass(false)
	if err != nil {
		return MoveReport{}, err
	}
	for _, p := range rep.Parts {
		if p.Copied > 0 || mode == database.Replace && p.Differ+p.Extra > 0 {
			return pass(true)
		}
	}
	return rep, nil
}

type mover struct {
	cfg    *Config
	db     *database.DB
	export bool
	mode   database.Mode
}

// accounts compares and copies the accounts.
func (m mover) accounts(ctx context.Context, apply bool) (MovePart, error) {
	p := MovePart{Name: "accounts"}
	file, err := accounts.Open(AccountsPath(m.cfg))
	if err != nil {
		return p, fmt.Errorf("%s: %w", AccountsPath(m.cfg), err)
	}
	shared, closeShared, err := OpenAccounts(m.cfg)
	if err != nil {
		return p, err
	}
	defer closeShared()
	from, to := file, shared
	if m.export {
		from, to = shared, file
	}
	// Compared account by account (Each, Lookup: a shared store is not
	// read whole); an unreachable database is an error, not a "missing".
	var differ, extra []string
	err = from.Each(ctx, func(a accounts.Account) error {
		b, ok, err := to.Lookup(a.Address)
		switch {
		case err != nil:
			return err
		case !ok:
			p.Copied++
		case sameAccount(a, b):
			p.Same++
		default:
			differ = append(differ, b.Address)
		}
		return nil
	})
	if err == nil {
		err = to.Each(ctx, func(b accounts.Account) error {
			_, ok, err := from.Lookup(b.Address)
			if err == nil && !ok {
				extra = append(extra, b.Address)
			}
			return err
		})
	}
	if err != nil {
		return p, fmt.Errorf("accounts: %w", err)
	}
	p.Differ, p.Extra = int64(len(differ)), int64(len(extra))
	if m.mode == database.Refuse && len(differ)+len(extra) > 0 {
		return p, &database.DifferentError{Part: "accounts", Differ: p.Differ, Extra: p.Extra, Example: slices.Min(append(differ, extra...))}
	}
	if !apply {
		return p, nil
	}
	if m.mode == database.Replace {
		// Replaced: removed, then copied with the source's hash,
		// aliases and quota; the Maildirs are not touched.
		for _, addr := range append(differ, extra...) {
			if err := to.Remove(addr); err != nil {
				return p, fmt.Errorf("accounts: %s: %w", addr, err)
			}
		}
	}
	if _, _, err := to.Copy(from); err != nil {
		return p, fmt.Errorf("accounts: %w", err)
	}
	return p, nil
}

// sameAccount: the same password hash, aliases and quota.
func sameAccount(a, b accounts.Account) bool {
	norm := func(s []string) []string {
		out := make([]string, len(s))
		for i, x := range s {
			out[i] = strings.ToLower(x)
		}
		slices.Sort(out)
		return out
	}
	return a.PasswordHash == b.PasswordHash && a.QuotaBytes == b.QuotaBytes && slices.Equal(norm(a.Aliases), norm(b.Aliases))
}

// observations compares and copies the observations' snapshot.
func (m mover) observations(ctx context.Context, apply bool) (MovePart, error) {
	path := inDataDir(m.cfg, m.cfg.Observations.File)
	return m.part(ctx, apply, database.Observations, path, func(r io.Reader) database.Source {
		sr := observe.NewSnapshotReader(r)
		return func() (database.Row, error) {
			key, last, raw, err := sr.Next()
			if err != nil && err != io.EOF {
				err = fmt.Errorf("observations %s: %w", path, err)
			}
			return database.Row{Key: key, Last: last, Body: raw}, err
		}
	}, func(w io.Writer, next func() ([]byte, error)) error {
		days := m.cfg.Observations.RetentionDays
		sw := observe.NewSnapshotWriter(w, days, time.Now())
		var buf bytes.Buffer
		for {
			b, err := next()
			if err == io.EOF {
				return sw.Close()
			}
			if err != nil {
				return err
			}
			buf.Reset()
			if err := json.Compact(&buf, b); err != nil {
				return err
			}
			if err := sw.Add(buf.Bytes()); err != nil {
				return err
			}
		}
	})
}

// audit compares and copies the staff audit log.
func (m mover) audit(ctx context.Context, apply bool) (MovePart, error) {
	path := inDataDir(m.cfg, m.cfg.Staff.AuditLog)
	return m.part(ctx, apply, database.Audit, path, func(r io.Reader) database.Source {
		br := bufio.NewReaderSize(r, maxAuditLine)
		line := 0
		return func() (database.Row, error) {
			for {
				b, err := br.ReadSlice('\n')
				if err == io.EOF && len(b) == 0 {
					return database.Row{}, io.EOF
				}
				line++
				if err == bufio.ErrBufferFull {
					return database.Row{}, fmt.Errorf("staff.audit_log %s line %d: longer than %d bytes", path, line, maxAuditLine)
				}
				if err != nil && err != io.EOF {
					return database.Row{}, fmt.Errorf("staff.audit_log %s: %w", path, err)
				}
				if len(bytes.TrimSpace(b)) == 0 {
					continue
				}
				var e console.AuditEntry
				if err := json.Unmarshal(b, &e); err != nil {
					return database.Row{}, fmt.Errorf("staff.audit_log %s line %d: %v: %.80q", path, line, err, b)
				}
				if e.Time.IsZero() {
					return database.Row{}, fmt.Errorf("staff.audit_log %s line %d: no time: %.80q", path, line, b)
				}
				body, _ := json.Marshal(e)
				return database.Row{Last: e.Time.UnixMicro(), Body: body}, nil
			}
		}
	}, func(w io.Writer, next func() ([]byte, error)) error {
		bw := bufio.NewWriter(w)
		for {
			b, err := next()
			if err == io.EOF {
				return bw.Flush()
			}
			if err != nil {
				return err
			}
			var e console.AuditEntry
			if err := json.Unmarshal(b, &e); err != nil {
				return err
			}
			line, _ := json.Marshal(e)
			bw.Write(line)
			bw.WriteByte('\n')
		}
	})
}

// part moves one part between the file at path (read by source, written
// by write) and the database.
func (m mover) part(ctx context.Context, apply bool, p database.Part, path string,
	source func(io.Reader) database.Source, write func(io.Writer, func() ([]byte, error)) error) (MovePart, error) {
	out := MovePart{Name: p.Name}
	src := func() (database.Row, error) { return database.Row{}, io.EOF }
	f, err := os.Open(path)
	switch {
	case err == nil:
		defer f.Close()
		if fi, err := f.Stat(); err != nil {
			return out, err
		} else if fi.Size() > 0 {
			src = source(f)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return out, err
	}
	if !m.export {
		out.Counts, err = m.db.Import(ctx, p, m.mode, src, apply)
		return out, err
	}
	out.Counts, err = m.db.Export(ctx, p, m.mode, src, func(next func() ([]byte, error)) error {
		if !apply {
			return nil
		}
		return writeFileVia(path, func(w io.Writer) error { return write(w, next) })
	})
	return out, err
}

// inDataDir is a path relative to the data directory (absolute stays).
func inDataDir(cfg *Config, path string) string {
	if filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(cfg.Path(cfg.DataDir), path)
}

// writeFileVia writes a file through a temporary file in its directory,
// synced and renamed over it.
func writeFileVia(path string, fill func(io.Writer) error) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := fill(tmp); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
