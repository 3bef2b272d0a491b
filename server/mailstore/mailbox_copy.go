package mailstore

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// COPY (RFC 3501 §6.4.7, COPYUID RFC 4315): copies are new messages with
// new UIDLs, hard-linked (or copied) into the destination's tmp/ without
// any lock, then placed under the destination's lock alone.

// copyItem is one message on its way to another mailbox.
type copyItem struct {
	src  uint32
	r    rec    // the source record
	uniq string // unique part of the copy's name
	tmp  string // the copy in dst's tmp/; "" once placed
}

// CopyTo copies the messages uids (absent ones are skipped) to dst and
// returns (source UID, destination UID) pairs in source UID order, for
// COPYUID (RFC 4315). Copies are new messages with new UIDLs; flags and
// internal dates are kept. Files are hard-linked when possible, else
// copied and fsynced. dst may be m.
func (m *Mailbox) CopyTo(dst *Mailbox, uids []uint32) ([][2]uint32, error) {
	// Collect under the source lock only, and link into dst's tmp/
	// without any lock: the two locks are never held together.
	items, err := m.copyItems(uids)
	if err != nil || len(items) == 0 {
		return nil, err
	}
	ready, err := m.stageCopies(dst, items)
	if err != nil || len(ready) == 0 {
		return nil, err
	}
	return dst.placeCopies(ready)
}

// copyItems returns the records of those of uids present in m, in UID
// order.
func (m *Mailbox) copyItems(uids []uint32) ([]copyItem, error) {
	idxs, err := m.lockIndexes(uids)
	if err != nil {
		return nil, err
	}
	defer m.unlock()
	var items []copyItem
	for _, i := range idxs {
		items = append(items, copyItem{src: m.st.recs[i].uid, r: m.st.recs[i]})
	}
	return items, nil
}

// stageCopies puts a copy of each item into dst's tmp/ and returns those
// staged; items expunged meanwhile are skipped. On error nothing is left
// in tmp/.
func (m *Mailbox) stageCopies(dst *Mailbox, items []copyItem) ([]copyItem, error) {
	now := m.u.s.now()
	var ready []copyItem
	for _, it := range items {
		it.uniq = m.u.s.newUnique(now)
		it.tmp = filepath.Join(dst.st.dir, "tmp", it.uniq)
		err := m.linkOrCopy(&it.r, it.tmp)
		if errors.Is(err, ErrNoMessage) {
			continue // expunged meanwhile
		}
		if err != nil {
			_ = os.Remove(it.tmp)
			removeStaged(ready)
			return nil, fmt.Errorf("mailbox %s: copying uid %d to %s: %w", m.name, it.src, dst.name, err)
		}
		ready = append(ready, it)
	}
	return ready, nil
}

// removeStaged removes the copies still in tmp/.
func removeStaged(items []copyItem) {
	for _, it := range items {
		if it.tmp != "" {
			_ = os.Remove(it.tmp)
		}
	}
}

// placeCopies gives the staged copies the next UIDs of m, renames them
// into new/ (cur/ with flags), makes that durable and appends their
// records. It returns the (source UID, new UID) pairs.
func (m *Mailbox) placeCopies(ready []copyItem) ([][2]uint32, error) {
	if err := m.lock(); err != nil {
		removeStaged(ready)
		return nil, err
	}
	defer m.unlock()
	st := m.st
	if err := st.checkUIDSpace(len(ready)); err != nil {
		removeStaged(ready)
		return nil, err
	}
	var placed []string
	fail := func(err error) ([][2]uint32, error) {
		for _, p := range placed {
			_ = os.Remove(p)
		}
		removeStaged(ready)
		st.unload()
		return nil, err
	}
	pairs := make([][2]uint32, 0, len(ready))
	added := make([]rec, 0, len(ready))
	var log []byte
	var touched [2]bool // new/, cur/
	next := st.uidnext
	for k := range ready {
		it := &ready[k]
		r := newRec(it.uniq, next, st.uv, it.r.size, it.r.date, it.r.sys, it.r.kw, "")
		p := st.path(&r)
		if err := os.Rename(it.tmp, p); err != nil {
			return fail(fmt.Errorf("mailbox %s: placing copy: %w", m.name, err))
		}
		it.tmp = ""
		touched[b2i(r.inCur)] = true
		placed = append(placed, p)
		next++
		added = append(added, r)
		log = appendAdd(log, &r)
		pairs = append(pairs, [2]uint32{it.src, r.uid})
	}
	if err := st.syncSubdirs(touched); err != nil {
		return fail(err)
	}
	st.uidnext = next
	st.addRecs(added)
	if err := st.appendLog(log, len(added)); err != nil {
		return fail(err)
	}
	st.noteOwnChange()
	st.notify()
	return pairs, nil
}

// linkOrCopy puts the content of message r of m at path: a hard link, or
// a copy (fsynced, with the internal date as mtime) when linking fails.
func (m *Mailbox) linkOrCopy(r *rec, path string) error {
	for attempt := 0; ; attempt++ {
		src := m.st.path(r)
		err := os.Link(src, path)
		if err == nil {
			return nil
		}
		if errors.Is(err, fs.ErrNotExist) && attempt == 0 {
			// Moved meanwhile: ask the source where it is now.
			if err := m.lock(); err != nil {
				return err
			}
			i, ok := m.st.find(r.uid)
			if ok {
				if _, err := m.st.relocate([]int{i}); err != nil {
					m.unlock()
					return err
				}
				*r = m.st.recs[i]
			}
			m.unlock()
			if !ok {
				return ErrNoMessage
			}
			continue
		}
		if errors.Is(err, fs.ErrNotExist) {
			return ErrNoMessage
		}
		// Another file system, or links not supported: copy.
		return m.copyFile(src, path, r.date)
	}
}

func (m *Mailbox) copyFile(src, dst string, date int64) error {
	in, err := os.Open(src)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return ErrNoMessage
		}
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if err == nil {
		t := time.Unix(date, 0)
		err = os.Chtimes(dst, t, t)
	}
	if err == nil {
		err = m.u.s.syncFile(out)
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}
