package mailstore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
)

// Rebuilding a missing or unreadable index from the Maildir, keeping the
// UIDs in the file names when they can be trusted; see "Rebuild" in the
// package documentation.

// rebuildCand is a file found by a rebuild, with the fields of its name.
type rebuildCand struct {
	f  diskFile
	bf baseFields
}

// rebuild recreates the index from the Maildir; see the package
// documentation. uvf is the uidvalidity file if haveUV.
func (st *mbox) rebuild(uvf uvFile, haveUV bool) error {
	files, err := st.listFiles()
	if err != nil {
		return err
	}
	cands := rebuildCands(files)
	keep := haveUV && st.uidsUnique(cands, uvf.uv)
	var uids []uint32
	if keep {
		st.uv = uvf.uv
		uids, st.uidnext = keptUIDs(cands, uvf)
	} else {
		// A new UIDVALIDITY (RFC 3501 §2.3.1.1), larger than any
		// this mailbox used, and the old order kept as far as known.
		st.uv = st.s.newUIDValidity(highestUV(cands, uvf, haveUV))
		uids, st.uidnext = renumber(cands)
		st.s.log.Warn("mailstore: new UIDVALIDITY, IMAP clients will resynchronise", "mailbox", st.logName, "uidvalidity", st.uv)
	}
	// The UIDVALIDITY and the UIDs handed out go to disk first: if the
	// rebuild is interrupted, the next one keeps what we assigned here.
	if err := st.writeUVFile(st.uidnext); err != nil {
		return err
	}
	st.floor = st.uidnext
	recs, err := st.rebuildRecs(cands, uids, !keep)
	if err != nil {
		return err
	}
	st.recs = recs
	st.recount()
	if err := st.writeIndex(); err != nil {
		return err
	}
	st.loaded = true
	st.s.log.Info("mailstore: rebuilt index", "mailbox", st.logName, "messages", len(recs),
		"uidvalidity", st.uv, "uids_kept", keep)
	if err := st.syncFull(); err != nil {
		st.unload()
		return err
	}
	return nil
}

// rebuildCands returns the files with their name fields, in name order.
func rebuildCands(files map[string]diskFile) []rebuildCand {
	cands := make([]rebuildCand, 0, len(files))
	for _, f := range files {
		cands = append(cands, rebuildCand{f, parseBase(f.base)})
	}
	slices.SortFunc(cands, func(a, b rebuildCand) int { return strings.Compare(a.f.base, b.f.base) })
	return cands
}

// uidsUnique reports whether no two files claim one UID under uv.
func (st *mbox) uidsUnique(cands []rebuildCand, uv uint32) bool {
	seen := make(map[uint32]bool, len(cands))
	for _, c := range cands {
		if c.bf.uv != uv || c.bf.uid == 0 {
			continue
		}
		if seen[c.bf.uid] {
			st.s.log.Warn("mailstore: two files claim one UID, UIDs cannot be kept", "mailbox", st.logName, "uid", c.bf.uid)
			return false
		}
		seen[c.bf.uid] = true
	}
	return true
}

// keptUIDs keeps the UIDs of the files named under uvf's UIDVALIDITY and
// gives the others new ones above them and the floor. It returns the UIDs
// in the order of cands and the next UID.
func keptUIDs(cands []rebuildCand, uvf uvFile) ([]uint32, uint32) {
	uids := make([]uint32, len(cands))
	next := max(uvf.floor, 1)
	for i, c := range cands {
		if c.bf.uv == uvf.uv && c.bf.uid != 0 && c.bf.uid < 1<<32-1 {
			uids[i] = c.bf.uid
			next = max(next, c.bf.uid+1)
		}
	}
	for i := range cands {
		if uids[i] == 0 {
			uids[i] = next
			next++
		}
	}
	return uids, next
}

// highestUV is the largest UIDVALIDITY the mailbox is known to have used:
// the uidvalidity file's (if haveUV) or one in a file name.
func highestUV(cands []rebuildCand, uvf uvFile, haveUV bool) uint32 {
	above := uint32(0)
	if haveUV {
		above = uvf.uv
	}
	for _, c := range cands {
		above = max(above, c.bf.uv)
	}
	return above
}

// renumber sorts cands by their old UIDs (files without one last, in name
// order) and numbers them from 1. It returns the UIDs in the new order of
// cands and the next UID.
func renumber(cands []rebuildCand) ([]uint32, uint32) {
	slices.SortStableFunc(cands, func(a, b rebuildCand) int {
		switch {
		case (a.bf.uid == 0) != (b.bf.uid == 0):
			if a.bf.uid == 0 {
				return 1
			}
			return -1
		case a.bf.uid < b.bf.uid:
			return -1
		case a.bf.uid > b.bf.uid:
			return 1
		}
		return 0
	})
	uids := make([]uint32, len(cands))
	for i := range cands {
		uids[i] = uint32(i + 1)
	}
	return uids, uint32(len(cands) + 1)
}

// rebuildRecs makes the records of cands with their new uids, sorted by
// UID. With rename, files of this package whose U and V fields differ
// from the new numbering are renamed so the next rebuild keeps it; the
// unique part, and so the UIDL, stays. Files gone meanwhile are left out.
func (st *mbox) rebuildRecs(cands []rebuildCand, uids []uint32, rename bool) ([]rec, error) {
	recs := make([]rec, 0, len(cands))
	renamed := false
	for i, c := range cands {
		f := c.f
		if rename && c.bf.uv != 0 && (c.bf.uid != uids[i] || c.bf.uv != st.uv) {
			old := diskFileName(st.dir, f)
			f.base = withUID(f.base, uids[i], st.uv)
			if err := os.Rename(old, diskFileName(st.dir, f)); err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue
				}
				return nil, fmt.Errorf("mailbox %s: renumbering %s: %w", st.logName, c.f.base, err)
			}
			renamed = true
		}
		r, ok := st.statFile(f)
		if !ok {
			continue
		}
		r.uid = uids[i]
		recs = append(recs, r)
	}
	if err := st.syncSubdirs([2]bool{renamed, renamed}); err != nil {
		return nil, err
	}
	slices.SortFunc(recs, cmpRecs)
	return recs, nil
}
