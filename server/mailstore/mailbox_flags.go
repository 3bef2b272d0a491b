package mailstore

import (
	"fmt"
	"os"
	"slices"
)

// STORE (RFC 3501 §6.4.6): changing the flags of messages. System flags
// go into the file name's info suffix too, keywords only into the index.

// flagChange is the new flags of one message in StoreFlags.
type flagChange struct {
	i    int // index in st.recs; -1 once the file is found gone
	sys  sysFlags
	kw   string
	move bool // the system flags change, so the file must be renamed
}

// StoreFlags changes the flags of the messages uids (absent ones are
// skipped) and returns them, sorted by UID. System flags are also written
// into the file name's info suffix, moving the file to cur/ (maildir(5));
// keywords are kept in the index only.
func (m *Mailbox) StoreFlags(uids []uint32, op FlagOp, flags []string) ([]Message, error) {
	if op != FlagsAdd && op != FlagsRemove && op != FlagsReplace {
		return nil, fmt.Errorf("%w: unknown flag operation %d", ErrBadFlag, op)
	}
	opSys, opKw, err := parseFlags(flags)
	if err != nil {
		return nil, err
	}
	idxs, err := m.lockIndexes(uids)
	if err != nil {
		return nil, err
	}
	defer m.unlock()
	st := m.st
	changes := st.planFlags(idxs, op, opSys, opKw)
	if len(changes) == 0 {
		return st.snapshotIdx(idxs), nil
	}
	// Rename first: a crash before the index record leaves the new flags
	// in the name, where the next load finds them.
	gone, err := m.renameForFlags(changes)
	if err != nil {
		st.unload() // names changed; reload the truth from disk
		return nil, err
	}
	return st.recordFlags(idxs, changes, gone)
}

// planFlags computes the new flags of the records idxs and returns those
// that change.
func (st *mbox) planFlags(idxs []int, op FlagOp, opSys sysFlags, opKw []string) []flagChange {
	var changes []flagChange
	for _, i := range idxs {
		r := &st.recs[i]
		sys, kw := applyFlagOp(op, r.sys, r.kw, opSys, opKw)
		if sys == r.sys && kw == r.kw {
			continue
		}
		changes = append(changes, flagChange{i: i, sys: sys, kw: kw, move: sys != r.sys})
	}
	return changes
}

// renameForFlags renames the files of the changes that move, so that their
// names carry the new system flags, and makes the renames durable. It
// returns the UIDs (sorted) of the messages whose files another agent
// removed meanwhile, and marks their changes with i = -1.
func (m *Mailbox) renameForFlags(changes []flagChange) ([]uint32, error) {
	st := m.st
	var moving []int // positions in changes
	var idxs []int
	for ci, c := range changes {
		if c.move {
			moving = append(moving, ci)
			idxs = append(idxs, c.i)
		}
	}
	fromNew := false
	lost, err := st.eachFile(idxs, func(k int, r *rec) error {
		wasNew := !r.inCur
		if err := st.renameForSys(r, changes[moving[k]].sys); err != nil {
			return fmt.Errorf("mailbox %s: renaming uid %d for its flags: %w", m.name, r.uid, err)
		}
		fromNew = fromNew || wasNew
		return nil
	})
	if err != nil {
		return nil, err
	}
	var gone []uint32
	for _, k := range lost {
		c := &changes[moving[k]]
		gone = append(gone, st.recs[c.i].uid)
		c.i = -1
	}
	slices.Sort(gone)
	if err := st.syncSubdirs([2]bool{fromNew, true}); err != nil {
		return nil, err
	}
	return gone, nil
}

// renameForSys renames r's file into cur/ with sys in its info suffix
// (maildir(5)), keeping other agents' letters, and updates r.
func (st *mbox) renameForSys(r *rec, sys sysFlags) error {
	nr := *r
	nr.sys, nr.inCur, nr.bare, nr.rawInfo, nr.extra = sys, true, false, false, r.extraLetters()
	if err := os.Rename(st.path(r), st.path(&nr)); err != nil {
		return err
	}
	*r = nr
	return nil
}

// recordFlags applies the changes in memory, forgets the messages whose
// files are gone, and appends both to the index. It returns the messages
// of idxs that remain.
func (st *mbox) recordFlags(idxs []int, changes []flagChange, gone []uint32) ([]Message, error) {
	var log []byte
	n := 0
	for _, c := range changes {
		if c.i < 0 {
			continue
		}
		r := &st.recs[c.i]
		r.sys, r.kw = c.sys, c.kw
		log = appendFlagsRec(log, r.uid, r.sys, r.kw)
		n++
	}
	out := st.snapshotIdx(idxs)
	if len(gone) > 0 {
		// Removed by another agent meanwhile.
		var err error
		if log, err = st.forget(log, gone); err != nil {
			st.unload()
			return nil, err
		}
		n += len(gone)
		out = slices.DeleteFunc(out, func(msg Message) bool { return slices.Contains(gone, msg.UID) })
	}
	if err := st.appendLog(log, n); err != nil {
		return nil, err
	}
	st.noteOwnChange()
	st.notify()
	return out, nil
}
