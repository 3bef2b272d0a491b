package mailstore

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// Durable file operations: every write that must survive a crash goes
// through these, and Options.NoSync turns their fsyncs off.

// syncFile fsyncs f unless NoSync.
func (s *Store) syncFile(f *os.File) error {
	if s.nosync {
		return nil
	}
	return f.Sync()
}

// syncDir fsyncs a directory so that entries created, renamed or removed
// in it are durable.
func (s *Store) syncDir(dir string) error {
	if s.nosync {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("opening directory to sync: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("syncing directory: %w", err)
	}
	return nil
}

// writeFileAtomic replaces path with data: temporary file, fsync, rename,
// fsync of the directory.
func (s *Store) writeFileAtomic(path string, data []byte) error {
	return s.replaceFile(path+".tmp", path, time.Time{}, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// replaceFile writes a file at tmp with write, sets its modification
// time to mtime unless zero, fsyncs it, renames it over path and fsyncs
// path's directory: a crash leaves the old file or the new one, whole.
func (s *Store) replaceFile(tmp, path string, mtime time.Time, write func(io.Writer) error) error {
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	err = write(f)
	if err == nil && !mtime.IsZero() {
		err = os.Chtimes(tmp, mtime, mtime) // before the sync, so that it is durable too
	}
	if err == nil {
		err = s.syncFile(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return s.syncDir(filepath.Dir(path))
}

// readDirNames lists a directory without sorting or stat calls.
func readDirNames(dir string) ([]string, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.Readdirnames(-1)
}
