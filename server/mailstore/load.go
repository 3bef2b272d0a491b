package mailstore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Loading a mailbox's state: the index (rebuilt from the Maildir when
// missing or unreadable, see rebuild.go), its torn tail, the uidvalidity
// file, and a first reconciliation with new/ and cur/ (scan.go).

// load reads the index (rebuilding it when missing or unreadable) and
// reconciles it with the directories.
func (st *mbox) load() error {
	if _, err := os.Stat(filepath.Join(st.dir, "cur")); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return st.vanished()
		}
		return fmt.Errorf("mailbox %s: %w", st.logName, err)
	}
	st.cleanTmp()
	uvf, uvErr := readUVFile(filepath.Join(st.dir, uidvalidityFile))
	idx, ok, err := st.readIndex()
	if err != nil {
		return err
	}
	if !ok {
		return st.rebuild(uvf, uvErr == nil)
	}
	st.adopt(idx, uvf, uvErr == nil)
	if idx.torn {
		st.s.log.Warn("mailstore: dropped a torn record at the end of the index", "mailbox", st.logName)
		if err := st.writeIndex(); err != nil {
			st.unload()
			return err
		}
	}
	if err := st.repairUVFile(uvf, uvErr); err != nil {
		st.unload()
		return err
	}
	if err := st.syncFull(); err != nil {
		st.unload()
		return err
	}
	return nil
}

// readIndex reads and parses the index. ok is false when it is missing or
// damaged (then it is set aside as mailsetup.index.bad) and the mailbox
// must be rebuilt.
func (st *mbox) readIndex() (idx index, ok bool, err error) {
	data, err := os.ReadFile(st.indexPath())
	switch {
	case err == nil:
		idx, err = parseIndex(data)
		if err == nil {
			return idx, true, nil
		}
		st.s.log.Warn("mailstore: index unreadable, rebuilding from the Maildir", "mailbox", st.logName, "err", err)
		if rerr := os.Rename(st.indexPath(), st.indexPath()+".bad"); rerr != nil {
			return index{}, false, fmt.Errorf("mailbox %s: setting damaged index aside: %w", st.logName, rerr)
		}
		return index{}, false, nil
	case errors.Is(err, fs.ErrNotExist):
		st.s.log.Info("mailstore: no index, rebuilding from the Maildir", "mailbox", st.logName)
		return index{}, false, nil
	}
	return index{}, false, fmt.Errorf("mailbox %s: reading index: %w", st.logName, err)
}

// adopt makes a parsed index the state, with the floor of the uidvalidity
// file (uvf, if haveUV) when both agree on the UIDVALIDITY.
func (st *mbox) adopt(idx index, uvf uvFile, haveUV bool) {
	st.uv, st.uidnext, st.recs = idx.uv, idx.uidnext, idx.recs
	st.lines, st.idxSize = idx.lines, idx.size
	st.floor = 0
	if haveUV && uvf.uv == idx.uv {
		st.floor = uvf.floor
		st.uidnext = max(st.uidnext, uvf.floor)
	}
	st.recount()
	st.loaded = true
}

// repairUVFile rewrites the uidvalidity file from the index when it is
// missing, unreadable (uvErr) or names another UIDVALIDITY.
func (st *mbox) repairUVFile(uvf uvFile, uvErr error) error {
	if uvErr == nil && uvf.uv == st.uv {
		return nil
	}
	if uvErr != nil && !errors.Is(uvErr, fs.ErrNotExist) {
		st.s.log.Warn("mailstore: uidvalidity file unreadable, rewriting it from the index", "mailbox", st.logName, "err", uvErr)
	}
	if uvErr == nil {
		st.s.log.Warn("mailstore: uidvalidity file disagrees with the index, rewriting it", "mailbox", st.logName,
			"file", uvf.uv, "index", st.uv)
	}
	if err := st.writeUVFile(st.uidnext); err != nil {
		return err
	}
	st.floor = st.uidnext
	return nil
}
