package mailstore

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Reconciling the index with new/ and cur/, where other agents deliver,
// move, re-flag and delete files: the full scan (syncFull), picking up
// files no record knows, finding the files of records whose names went
// stale (relocate) and retrying a file operation there (eachFile).

// diskFile is a message file found in new/ or cur/.
type diskFile struct {
	base  string
	info  string
	inCur bool
	bare  bool // no info suffix
}

func diskFileName(dir string, f diskFile) string {
	sub := "new"
	if f.inCur {
		sub = "cur"
	}
	if f.bare {
		return filepath.Join(dir, sub, f.base)
	}
	return filepath.Join(dir, sub, f.base+":2,"+f.info)
}

// listFiles reads new/ and then cur/ (in this order, so that a file moved
// from new/ to cur/ meanwhile is seen at least once), by base name.
func (st *mbox) listFiles() (map[string]diskFile, error) {
	files := make(map[string]diskFile, len(st.recs)+16)
	for _, sub := range [2]string{"new", "cur"} {
		names, err := readDirNames(filepath.Join(st.dir, sub))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, st.vanished()
			}
			return nil, fmt.Errorf("mailbox %s: reading %s/: %w", st.logName, sub, err)
		}
		for _, n := range names {
			if n == "" || n[0] == '.' {
				continue
			}
			base, info, bare, ok := splitName(n)
			if !ok || !validBase(base) {
				continue
			}
			files[base] = diskFile{base: base, info: info, inCur: sub == "cur", bare: bare}
		}
	}
	return files, nil
}

// syncFull reconciles the index with new/ and cur/: it notes where every
// file is, takes flag changes other agents made in info suffixes, drops
// messages whose files are gone and picks up files it does not know.
func (st *mbox) syncFull() error {
	nm, cm, err := st.dirMtimes()
	if err != nil {
		return err
	}
	files, err := st.listFiles()
	if err != nil {
		return err
	}
	log, nlog, gone, err := st.placeKnown(files)
	if err != nil {
		return err
	}
	if len(gone) > 0 {
		if log, err = st.forget(log, gone); err != nil {
			return err
		}
		nlog += len(gone)
		st.s.log.Info("mailstore: messages removed by another agent", "mailbox", st.logName, "count", len(gone))
	}
	picked, err := st.pickUp(files)
	if err != nil {
		return err
	}
	for i := range picked {
		log = appendAdd(log, &picked[i])
		nlog++
	}
	if nlog > 0 {
		st.addRecs(picked)
		if err := st.appendLog(log, nlog); err != nil {
			return err
		}
		st.notify()
	}
	st.newMtime, st.curMtime = nm, cm
	st.lastFull = st.s.now()
	return nil
}

// placeKnown finds the file of every record in files (removing it from
// files, which then holds only unknown files) and returns the flag
// records for system flags other agents changed in info suffixes, their
// number, and the UIDs (sorted) of records whose files are gone.
func (st *mbox) placeKnown(files map[string]diskFile) (log []byte, n int, gone []uint32, err error) {
	place := func(r *rec, f diskFile) {
		if st.placeFile(r, f) {
			log = appendFlagsRec(log, r.uid, r.sys, r.kw)
			n++
		}
	}
	var missing []int
	for i := range st.recs {
		r := &st.recs[i]
		f, ok := files[r.base]
		if !ok {
			missing = append(missing, i)
			continue
		}
		delete(files, r.base)
		place(r, f)
	}
	if len(missing) == 0 {
		return log, n, nil, nil
	}
	// Another agent renaming a file while we read the directories
	// can hide it; look once more before believing it is gone.
	again, err := st.listFiles()
	if err != nil {
		return nil, 0, nil, err
	}
	for _, i := range missing {
		r := &st.recs[i]
		if f, ok := again[r.base]; ok {
			place(r, f)
			continue
		}
		gone = append(gone, r.uid)
	}
	return log, n, gone, nil
}

// placeFile records where r's file is and reports whether the file's
// info suffix changed r's system flags (another agent re-flagged it).
func (st *mbox) placeFile(r *rec, f diskFile) bool {
	r.inCur, r.bare = f.inCur, f.bare
	if f.bare {
		r.extra, r.rawInfo = "", false
		return false
	}
	old := r.sys
	r.setInfo(f.info)
	return r.sys != old
}

// pickUp gives UIDs to files no index record knows (delivered by another
// agent, or by us just before a crash), in name order, which for Maildir
// names is delivery order.
func (st *mbox) pickUp(files map[string]diskFile) ([]rec, error) {
	if len(files) == 0 {
		return nil, nil
	}
	bases := make([]string, 0, len(files))
	for b := range files {
		bases = append(bases, b)
	}
	// Ours (named with a UID under this UIDVALIDITY) first, by that UID:
	// a batch placed just before a crash keeps the UIDs it was given
	// even where name order differs from UID order.
	ourUID := func(b string) uint32 {
		if bf := parseBase(b); bf.uv == st.uv && bf.uid != 0 {
			return bf.uid
		}
		return 1<<32 - 1
	}
	slices.SortFunc(bases, func(a, b string) int {
		return cmp.Or(cmp.Compare(ourUID(a), ourUID(b)), strings.Compare(a, b))
	})
	next := st.uidnext
	out := make([]rec, 0, len(bases))
	foreign := 0
	for _, b := range bases {
		f := files[b]
		r, ok := st.statFile(f)
		if !ok {
			continue
		}
		bf := parseBase(b)
		if bf.uv == st.uv && bf.uid >= next && bf.uid != 0 && bf.uid < 1<<32-1 {
			// Ours, with the UID assigned before a crash lost the
			// index record: keep it.
			r.uid = bf.uid
		} else {
			r.uid = next
			foreign++
			// Another agent's file: give it CRLF line endings, as
			// ours have, so that its size is what POP3 and IMAP send.
			if size, err := st.normalizeCRLF(st.path(&r)); err != nil {
				st.s.log.Warn("mailstore: could not normalize line endings; sizes of this message may be off", "mailbox", st.logName, "file", b, "err", err)
			} else if size >= 0 {
				r.size = size
			}
		}
		next = r.uid + 1
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, nil
	}
	// Make the new UIDs known to a future rebuild before anyone sees
	// them (RFC 3501 §2.3.1.1: no UID is used twice).
	if foreign > 0 {
		if err := st.writeUVFile(next); err != nil {
			return nil, err
		}
		st.floor = next
	}
	st.uidnext = next
	st.s.log.Info("mailstore: picked up messages from the Maildir", "mailbox", st.logName,
		"count", len(out), "new_uids", foreign)
	return out, nil
}

// statFile describes a file found on disk as a record without UID.
func (st *mbox) statFile(f diskFile) (rec, bool) {
	r := rec{base: f.base, uidl: uidlFromBase(f.base), inCur: f.inCur, bare: f.bare}
	if !f.bare {
		r.setInfo(f.info)
	}
	fi, err := os.Stat(st.path(&r))
	if err != nil || !fi.Mode().IsRegular() {
		return r, false // moved or removed meanwhile; the next sync sees it
	}
	r.size = fi.Size()
	r.date = fi.ModTime().Unix()
	return r, true
}

// relocate finds the files of records whose names were wrong (another
// agent moved or re-flagged them) and updates the records. It reports the
// records whose files are gone.
func (st *mbox) relocate(idxs []int) ([]int, error) {
	files, err := st.listFiles()
	if err != nil {
		return nil, err
	}
	var missing []int
	for _, i := range idxs {
		r := &st.recs[i]
		f, ok := files[r.base]
		if !ok {
			missing = append(missing, i)
			continue
		}
		sys := r.sys
		st.placeFile(r, f)
		r.sys = sys // the index keeps the flags; the caller changes them
	}
	return missing, nil
}

// eachFile runs op on the file of each record st.recs[idxs[k]], passing
// k. When op fails with an error matching fs.ErrNotExist, the file is not
// where its record says (another agent moved it between new/ and cur/ or
// re-flagged it): eachFile looks the files up again (relocate) and runs
// op once more on those found. It returns, in increasing order, the k
// whose files are gone, and stops at the first other error.
func (st *mbox) eachFile(idxs []int, op func(k int, r *rec) error) ([]int, error) {
	var lost []int // positions in idxs
	for k, i := range idxs {
		if err := op(k, &st.recs[i]); err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				return nil, err
			}
			lost = append(lost, k)
		}
	}
	if len(lost) == 0 {
		return nil, nil
	}
	lostIdxs := make([]int, len(lost))
	for j, k := range lost {
		lostIdxs[j] = idxs[k]
	}
	missing, err := st.relocate(lostIdxs)
	if err != nil {
		return nil, err
	}
	var gone []int
	for _, k := range lost {
		i := idxs[k]
		if slices.Contains(missing, i) {
			gone = append(gone, k)
			continue
		}
		if err := op(k, &st.recs[i]); err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				return nil, err
			}
			gone = append(gone, k)
		}
	}
	return gone, nil
}
