package mailstore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Writing the index file (format in index.go): appending records with one
// write and an fsync, and compacting it when dead records dominate.

// compactMin is the least number of dead records worth a compaction.
const compactMin = 64

func (st *mbox) indexPath() string { return filepath.Join(st.dir, indexFile) }

// writeIndex writes the current state as a fresh, compacted index.
func (st *mbox) writeIndex() error {
	b := encodeIndex(st.uv, st.uidnext, st.recs)
	if err := st.s.writeFileAtomic(st.indexPath(), b); err != nil {
		return fmt.Errorf("mailbox %s: writing index: %w", st.logName, err)
	}
	st.lines, st.idxSize = len(st.recs), int64(len(b))
	return nil
}

// appendLog appends n records (already applied in memory) to the index
// and fsyncs it. On failure the in-memory state is dropped, to be loaded
// again from disk.
func (st *mbox) appendLog(b []byte, n int) error {
	f, err := os.OpenFile(st.indexPath(), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			// Removed under us: write it anew; memory holds the change.
			st.s.log.Warn("mailstore: index vanished, rewriting it", "mailbox", st.logName)
			if err := st.writeIndex(); err != nil {
				st.unload()
				return err
			}
			return nil
		}
		st.unload()
		return fmt.Errorf("mailbox %s: opening index: %w", st.logName, err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = st.s.syncFile(f)
	}
	if err != nil {
		_ = f.Truncate(st.idxSize)
		_ = f.Close()
		st.unload()
		return fmt.Errorf("mailbox %s: appending to index: %w", st.logName, err)
	}
	if err := f.Close(); err != nil {
		st.unload()
		return fmt.Errorf("mailbox %s: closing index: %w", st.logName, err)
	}
	st.idxSize += int64(len(b))
	st.lines += n
	if dead := st.lines - len(st.recs); dead >= compactMin && dead > len(st.recs) {
		if err := st.writeIndex(); err != nil {
			// The log is intact; compaction can wait.
			st.s.log.Warn("mailstore: compacting index", "mailbox", st.logName, "err", err)
		}
	}
	return nil
}
