package mailstore

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	indexFile         = "mailsetup.index"
	uidvalidityFile   = "mailsetup.uidvalidity"
	subscriptionsFile = "mailsetup.subscriptions"

	// tmpMaxAge: maildir(5) says a file in tmp/ untouched for 36 hours
	// is garbage.
	tmpMaxAge = 36 * time.Hour
	// fullSyncEvery bounds how long a change by another agent can go
	// unnoticed when directory modification times do not show it.
	fullSyncEvery = time.Minute
	// compactMin is the least number of dead records worth a compaction.
	compactMin = 64
)

// mbox is the state of one mailbox directory, shared by every Mailbox
// value for it. All fields below mu are guarded by it.
type mbox struct {
	s       *Store
	dir     string
	logName string

	gone atomic.Bool // deleted or renamed away; a new mbox takes its place

	mu       sync.Mutex
	loaded   bool
	uv       uint32
	uidnext  uint32
	floor    uint32 // UIDs below have been used (mailsetup.uidvalidity)
	recs     []rec  // sorted by UID
	nGiven   int    // messages whose UIDL was given at delivery
	bytes    int64
	lines    int   // record lines in the index file
	idxSize  int64 // bytes in the index file
	newMtime int64
	curMtime int64
	lastFull time.Time
	lastUse  time.Time
	changed  chan struct{}
}

func (st *mbox) indexPath() string { return filepath.Join(st.dir, indexFile) }

func (st *mbox) path(r *rec) string {
	sub := "new"
	if r.inCur {
		sub = "cur"
	}
	switch {
	case r.bare:
		return filepath.Join(st.dir, sub, r.base)
	case r.rawInfo:
		return filepath.Join(st.dir, sub, r.base+":2,"+r.extra)
	}
	return filepath.Join(st.dir, sub, r.base+":2,"+infoString(r.sys, r.extra))
}

// setInfo takes flags and extra letters from a file's info suffix.
func (r *rec) setInfo(info string) {
	var extra string
	r.sys, extra = parseInfo(info)
	if canonicalInfo(info) {
		r.extra, r.rawInfo = extra, false
	} else {
		r.extra, r.rawInfo = info, true
	}
}

// extraLetters are the info letters to keep when the flags change.
func (r *rec) extraLetters() string {
	if r.rawInfo {
		_, extra := parseInfo(r.extra)
		return extra
	}
	return r.extra
}

func (st *mbox) find(uid uint32) (int, bool) {
	return slices.BinarySearchFunc(st.recs, uid, func(r rec, u uint32) int {
		switch {
		case r.uid < u:
			return -1
		case r.uid > u:
			return 1
		}
		return 0
	})
}

// notify wakes Changed waiters.
func (st *mbox) notify() {
	close(st.changed)
	st.changed = make(chan struct{})
}

func (st *mbox) markGone() {
	if !st.gone.Swap(true) {
		st.unload()
		st.notify()
	}
}

func (st *mbox) unload() {
	st.loaded = false
	st.recs = nil
}

// fresh makes the state current: loaded, and in step with changes other
// agents made in new/ and cur/. Called with mu held at the start of every
// operation.
func (st *mbox) fresh() error {
	if st.gone.Load() {
		return ErrNoMailbox
	}
	now := st.s.now()
	st.lastUse = now
	if !st.loaded {
		return st.load()
	}
	nm, cm, err := st.dirMtimes()
	if err != nil {
		return err
	}
	if nm != st.newMtime || cm != st.curMtime || now.Sub(st.lastFull) >= fullSyncEvery {
		return st.syncFull()
	}
	return nil
}

// ensureLoaded loads the state if needed, without looking for changes of
// other agents (fresh does that).
func (st *mbox) ensureLoaded() error {
	if st.gone.Load() {
		return fmt.Errorf("mailbox %s: %w", st.logName, ErrNoMailbox)
	}
	if st.loaded {
		return nil
	}
	st.lastUse = st.s.now()
	return st.load()
}

// checkUIDSpace refuses to hand out UIDs past 2^32-2 (RFC 3501 §2.3.1.1:
// UIDs are 32-bit); n is how many are needed.
func (st *mbox) checkUIDSpace(n int) error {
	if uint64(st.uidnext)+uint64(n) >= 1<<32-1 {
		return fmt.Errorf("mailbox %s: UIDs exhausted; recreate the mailbox", st.logName)
	}
	return nil
}

func (st *mbox) dirMtimes() (int64, int64, error) {
	var t [2]int64
	for i, sub := range [2]string{"new", "cur"} {
		fi, err := os.Stat(filepath.Join(st.dir, sub))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				st.markGone()
				return 0, 0, fmt.Errorf("mailbox %s: %w", st.logName, ErrNoMailbox)
			}
			return 0, 0, fmt.Errorf("mailbox %s: %w", st.logName, err)
		}
		t[i] = fi.ModTime().UnixNano()
	}
	return t[0], t[1], nil
}

// noteOwnChange records the directories' times after a change of ours, so
// the change does not look like another agent's.
func (st *mbox) noteOwnChange() {
	if nm, cm, err := st.dirMtimes(); err == nil {
		st.newMtime, st.curMtime = nm, cm
	}
}

// load reads the index (rebuilding it when missing or unreadable) and
// reconciles it with the directories.
func (st *mbox) load() error {
	if _, err := os.Stat(filepath.Join(st.dir, "cur")); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			st.markGone()
			return fmt.Errorf("mailbox %s: %w", st.logName, ErrNoMailbox)
		}
		return fmt.Errorf("mailbox %s: %w", st.logName, err)
	}
	st.cleanTmp()
	uvf, uvErr := readUVFile(filepath.Join(st.dir, uidvalidityFile))
	data, err := os.ReadFile(st.indexPath())
	var idx index
	switch {
	case err == nil:
		idx, err = parseIndex(data)
		if err != nil {
			st.s.log.Warn("mailstore: index unreadable, rebuilding from the Maildir", "mailbox", st.logName, "err", err)
			if rerr := os.Rename(st.indexPath(), st.indexPath()+".bad"); rerr != nil {
				return fmt.Errorf("mailbox %s: setting damaged index aside: %w", st.logName, rerr)
			}
			return st.rebuild(uvf, uvErr == nil)
		}
	case errors.Is(err, fs.ErrNotExist):
		st.s.log.Info("mailstore: no index, rebuilding from the Maildir", "mailbox", st.logName)
		return st.rebuild(uvf, uvErr == nil)
	default:
		return fmt.Errorf("mailbox %s: reading index: %w", st.logName, err)
	}

	st.uv, st.uidnext, st.recs = idx.uv, idx.uidnext, idx.recs
	st.lines, st.idxSize = idx.lines, idx.size
	st.floor = 0
	if uvErr == nil && uvf.uv == idx.uv {
		st.floor = uvf.floor
		st.uidnext = max(st.uidnext, uvf.floor)
	}
	st.nGiven, st.bytes = 0, 0
	for i := range st.recs {
		st.bytes += st.recs[i].size
		if strings.Contains(st.recs[i].base, ",X=") {
			st.nGiven++
		}
	}
	st.loaded = true
	if idx.torn {
		st.s.log.Warn("mailstore: dropped a torn record at the end of the index", "mailbox", st.logName)
		if err := st.writeIndex(); err != nil {
			st.unload()
			return err
		}
	}
	if uvErr != nil || uvf.uv != st.uv {
		if uvErr != nil && !errors.Is(uvErr, fs.ErrNotExist) {
			st.s.log.Warn("mailstore: uidvalidity file unreadable, rewriting it from the index", "mailbox", st.logName, "err", uvErr)
		}
		if uvErr == nil {
			st.s.log.Warn("mailstore: uidvalidity file disagrees with the index, rewriting it", "mailbox", st.logName,
				"file", uvf.uv, "index", st.uv)
		}
		if err := st.writeUVFile(st.uidnext); err != nil {
			st.unload()
			return err
		}
		st.floor = st.uidnext
	}
	if err := st.syncFull(); err != nil {
		st.unload()
		return err
	}
	return nil
}

// cleanTmp removes files older than tmpMaxAge from tmp/.
func (st *mbox) cleanTmp() {
	dir := filepath.Join(st.dir, "tmp")
	names, err := readDirNames(dir)
	if err != nil {
		return
	}
	cutoff := st.s.now().Add(-tmpMaxAge)
	for _, n := range names {
		p := filepath.Join(dir, n)
		fi, err := os.Lstat(p)
		if err != nil || fi.IsDir() || !fi.ModTime().Before(cutoff) {
			continue
		}
		if err := os.Remove(p); err != nil {
			st.s.log.Warn("mailstore: removing stale file from tmp/", "mailbox", st.logName, "file", n, "err", err)
		}
	}
}

// diskFile is a message file found in new/ or cur/.
type diskFile struct {
	base  string
	info  string
	inCur bool
	bare  bool // no info suffix
}

// listFiles reads new/ and then cur/ (in this order, so that a file moved
// from new/ to cur/ meanwhile is seen at least once), by base name.
func (st *mbox) listFiles() (map[string]diskFile, error) {
	files := make(map[string]diskFile, len(st.recs)+16)
	for _, sub := range [2]string{"new", "cur"} {
		names, err := readDirNames(filepath.Join(st.dir, sub))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				st.markGone()
				return nil, fmt.Errorf("mailbox %s: %w", st.logName, ErrNoMailbox)
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
	var log []byte
	nlog := 0
	var missing []int
	for i := range st.recs {
		r := &st.recs[i]
		f, ok := files[r.base]
		if !ok {
			missing = append(missing, i)
			continue
		}
		delete(files, r.base)
		if st.placeFile(r, f) {
			log = appendFlagsRec(log, r.uid, r.sys, r.kw)
			nlog++
		}
	}
	var gone []uint32
	if len(missing) > 0 {
		// Another agent renaming a file while we read the directories
		// can hide it; look once more before believing it is gone.
		again, err := st.listFiles()
		if err != nil {
			return err
		}
		for _, i := range missing {
			r := &st.recs[i]
			if f, ok := again[r.base]; ok {
				if st.placeFile(r, f) {
					log = appendFlagsRec(log, r.uid, r.sys, r.kw)
					nlog++
				}
				continue
			}
			gone = append(gone, r.uid)
		}
	}
	if len(gone) > 0 {
		if err := st.raiseFloor(gone[len(gone)-1]); err != nil {
			return err
		}
		for _, uid := range gone {
			log = appendExpunge(log, uid)
			nlog++
		}
		st.removeRecs(gone)
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
		st.recs = append(st.recs, picked...)
		for i := range picked {
			st.bytes += picked[i].size
			if strings.Contains(picked[i].base, ",X=") {
				st.nGiven++
			}
		}
		if err := st.appendLog(log, nlog); err != nil {
			return err
		}
		st.notify()
	}
	st.newMtime, st.curMtime = nm, cm
	st.lastFull = st.s.now()
	return nil
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
	slices.Sort(bases)
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

// removeRecs drops the records of uids (sorted) from memory.
func (st *mbox) removeRecs(uids []uint32) {
	j := 0
	st.recs = slices.DeleteFunc(st.recs, func(r rec) bool {
		for j < len(uids) && uids[j] < r.uid {
			j++
		}
		if j < len(uids) && uids[j] == r.uid {
			st.bytes -= r.size
			if strings.Contains(r.base, ",X=") {
				st.nGiven--
			}
			return true
		}
		return false
	})
}

// raiseFloor records, before UIDs up to maxUID disappear, that all UIDs
// below uidnext are used, so that a rebuild cannot hand them out again.
func (st *mbox) raiseFloor(maxUID uint32) error {
	if maxUID < st.floor {
		return nil
	}
	if err := st.writeUVFile(st.uidnext); err != nil {
		return err
	}
	st.floor = st.uidnext
	return nil
}

// rebuild recreates the index from the Maildir; see the package
// documentation. uvf is the uidvalidity file if haveUV.
func (st *mbox) rebuild(uvf uvFile, haveUV bool) error {
	files, err := st.listFiles()
	if err != nil {
		return err
	}
	type cand struct {
		f  diskFile
		bf baseFields
	}
	cands := make([]cand, 0, len(files))
	for _, f := range files {
		cands = append(cands, cand{f, parseBase(f.base)})
	}
	slices.SortFunc(cands, func(a, b cand) int { return strings.Compare(a.f.base, b.f.base) })

	keep := haveUV
	if keep {
		seen := make(map[uint32]bool, len(cands))
		for _, c := range cands {
			if c.bf.uv != uvf.uv || c.bf.uid == 0 {
				continue
			}
			if seen[c.bf.uid] {
				st.s.log.Warn("mailstore: two files claim one UID, UIDs cannot be kept", "mailbox", st.logName, "uid", c.bf.uid)
				keep = false
				break
			}
			seen[c.bf.uid] = true
		}
	}

	uids := make([]uint32, len(cands))
	var uv, next uint32
	if keep {
		uv, next = uvf.uv, max(uvf.floor, 1)
		for i, c := range cands {
			if c.bf.uv == uv && c.bf.uid != 0 && c.bf.uid < 1<<32-1 {
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
	} else {
		// A new UIDVALIDITY (RFC 3501 §2.3.1.1), larger than any
		// this mailbox used, and the old order kept as far as known.
		above := uint32(0)
		if haveUV {
			above = uvf.uv
		}
		for _, c := range cands {
			above = max(above, c.bf.uv)
		}
		uv = st.s.newUIDValidity(above)
		slices.SortStableFunc(cands, func(a, b cand) int {
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
		for i := range cands {
			uids[i] = uint32(i + 1)
		}
		next = uint32(len(cands) + 1)
		st.s.log.Warn("mailstore: new UIDVALIDITY, IMAP clients will resynchronise", "mailbox", st.logName, "uidvalidity", uv)
	}

	st.uv = uv
	st.uidnext = next
	// The UIDVALIDITY and the UIDs handed out go to disk first: if the
	// rebuild is interrupted, the next one keeps what we assigned here.
	if err := st.writeUVFile(next); err != nil {
		return err
	}
	st.floor = next

	recs := make([]rec, 0, len(cands))
	renamed := false
	for i, c := range cands {
		f := c.f
		if !keep && c.bf.uv != 0 && (c.bf.uid != uids[i] || c.bf.uv != uv) {
			// Our file: rewrite U and V so the next rebuild keeps the
			// new numbering. The unique part, and so the UIDL, stays.
			old := diskFileName(st.dir, f)
			f.base = withUID(f.base, uids[i], uv)
			if err := os.Rename(old, diskFileName(st.dir, f)); err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue
				}
				return fmt.Errorf("mailbox %s: renumbering %s: %w", st.logName, c.f.base, err)
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
	if renamed {
		for _, sub := range []string{"new", "cur"} {
			if err := st.s.syncDir(filepath.Join(st.dir, sub)); err != nil {
				return err
			}
		}
	}
	slices.SortFunc(recs, func(a, b rec) int {
		switch {
		case a.uid < b.uid:
			return -1
		case a.uid > b.uid:
			return 1
		}
		return 0
	})
	st.recs = recs
	st.nGiven, st.bytes = 0, 0
	for i := range recs {
		st.bytes += recs[i].size
		if strings.Contains(recs[i].base, ",X=") {
			st.nGiven++
		}
	}
	if err := st.writeIndex(); err != nil {
		return err
	}
	st.loaded = true
	st.s.log.Info("mailstore: rebuilt index", "mailbox", st.logName, "messages", len(recs),
		"uidvalidity", uv, "uids_kept", keep)
	if err := st.syncFull(); err != nil {
		st.unload()
		return err
	}
	return nil
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

// uvFile is the content of mailsetup.uidvalidity.
type uvFile struct {
	uv, floor uint32
}

func encodeUVFile(uv, floor uint32) []byte {
	return fmt.Appendf(nil, "%d %d\n", uv, floor)
}

func readUVFile(path string) (uvFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return uvFile{}, err
	}
	a, b, ok := strings.Cut(strings.TrimSuffix(string(data), "\n"), " ")
	uv, err1 := strconv.ParseUint(a, 10, 32)
	floor, err2 := strconv.ParseUint(b, 10, 32)
	if !ok || err1 != nil || err2 != nil || uv == 0 {
		return uvFile{}, fmt.Errorf("bad uidvalidity file %q", data)
	}
	return uvFile{uint32(uv), uint32(floor)}, nil
}

func (st *mbox) writeUVFile(floor uint32) error {
	if err := st.s.writeFileAtomic(filepath.Join(st.dir, uidvalidityFile), encodeUVFile(st.uv, floor)); err != nil {
		return fmt.Errorf("mailbox %s: writing uidvalidity file: %w", st.logName, err)
	}
	return nil
}

// normalizeCRLF rewrites a file whose lines end in a bare LF with CRLF
// line endings, keeping its modification time (the internal date), and
// returns the new size; -1 when the file needed no change. The copy is
// written to tmp/, synced and renamed over the original, so a crash
// leaves one of the two whole.
func (st *mbox) normalizeCRLF(path string) (int64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return -1, err
	}
	bare := false
	for i := range data {
		if data[i] == '\n' && (i == 0 || data[i-1] != '\r') {
			bare = true
			break
		}
	}
	if !bare {
		return -1, nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return -1, err
	}
	// Through tmp/ (Maildir: never a partial file in new/ or cur/).
	tmp := filepath.Join(st.dir, "tmp", st.s.newUnique(st.s.now())+".crlf")
	var size int64
	err = st.s.replaceFile(tmp, path, fi.ModTime(), func(w io.Writer) error {
		var err error
		size, err = copyCRLF(w, bytes.NewReader(data), -1)
		return err
	})
	if err != nil {
		return -1, err
	}
	return size, nil
}
