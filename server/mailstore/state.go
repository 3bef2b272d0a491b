package mailstore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// The in-memory state of one mailbox, shared by every Mailbox value for
// its directory: the lock, the records, keeping them current (fresh),
// forgetting them (unload, markGone), and waking Changed waiters.

// fullSyncEvery bounds how long a change by another agent can go
// unnoticed when directory modification times do not show it.
const fullSyncEvery = time.Minute

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

func (st *mbox) find(uid uint32) (int, bool) {
	return findRec(st.recs, uid)
}

// indexesOf returns the indexes in st.recs of those of uids (sorted) that
// are present.
func (st *mbox) indexesOf(uids []uint32) []int {
	var idxs []int
	for _, uid := range uids {
		if i, ok := st.find(uid); ok {
			idxs = append(idxs, i)
		}
	}
	return idxs
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

// vanished marks the state gone after its directory was found missing
// and returns the error saying so.
func (st *mbox) vanished() error {
	st.markGone()
	return fmt.Errorf("mailbox %s: %w", st.logName, ErrNoMailbox)
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

func (st *mbox) dirMtimes() (int64, int64, error) {
	var t [2]int64
	for i, sub := range [2]string{"new", "cur"} {
		fi, err := os.Stat(filepath.Join(st.dir, sub))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return 0, 0, st.vanished()
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

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// syncSubdirs fsyncs new/ (touched[0]) and cur/ (touched[1]) where entries
// were created, renamed or removed.
func (st *mbox) syncSubdirs(touched [2]bool) error {
	for k, sub := range [2]string{"new", "cur"} {
		if !touched[k] {
			continue
		}
		if err := st.s.syncDir(filepath.Join(st.dir, sub)); err != nil {
			return err
		}
	}
	return nil
}

// addRecs appends records of new messages (UIDs above all present) and
// counts them in.
func (st *mbox) addRecs(recs []rec) {
	st.recs = append(st.recs, recs...)
	for i := range recs {
		st.bytes += recs[i].size
		if hasGivenUIDL(recs[i].base) {
			st.nGiven++
		}
	}
}

// recount computes the totals kept beside the records from scratch.
func (st *mbox) recount() {
	st.nGiven, st.bytes = 0, 0
	for i := range st.recs {
		st.bytes += st.recs[i].size
		if hasGivenUIDL(st.recs[i].base) {
			st.nGiven++
		}
	}
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
			if hasGivenUIDL(r.base) {
				st.nGiven--
			}
			return true
		}
		return false
	})
}

// forget drops the messages uids (sorted, not empty) whose files are
// gone: it makes sure a rebuild will not hand their UIDs out again,
// appends their expunge records to log and removes them from memory.
func (st *mbox) forget(log []byte, uids []uint32) ([]byte, error) {
	if err := st.raiseFloor(uids[len(uids)-1]); err != nil {
		return log, err
	}
	for _, uid := range uids {
		log = appendExpunge(log, uid)
	}
	st.removeRecs(uids)
	return log, nil
}
