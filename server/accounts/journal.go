package accounts

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// The files store: the snapshot (accounts.json) holds every account as
// of change number seq; the journal (accounts.journal) holds the
// changes after it, one JSON line each ({"seq":N,"put":{account}} or
// {"seq":N,"del":"address"}), written with one write and an fsync
// before the change is acknowledged. A change is a whole account's new
// state, so replaying a line twice does no harm, and lines up to the
// snapshot's seq are skipped. Writers take an exclusive flock(2) on
// accounts.lock; readers take none: they read complete lines only (a
// line without its newline is a write in progress or a crash's torn
// tail, which the next writer cuts off) and the files are replaced by
// rename, never rewritten in place.

// file is the snapshot's format. Version 1 without seq is the format
// of every earlier release: it opens unchanged.
type file struct {
	Version int `json:"version"`
	// Seq is the number of the last journal change the snapshot holds.
	Seq      int64     `json:"seq,omitempty"`
	Accounts []Account `json:"accounts"`
}

// entry is one journal line.
type entry struct {
	Seq int64    `json:"seq"`
	Put *Account `json:"put,omitempty"`
	Del string   `json:"del,omitempty"`
}

// files is how far the files were read.
type files struct {
	seq     int64       // the last change applied
	snap    os.FileInfo // the snapshot read (nil: none)
	journal os.FileInfo // the journal read (nil: none)
	off     int64       // bytes of the journal applied (complete lines)
}

// defaultCompactAt is the smallest journal that is compacted.
const defaultCompactAt = 1 << 20

// errGap: the journal was replaced while being followed; read all again.
var errGap = errors.New("accounts journal replaced while reading")

// Open reads the account files at path (the snapshot; the journal and
// lock file are beside it); a missing snapshot is an empty store.
func Open(path string) (*Store, error) {
	s := &Store{path: path, st: newState(), compactAt: defaultCompactAt}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// JournalPath is the journal beside the snapshot at path.
func JournalPath(path string) string { return strings.TrimSuffix(path, ".json") + ".journal" }

// lockPath is the writers' lock file beside the snapshot at path.
func lockPath(path string) string { return strings.TrimSuffix(path, ".json") + ".lock" }

// Reload reads what other processes changed since the last read: the
// new journal lines only, or everything after a compaction.
func (s *Store) Reload() error {
	if s.shared != nil {
		return nil // kept current by Refresh
	}
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	return s.reload(false)
}

// reload brings s.st up to date with the files; repair (a writer,
// under the lock) cuts a torn last line off the journal. Called with
// reloadMu held.
func (s *Store) reload(repair bool) error {
	for range 3 {
		snap, err := os.Stat(s.path)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("reading accounts: %w", err)
		}
		s.mu.RLock()
		cur := s.st.files
		s.mu.RUnlock()
		if sameFile(cur.snap, snap) {
			err := s.readJournal(s.st, repair, true, false)
			if !errors.Is(err, errGap) {
				return err
			}
		}
		fresh, err := readSnapshot(s.path, snap)
		if errors.Is(err, errGap) {
			continue
		} else if err != nil {
			return err
		}
		err = s.readJournal(fresh, repair, false, false)
		if errors.Is(err, errGap) {
			if now, _ := os.Stat(s.path); !sameFile(snap, now) {
				continue // a compaction ran meanwhile: read the new snapshot
			}
			// The same snapshot and a journal that starts after it: a
			// copy of the two files taken while a compaction ran (a
			// backup). Its missing changes are in no file; read what is.
			err = s.readJournal(fresh, repair, false, true)
		}
		if err != nil {
			return err
		}
		s.mu.Lock()
		s.st = fresh
		s.mu.Unlock()
		return nil
	}
	return errors.New("reading accounts: the files changed three times while being read; try again")
}

// sameFile reports whether a and b are the same unchanged file (both
// nil: both missing).
func sameFile(a, b os.FileInfo) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// readSnapshot reads the snapshot whose stat is info (nil: missing).
func readSnapshot(path string, info os.FileInfo) (*state, error) {
	st := newState()
	if info == nil {
		return st, nil
	}
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, errGap
		}
		return nil, fmt.Errorf("reading accounts: %w", err)
	}
	defer f.Close()
	if now, err := f.Stat(); err != nil || !sameFile(info, now) {
		return nil, errGap // replaced between stat and open
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("reading accounts: %w", err)
	}
	var fl file
	if err := json.Unmarshal(data, &fl); err != nil {
		return nil, fmt.Errorf("reading accounts %s: %w", path, err)
	}
	st.accounts = make(map[string]*Account, len(fl.Accounts))
	for i := range fl.Accounts {
		st.put(fl.Accounts[i])
	}
	st.seq, st.snap = fl.Seq, info
	return st, nil
}

// readJournal applies the journal's complete lines after st.off (from
// the start for a journal other than the one st read). live: st is
// s.st, changed under s.mu. errGap: a change is missing (the journal
// was replaced by a compaction); read the snapshot again; gapOK reads
// on over it.
func (s *Store) readJournal(st *state, repair, live, gapOK bool) error {
	jpath := JournalPath(s.path)
	if live {
		s.mu.RLock()
	}
	known, off, seq := st.journal, st.off, st.seq
	if live {
		s.mu.RUnlock()
	}
	if info, err := os.Stat(jpath); err == nil && known != nil && sameFile(known, info) && info.Size() == off {
		return nil // nothing new: one stat per call on the hot path
	}
	f, err := os.OpenFile(jpath, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		if known != nil && off > 0 {
			return errGap
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading accounts journal: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("reading accounts journal: %w", err)
	}
	if known == nil || !os.SameFile(known, info) || info.Size() < off {
		off = 0
	}
	data := make([]byte, info.Size()-off)
	if _, err := io.ReadFull(io.NewSectionReader(f, off, int64(len(data))), data); err != nil {
		return fmt.Errorf("reading accounts journal: %w", err)
	}
	complete := data[:bytes.LastIndexByte(data, '\n')+1]
	var entries []entry
	for rest, at := complete, off; len(rest) > 0; {
		line, next, _ := bytes.Cut(rest, []byte{'\n'})
		var e entry
		if err := json.Unmarshal(line, &e); err != nil || e.Seq <= 0 || (e.Put == nil) == (e.Del == "") {
			return fmt.Errorf("accounts journal %s: bad line at byte %d: want {\"seq\":N,\"put\":{...}} or {\"seq\":N,\"del\":\"address\"}", jpath, at)
		}
		at += int64(len(line) + 1)
		rest = next
		switch {
		case e.Seq <= seq:
			continue // in the snapshot already, or read before
		case e.Seq != seq+1 && !gapOK:
			return errGap
		}
		seq = e.Seq
		entries = append(entries, e)
	}
	end := off + int64(len(complete))
	if repair && info.Size() > end {
		// A torn line from a writer that crashed before its fsync
		// returned: never acknowledged, cut off before appending.
		if err := f.Truncate(end); err != nil {
			return fmt.Errorf("repairing accounts journal: %w", err)
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("repairing accounts journal: %w", err)
		}
		if info, err = f.Stat(); err != nil {
			return fmt.Errorf("repairing accounts journal: %w", err)
		}
	}
	if live {
		s.mu.Lock()
		defer s.mu.Unlock()
		if st.seq != seqBefore(entries, st.seq) {
			return errGap
		}
	}
	st.apply(entries)
	st.journal, st.off = info, end
	return nil
}

// seqBefore is the seq the entries follow (cur when there are none).
func seqBefore(entries []entry, cur int64) int64 {
	if len(entries) == 0 {
		return cur
	}
	return entries[0].Seq - 1
}

// change makes one change in the files: under the writers' lock, read
// what other writers did, let fn decide the new states (it must not
// change st), append them to the journal with an fsync (then the change
// is durable and acknowledged), apply them, and compact the journal
// when it has grown.
func (s *Store) change(fn func(st *state) ([]entry, error)) error {
	if err := os.MkdirAll(filepath.Dir(s.path), 0o700); err != nil {
		return fmt.Errorf("writing accounts: %w", err)
	}
	unlock, err := lockExclusive(lockPath(s.path))
	if err != nil {
		return fmt.Errorf("writing accounts: %w", err)
	}
	defer unlock()
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	if err := s.reload(true); err != nil {
		return err
	}
	s.mu.RLock()
	entries, err := fn(s.st)
	seq := s.st.seq
	s.mu.RUnlock()
	if err != nil || len(entries) == 0 {
		return err
	}
	var buf bytes.Buffer
	for i := range entries {
		seq++
		entries[i].Seq = seq
		line, err := json.Marshal(entries[i])
		if err != nil {
			return err
		}
		buf.Write(line)
		buf.WriteByte('\n')
	}
	info, err := appendSync(JournalPath(s.path), buf.Bytes())
	if err != nil {
		return fmt.Errorf("writing accounts journal: %w", err)
	}
	s.mu.Lock()
	s.st.apply(entries)
	s.st.journal, s.st.off = info, info.Size()
	snapSize := int64(0)
	if s.st.snap != nil {
		snapSize = s.st.snap.Size()
	}
	compact := s.st.snap == nil || (info.Size() > s.compactAt && info.Size() > snapSize/2)
	s.mu.Unlock()
	if compact {
		// The change is durable already: a failed compaction is
		// tried again at the next change.
		_ = s.compact()
	}
	return nil
}

// appendSync appends data to path (created 0600) with one write and
// an fsync (and of the directory when the file is new).
func appendSync(path string, data []byte) (os.FileInfo, error) {
	_, statErr := os.Stat(path)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		return nil, err
	}
	if err := f.Sync(); err != nil {
		return nil, err
	}
	if errors.Is(statErr, os.ErrNotExist) {
		if err := syncDir(filepath.Dir(path)); err != nil {
			return nil, err
		}
	}
	return f.Stat()
}

// compact writes the snapshot with every account and replaces the
// journal with an empty one, each atomically (temporary file, fsync,
// rename, fsync of the directory). A crash between the two leaves a
// journal whose lines the new snapshot holds: they are skipped by seq.
// Called with reloadMu and the writers' lock held.
func (s *Store) compact() error {
	s.mu.RLock()
	list := make([]*Account, 0, len(s.st.accounts))
	for _, a := range s.st.accounts {
		list = append(list, a)
	}
	seq := s.st.seq
	s.mu.RUnlock()
	slices.SortFunc(list, func(a, b *Account) int { return strings.Compare(a.Address, b.Address) })
	err := writeFileAtomic(s.path, func(w io.Writer) error {
		// The layout of json.MarshalIndent(file, "", "  "), written one
		// account at a time.
		bw := bufio.NewWriterSize(w, 1<<20)
		fmt.Fprintf(bw, "{\n  \"version\": 1,\n  \"seq\": %d,\n  \"accounts\": [", seq)
		for i, a := range list {
			b, err := json.MarshalIndent(a, "    ", "  ")
			if err != nil {
				return err
			}
			if i > 0 {
				bw.WriteByte(',')
			}
			bw.WriteString("\n    ")
			bw.Write(b)
		}
		if len(list) > 0 {
			bw.WriteString("\n  ")
		}
		bw.WriteString("]\n}\n")
		return bw.Flush()
	})
	if err != nil {
		return fmt.Errorf("writing accounts: %w", err)
	}
	snap, err := os.Stat(s.path)
	if err != nil {
		return err
	}
	jpath := JournalPath(s.path)
	if err := writeFileAtomic(jpath, func(io.Writer) error { return nil }); err != nil {
		return fmt.Errorf("writing accounts journal: %w", err)
	}
	journal, err := os.Stat(jpath)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.st.snap, s.st.journal, s.st.off = snap, journal, 0
	s.mu.Unlock()
	return nil
}

// writeFileAtomic replaces path with what write writes: temporary
// file, fsync, rename, fsync of the directory, so a crash leaves the
// old or the new file and a reader never sees half of one.
func writeFileAtomic(path string, write func(io.Writer) error) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := write(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
