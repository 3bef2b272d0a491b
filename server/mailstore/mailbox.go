package mailstore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"
)

// Mailbox and Message: reading a mailbox (snapshots, UIDVALIDITY, UIDNEXT,
// sizes, Open, Changed) and the lock every Mailbox operation takes. The
// operations that change a mailbox are in deliver.go and mailbox_*.go.

// Message describes one stored message.
type Message struct {
	UID uint32
	// UIDL is the POP3 unique id: 1 to 70 characters 0x21..0x7E (RFC 1939
	// §7), stable for the message's lifetime.
	UIDL string
	// Size is the number of bytes on disk. Messages delivered through this
	// package are stored with CRLF line endings, so this is the size a
	// POP3 or IMAP client sees; files another agent delivered are stored
	// as that agent wrote them.
	Size int64
	// InternalDate is the IMAP internal date (RFC 3501 §2.3.3), whole
	// seconds; it is also the file's modification time.
	InternalDate time.Time
	// Flags are system flags (\Seen \Answered \Flagged \Deleted \Draft)
	// and keywords, sorted. The slice belongs to the caller.
	Flags []string
	// Retrieved is when POP3 first retrieved the message (zero: never),
	// for server-side expiry (RFC 2449 EXPIRE).
	Retrieved time.Time
}

// HasFlag reports whether m has flag (case-insensitive, RFC 3501 §2.3.2).
func (m Message) HasFlag(flag string) bool {
	return slices.ContainsFunc(m.Flags, func(f string) bool { return strings.EqualFold(f, flag) })
}

// Mailbox is one mailbox of a user. Its methods are safe for concurrent
// use; all Mailbox values for one mailbox share one lock and index.
type Mailbox struct {
	u    *User
	name string
	st   *mbox
}

// Snapshot is a consistent view of a mailbox, e.g. for IMAP SELECT.
type Snapshot struct {
	UIDValidity uint32
	UIDNext     uint32
	Messages    []Message // sorted by UID
}

// Name returns the canonical mailbox name ("INBOX" for the inbox).
func (m *Mailbox) Name() string { return m.name }

// lock takes the mailbox lock and brings the state up to date.
func (m *Mailbox) lock() error {
	m.st.mu.Lock()
	if err := m.st.fresh(); err != nil {
		m.st.mu.Unlock()
		if errors.Is(err, ErrNoMailbox) {
			return fmt.Errorf("mailbox %s: %w", m.name, ErrNoMailbox)
		}
		return err
	}
	return nil
}

func (m *Mailbox) unlock() { m.st.mu.Unlock() }

// lockIndexes sorts uids, takes the lock as lock does and returns the
// indexes in m.st.recs of the messages present, in UID order. The caller
// unlocks unless it returns an error.
func (m *Mailbox) lockIndexes(uids []uint32) ([]int, error) {
	uids = sortedUIDs(uids)
	if err := m.lock(); err != nil {
		return nil, err
	}
	return m.st.indexesOf(uids), nil
}

// UIDValidity returns the mailbox's UIDVALIDITY (RFC 3501 §2.3.1.1). If
// the mailbox cannot be read it returns the last value known.
func (m *Mailbox) UIDValidity() uint32 {
	if err := m.lock(); err != nil {
		m.u.s.log.Warn("mailstore: reading UIDVALIDITY", "mailbox", m.st.logName, "err", err)
		return m.st.cachedUV()
	}
	defer m.unlock()
	return m.st.uv
}

// UIDNext returns the UID the next message will get (RFC 3501 §2.3.1.1).
// If the mailbox cannot be read it returns the last value known.
func (m *Mailbox) UIDNext() uint32 {
	if err := m.lock(); err != nil {
		m.u.s.log.Warn("mailstore: reading UIDNEXT", "mailbox", m.st.logName, "err", err)
		return m.st.cachedUIDNext()
	}
	defer m.unlock()
	return m.st.uidnext
}

func (st *mbox) cachedUV() uint32 {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.uv
}

func (st *mbox) cachedUIDNext() uint32 {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.uidnext
}

// Messages returns a snapshot of the mailbox's messages sorted by UID,
// answered from the index without opening message files.
func (m *Mailbox) Messages() ([]Message, error) {
	if err := m.lock(); err != nil {
		return nil, err
	}
	defer m.unlock()
	return m.st.snapshot(m.st.recs), nil
}

// Snapshot returns UIDVALIDITY, UIDNEXT and the messages as of one moment.
func (m *Mailbox) Snapshot() (Snapshot, error) {
	if err := m.lock(); err != nil {
		return Snapshot{}, err
	}
	defer m.unlock()
	return Snapshot{UIDValidity: m.st.uv, UIDNext: m.st.uidnext, Messages: m.st.snapshot(m.st.recs)}, nil
}

// Size returns the total size of the mailbox's messages in bytes.
func (m *Mailbox) Size() (int64, error) {
	if err := m.lock(); err != nil {
		return 0, err
	}
	defer m.unlock()
	return m.st.bytes, nil
}

// Changed returns a channel that is closed on the next change of this
// mailbox made through this process (deliveries, flag changes, expunges,
// and changes of other agents once noticed); call it again for the change
// after that. For IMAP IDLE (RFC 2177).
func (m *Mailbox) Changed() <-chan struct{} {
	m.st.mu.Lock()
	defer m.st.mu.Unlock()
	if m.st.gone.Load() {
		ch := make(chan struct{})
		close(ch)
		return ch
	}
	return m.st.changed
}

// snapshot converts records to Messages with two allocations: one for the
// messages, one shared by their flag slices (each capped, so appending to
// one cannot overwrite another).
func (st *mbox) snapshot(recs []rec) []Message {
	if len(recs) == 0 {
		return []Message{}
	}
	nflags := 0
	for i := range recs {
		nflags += popcount(recs[i].sys)
		if kw := recs[i].kw; kw != "" {
			nflags += strings.Count(kw, " ") + 1
		}
	}
	backing := make([]string, 0, nflags)
	out := make([]Message, len(recs))
	for i := range recs {
		r := &recs[i]
		start := len(backing)
		backing = r.appendFlagNames(backing)
		m := &out[i]
		m.UID, m.UIDL, m.Size = r.uid, r.uidl, r.size
		m.InternalDate = time.Unix(r.date, 0)
		if r.retrieved != 0 {
			m.Retrieved = time.Unix(r.retrieved, 0)
		}
		if len(backing) > start {
			m.Flags = backing[start:len(backing):len(backing)]
		}
	}
	return out
}

func (st *mbox) message(r *rec) Message {
	return st.snapshot([]rec{*r})[0]
}

func (st *mbox) snapshotIdx(idxs []int) []Message {
	recs := make([]rec, len(idxs))
	for k, i := range idxs {
		recs[k] = st.recs[i]
	}
	return st.snapshot(recs)
}

// Open opens the message file for reading; the caller closes it. It finds
// the file even if another agent moved it from new/ to cur/ or changed its
// flags. ErrNoMessage when the message is gone.
func (m *Mailbox) Open(uid uint32) (*os.File, error) {
	if err := m.lock(); err != nil {
		return nil, err
	}
	defer m.unlock()
	st := m.st
	for attempt := 0; ; attempt++ {
		i, ok := st.find(uid)
		if !ok {
			return nil, fmt.Errorf("mailbox %s: uid %d: %w", m.name, uid, ErrNoMessage)
		}
		f, err := os.Open(st.path(&st.recs[i]))
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, fs.ErrNotExist) || attempt > 0 {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("mailbox %s: uid %d: %w", m.name, uid, ErrNoMessage)
			}
			return nil, fmt.Errorf("mailbox %s: opening uid %d: %w", m.name, uid, err)
		}
		// Moved or re-flagged by another agent: find it again.
		if err := st.syncFull(); err != nil {
			return nil, err
		}
	}
}
