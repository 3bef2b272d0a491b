package mailstore

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

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

func popcount(f sysFlags) int {
	n := 0
	for ; f != 0; f &= f - 1 {
		n++
	}
	return n
}

// appendFlagNames appends r's flags, sorted.
func (r *rec) appendFlagNames(b []string) []string {
	start := len(b)
	for i := range nSysFlags {
		if bit, name, _ := sysFlag(i); r.sys&bit != 0 {
			b = append(b, name)
		}
	}
	if r.kw == "" {
		return b
	}
	for kw := r.kw; kw != ""; {
		var k string
		k, kw, _ = strings.Cut(kw, " ")
		b = append(b, k)
	}
	slices.Sort(b[start:])
	return b
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

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// sortedUIDs returns the UIDs sorted and without duplicates.
func sortedUIDs(uids []uint32) []uint32 {
	u := slices.Clone(uids)
	slices.Sort(u)
	return slices.Compact(u)
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
	uids = sortedUIDs(uids)
	if err := m.lock(); err != nil {
		return nil, err
	}
	defer m.unlock()
	st := m.st

	type change struct {
		i    int
		sys  sysFlags
		kw   string
		move bool // the file must be renamed
	}
	var changes []change
	var idxs []int
	for _, uid := range uids {
		i, ok := st.find(uid)
		if !ok {
			continue
		}
		idxs = append(idxs, i)
		r := &st.recs[i]
		sys, kw := applyFlagOp(op, r.sys, r.kw, opSys, opKw)
		if sys == r.sys && kw == r.kw {
			continue
		}
		changes = append(changes, change{i: i, sys: sys, kw: kw, move: sys != r.sys})
	}
	if len(changes) == 0 {
		return st.snapshotIdx(idxs), nil
	}

	// Rename first: a crash before the index record leaves the new flags
	// in the name, where the next load finds them.
	rename := func(r *rec, sys sysFlags) error {
		nr := *r
		nr.sys, nr.inCur, nr.bare, nr.rawInfo, nr.extra = sys, true, false, false, r.extraLetters()
		if err := os.Rename(st.path(r), st.path(&nr)); err != nil {
			return err
		}
		*r = nr
		return nil
	}
	var lost []int
	var fromNew bool
	var gone []uint32
	fail := func(err error) ([]Message, error) {
		st.unload() // names changed; reload the truth from disk
		return nil, err
	}
	for ci, c := range changes {
		r := &st.recs[c.i]
		if !c.move {
			continue
		}
		wasNew := !r.inCur
		if err := rename(r, c.sys); err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				return fail(fmt.Errorf("mailbox %s: renaming uid %d for its flags: %w", m.name, r.uid, err))
			}
			lost = append(lost, ci)
			continue
		}
		fromNew = fromNew || wasNew
	}
	if len(lost) > 0 {
		li := make([]int, len(lost))
		for k, ci := range lost {
			li[k] = changes[ci].i
		}
		missing, err := st.relocate(li)
		if err != nil {
			return fail(err)
		}
		for _, ci := range lost {
			c := &changes[ci]
			r := &st.recs[c.i]
			if slices.Contains(missing, c.i) {
				gone = append(gone, r.uid)
				c.i = -1
				continue
			}
			wasNew := !r.inCur
			if err := rename(r, c.sys); err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					gone = append(gone, r.uid)
					c.i = -1
					continue
				}
				return fail(fmt.Errorf("mailbox %s: renaming uid %d for its flags: %w", m.name, r.uid, err))
			}
			fromNew = fromNew || wasNew
		}
	}
	if err := st.s.syncDir(filepath.Join(st.dir, "cur")); err != nil {
		return fail(err)
	}
	if fromNew {
		if err := st.s.syncDir(filepath.Join(st.dir, "new")); err != nil {
			return fail(err)
		}
	}
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
	if len(gone) > 0 {
		// Removed by another agent meanwhile.
		slices.Sort(gone)
		if err := st.raiseFloor(gone[len(gone)-1]); err != nil {
			return fail(err)
		}
		for _, uid := range gone {
			log = appendExpunge(log, uid)
			n++
		}
	}
	out := st.snapshotIdx(idxs)
	if len(gone) > 0 {
		st.removeRecs(gone)
		out = slices.DeleteFunc(out, func(msg Message) bool { return slices.Contains(gone, msg.UID) })
	}
	if err := st.appendLog(log, n); err != nil {
		return nil, err
	}
	st.noteOwnChange()
	st.notify()
	return out, nil
}

func (st *mbox) snapshotIdx(idxs []int) []Message {
	recs := make([]rec, len(idxs))
	for k, i := range idxs {
		recs[k] = st.recs[i]
	}
	return st.snapshot(recs)
}

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

// Expunge removes the messages uids (files, then index records) and
// returns the UIDs actually expunged, sorted.
func (m *Mailbox) Expunge(uids []uint32) ([]uint32, error) {
	uids = sortedUIDs(uids)
	if err := m.lock(); err != nil {
		return nil, err
	}
	defer m.unlock()
	st := m.st
	var idxs []int
	var done []uint32
	for _, uid := range uids {
		if i, ok := st.find(uid); ok {
			idxs = append(idxs, i)
			done = append(done, uid)
		}
	}
	if len(done) == 0 {
		return nil, nil
	}
	// Before any UID disappears, make sure a rebuild will not reuse it.
	if err := st.raiseFloor(done[len(done)-1]); err != nil {
		return nil, err
	}
	fail := func(err error) ([]uint32, error) {
		st.unload() // some files are gone; reload the truth from disk
		return nil, err
	}
	// Files go first: an index record without its file is cleaned up by
	// the next load, a file without its index record would come back.
	var lost []int
	var touched [2]bool // new/, cur/
	for _, i := range idxs {
		touched[b2i(st.recs[i].inCur)] = true
		if err := os.Remove(st.path(&st.recs[i])); err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				return fail(fmt.Errorf("mailbox %s: removing uid %d: %w", m.name, st.recs[i].uid, err))
			}
			lost = append(lost, i)
		}
	}
	if len(lost) > 0 {
		if _, err := st.relocate(lost); err != nil {
			return fail(err)
		}
		for _, i := range lost {
			touched[b2i(st.recs[i].inCur)] = true
			if err := os.Remove(st.path(&st.recs[i])); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fail(fmt.Errorf("mailbox %s: removing uid %d: %w", m.name, st.recs[i].uid, err))
			}
		}
	}
	for k, sub := range [2]string{"new", "cur"} {
		if !touched[k] {
			continue
		}
		if err := st.s.syncDir(filepath.Join(st.dir, sub)); err != nil {
			return fail(err)
		}
	}
	var log []byte
	for _, uid := range done {
		log = appendExpunge(log, uid)
	}
	st.removeRecs(done)
	if err := st.appendLog(log, len(done)); err != nil {
		return nil, err
	}
	st.noteOwnChange()
	st.notify()
	return done, nil
}

// Append stores a message in this mailbox, like User.Deliver (IMAP
// APPEND, RFC 3501 §6.3.11). A zero date means now.
func (m *Mailbox) Append(r io.Reader, flags []string, date time.Time) (Message, error) {
	return m.deliver(r, DeliverOptions{Flags: flags, InternalDate: date})
}

// CopyTo copies the messages uids (absent ones are skipped) to dst and
// returns (source UID, destination UID) pairs in source UID order, for
// COPYUID (RFC 4315). Copies are new messages with new UIDLs; flags and
// internal dates are kept. Files are hard-linked when possible, else
// copied and fsynced. dst may be m.
func (m *Mailbox) CopyTo(dst *Mailbox, uids []uint32) ([][2]uint32, error) {
	uids = sortedUIDs(uids)
	type item struct {
		src  uint32
		r    rec    // the source record
		uniq string // unique part of the copy's name
		tmp  string // the copy in dst's tmp/
	}
	// Collect under the source lock only, and link into dst's tmp/
	// without any lock: the two locks are never held together.
	if err := m.lock(); err != nil {
		return nil, err
	}
	var items []item
	for _, uid := range uids {
		if i, ok := m.st.find(uid); ok {
			items = append(items, item{src: uid, r: m.st.recs[i]})
		}
	}
	m.unlock()
	if len(items) == 0 {
		return nil, nil
	}
	s := m.u.s
	now := s.now()
	var ready []item
	cleanup := func() {
		for _, it := range ready {
			if it.tmp != "" {
				_ = os.Remove(it.tmp)
			}
		}
	}
	for _, it := range items {
		it.uniq = s.newUnique(now)
		it.tmp = filepath.Join(dst.st.dir, "tmp", it.uniq)
		err := m.linkOrCopy(&it.r, it.tmp)
		if errors.Is(err, ErrNoMessage) {
			continue // expunged meanwhile
		}
		if err != nil {
			_ = os.Remove(it.tmp)
			cleanup()
			return nil, fmt.Errorf("mailbox %s: copying uid %d to %s: %w", m.name, it.src, dst.name, err)
		}
		ready = append(ready, it)
	}
	if len(ready) == 0 {
		return nil, nil
	}

	if err := dst.lock(); err != nil {
		cleanup()
		return nil, err
	}
	defer dst.unlock()
	st := dst.st
	var placed []string
	fail := func(err error) ([][2]uint32, error) {
		for _, p := range placed {
			_ = os.Remove(p)
		}
		cleanup()
		st.unload()
		return nil, err
	}
	if err := st.checkUIDSpace(len(ready)); err != nil {
		cleanup()
		return nil, err
	}
	pairs := make([][2]uint32, 0, len(ready))
	added := make([]rec, 0, len(ready))
	var log []byte
	var touched [2]bool // new/, cur/
	next := st.uidnext
	for k := range ready {
		it := &ready[k]
		r := rec{
			uid: next, sys: it.r.sys, kw: it.r.kw, size: it.r.size, date: it.r.date,
			base: makeBase(it.uniq, it.r.size, next, st.uv, ""),
		}
		r.uidl = uidlFromBase(r.base)
		r.inCur = r.sys != 0 || r.kw != ""
		r.bare = !r.inCur
		p := st.path(&r)
		if err := os.Rename(it.tmp, p); err != nil {
			return fail(fmt.Errorf("mailbox %s: placing copy: %w", dst.name, err))
		}
		it.tmp = ""
		touched[b2i(r.inCur)] = true
		placed = append(placed, p)
		next++
		added = append(added, r)
		log = appendAdd(log, &r)
		pairs = append(pairs, [2]uint32{it.src, r.uid})
	}
	for k, sub := range [2]string{"new", "cur"} {
		if !touched[k] {
			continue
		}
		if err := st.s.syncDir(filepath.Join(st.dir, sub)); err != nil {
			return fail(err)
		}
	}
	st.uidnext = next
	st.recs = append(st.recs, added...)
	for i := range added {
		st.bytes += added[i].size
	}
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
