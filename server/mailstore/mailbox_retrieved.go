package mailstore

import "time"

// POP3 retrieval times, kept for server-side expiry (RFC 2449 EXPIRE):
// when a message was first retrieved.

// MarkRetrieved records that POP3 retrieved the messages uids at t (zero:
// now), for those not marked before.
func (m *Mailbox) MarkRetrieved(uids []uint32, t time.Time) error {
	if t.IsZero() {
		t = m.u.s.now()
	}
	ts := max(t.Unix(), 1)
	uids = sortedUIDs(uids)
	if err := m.lock(); err != nil {
		return err
	}
	defer m.unlock()
	st := m.st
	var log []byte
	n := 0
	for _, uid := range uids {
		i, ok := st.find(uid)
		if !ok || st.recs[i].retrieved != 0 {
			continue
		}
		st.recs[i].retrieved = ts
		log = appendRetrieved(log, uid, ts)
		n++
	}
	if n == 0 {
		return nil
	}
	if err := st.appendLog(log, n); err != nil {
		return err
	}
	st.notify()
	return nil
}
