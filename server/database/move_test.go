package database_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"

	"mailsetup/internal/testkit"
	"mailsetup/server/database"
)

// rowsOf is a Source of rows.
func rowsOf(rows ...database.Row) database.Source {
	return func() (database.Row, error) {
		if len(rows) == 0 {
			return database.Row{}, io.EOF
		}
		r := rows[0]
		rows = rows[1:]
		return r, nil
	}
}

// obs is an account's observations row with a marker in its body.
func obs(key string, last int64, mark string) database.Row {
	return database.Row{Key: key, Last: last, Body: fmt.Appendf(nil, `{"key":%q,"last":%d,"mark":%q}`, key, last, mark)}
}

// tableRows is the database's observations, as "key:mark" in order.
func tableRows(t *testing.T, db *database.DB) []string {
	t.Helper()
	var out []string
	err := db.Rows(context.Background(), database.Observations, func(b []byte) error {
		var key, mark string
		var last int64
		if _, err := fmt.Sscanf(string(b), `{"key": %q, "last": %d, "mark": %q}`, &key, &last, &mark); err != nil {
			return fmt.Errorf("%s: %v", b, err)
		}
		out = append(out, key+":"+mark)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestImportModes: the database's observations against the files':
// a first import copies, a second copies nothing; different files are
// refused (nothing written) naming an example, --merge adds only what
// is missing, --replace makes the table a copy; a compare-only import
// writes nothing; export hands over the rows in order, and nothing when
// the files hold what the database does.
func TestImportModes(t *testing.T) {
	pg := testkit.StartPostgres(t)
	db := open(t, pg)
	if _, _, err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	first := []database.Row{obs("a@example.test", 10, "a1"), obs("b@example.test", 20, "b1")}
	if c, err := db.Import(ctx, database.Observations, database.Refuse, rowsOf(first...), false); err != nil || c.Copied != 2 {
		t.Fatalf("compare only: %+v %v", c, err)
	}
	if got := tableRows(t, db); len(got) != 0 {
		t.Fatalf("a compare-only import wrote %q", got)
	}
	if c, err := db.Import(ctx, database.Observations, database.Refuse, rowsOf(first...), true); err != nil || c.Copied != 2 {
		t.Fatalf("first import: %+v %v", c, err)
	}
	if c, err := db.Import(ctx, database.Observations, database.Refuse, rowsOf(first...), true); err != nil || c.Copied != 0 || c.Same != 2 {
		t.Fatalf("second import: %+v %v", c, err)
	}

	other := []database.Row{obs("a@example.test", 30, "a2"), obs("c@example.test", 5, "c1")}
	_, err := db.Import(ctx, database.Observations, database.Refuse, rowsOf(other...), true)
	var diff *database.DifferentError
	if !errors.As(err, &diff) || diff.Differ != 1 || diff.Extra != 1 || diff.Example != "a@example.test" {
		t.Fatalf("different files: %v", err)
	}
	if got := tableRows(t, db); !slices.Equal(got, []string{"a@example.test:a1", "b@example.test:b1"}) {
		t.Fatalf("after the refusal: %q", got)
	}
	if c, err := db.Import(ctx, database.Observations, database.Merge, rowsOf(other...), true); err != nil || c.Copied != 1 || c.Differ != 1 || c.Extra != 1 {
		t.Fatalf("merge: %+v %v", c, err)
	}
	if got := tableRows(t, db); !slices.Equal(got, []string{"c@example.test:c1", "a@example.test:a1", "b@example.test:b1"}) {
		t.Fatalf("after the merge: %q", got)
	}
	if c, err := db.Import(ctx, database.Observations, database.Replace, rowsOf(other...), true); err != nil || c.Differ != 1 || c.Extra != 1 {
		t.Fatalf("replace: %+v %v", c, err)
	}
	if got := tableRows(t, db); !slices.Equal(got, []string{"c@example.test:c1", "a@example.test:a2"}) {
		t.Fatalf("after the replace: %q", got)
	}

	// Export into files that hold a@ only: c@ is added, in order.
	var written []string
	write := func(next func() ([]byte, error)) error {
		for {
			b, err := next()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			written = append(written, string(b))
		}
	}
	c, err := db.Export(ctx, database.Observations, database.Refuse, rowsOf(obs("a@example.test", 30, "a2")), write)
	if err != nil || c.Copied != 1 || c.Same != 1 || len(written) != 2 || !slices.Equal([]string{written[0][:24], written[1][:24]}, []string{`{"key": "c@example.test"`, `{"key": "a@example.test"`}) {
		t.Fatalf("export: %+v %v %q", c, err, written)
	}
	written = nil
	if c, err := db.Export(ctx, database.Observations, database.Refuse, rowsOf(other[1], other[0]), write); err != nil || c.Same != 2 || written != nil {
		t.Fatalf("export into files that hold it all: %+v %v %q", c, err, written)
	}
}
