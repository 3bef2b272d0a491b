package mailstore

import (
	"fmt"
	"os"
)

// EXPUNGE (RFC 3501 §6.4.3) and POP3 DELE at QUIT (RFC 1939 §6): removing
// messages, files first.

// Expunge removes the messages uids (files, then index records) and
// returns the UIDs actually expunged, sorted.
func (m *Mailbox) Expunge(uids []uint32) ([]uint32, error) {
	idxs, err := m.lockIndexes(uids)
	if err != nil {
		return nil, err
	}
	defer m.unlock()
	st := m.st
	if len(idxs) == 0 {
		return nil, nil
	}
	done := make([]uint32, len(idxs))
	for k, i := range idxs {
		done[k] = st.recs[i].uid
	}
	// Before any UID disappears, make sure a rebuild will not reuse it.
	if err := st.raiseFloor(done[len(done)-1]); err != nil {
		return nil, err
	}
	// Files go first: an index record without its file is cleaned up by
	// the next load, a file without its index record would come back.
	if err := m.removeFiles(idxs); err != nil {
		st.unload() // some files are gone; reload the truth from disk
		return nil, err
	}
	log, err := st.forget(nil, done) // the floor is raised already
	if err != nil {
		return nil, err
	}
	if err := st.appendLog(log, len(done)); err != nil {
		return nil, err
	}
	st.noteOwnChange()
	st.notify()
	return done, nil
}

// removeFiles removes the files of the records idxs, also those another
// agent moved meanwhile, and makes the removals durable. A file already
// gone is fine.
func (m *Mailbox) removeFiles(idxs []int) error {
	st := m.st
	var touched [2]bool // new/, cur/
	if _, err := st.eachFile(idxs, func(_ int, r *rec) error {
		touched[b2i(r.inCur)] = true
		if err := os.Remove(st.path(r)); err != nil {
			return fmt.Errorf("mailbox %s: removing uid %d: %w", m.name, r.uid, err)
		}
		return nil
	}); err != nil {
		return err
	}
	return st.syncSubdirs(touched)
}
