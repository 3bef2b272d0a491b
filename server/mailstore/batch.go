package mailstore

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// Batched delivery, for imports: many messages written to tmp/, then
// placed together with one fsync of new/ and cur/ and one index append
// and fsync. See "Batched delivery" in the package documentation.

// BatchLimits bound how much waits in tmp/ before a Batch must be
// committed.
type BatchLimits struct {
	// Messages is how many messages a batch holds (default 128). Each
	// keeps its file open until the commit.
	Messages int
	// Bytes is how many bytes of messages a batch holds (default 32 MiB).
	Bytes int64
}

// DefaultBatchLimits are the limits a zero BatchLimits means.
var DefaultBatchLimits = BatchLimits{Messages: 128, Bytes: 32 << 20}

// Batch delivers many messages into one mailbox with the guarantees of
// Deliver, but pays for the directory and index fsyncs once per batch:
// Add writes a message to tmp/, Commit makes all of them durable and
// visible. A message counts as delivered only when Commit returned it.
// A Batch is used by one goroutine at a time; other deliveries to the
// mailbox may go on meanwhile.
type Batch struct {
	m     *Mailbox
	lim   BatchLimits
	items []batchItem
	bytes int64
	given map[string]bool // given UIDLs waiting in the batch
	used  int64           // the user's usage when the batch started; -1: not read yet
}

type batchItem struct {
	f       *os.File // open, written, not yet fsynced
	tmp     string
	uniq    string
	uidl    string // given, or ""
	size    int64
	date    int64
	sys     sysFlags
	kw      string
	created time.Time
}

// Delivered is the outcome of one message of a committed Batch, in the
// order of Add.
type Delivered struct {
	// UIDL is the UIDL given to Add ("" if none was).
	UIDL string
	// Message is the stored message, unless Duplicate.
	Message Message
	// Duplicate: a message with the given UIDL arrived in the mailbox
	// after Add (another delivery); this one was not stored.
	Duplicate bool
}

// NewBatch starts a batched delivery into the user's mailbox. Zero
// fields of lim take DefaultBatchLimits.
func (u *User) NewBatch(mailbox string, lim BatchLimits) (*Batch, error) {
	m, err := u.Mailbox(mailbox)
	if err != nil {
		return nil, err
	}
	if lim.Messages <= 0 {
		lim.Messages = DefaultBatchLimits.Messages
	}
	if lim.Bytes <= 0 {
		lim.Bytes = DefaultBatchLimits.Bytes
	}
	return &Batch{m: m, lim: lim, given: map[string]bool{}, used: -1}, nil
}

// Len is how many messages wait for Commit.
func (b *Batch) Len() int { return len(b.items) }

// Full reports whether the batch reached a limit and must be committed
// before the next Add.
func (b *Batch) Full() bool {
	return len(b.items) >= b.lim.Messages || b.bytes >= b.lim.Bytes
}

// Add writes a message to the mailbox's tmp/ (bare LF becomes CRLF) for
// the next Commit; nothing is visible or durable before it. It refuses,
// with the errors of Deliver and nothing kept, a message that is too
// large or over quota (the quota counts the batch's own messages), bad
// flags or UIDL, and ErrDuplicateUIDL for a given UIDL already in the
// batch (one already in the mailbox is found by Commit: Duplicate). Add on a full batch fails; Commit first.
func (b *Batch) Add(r io.Reader, opts DeliverOptions) error {
	if b.Full() {
		return errors.New("mailstore: batch full: commit it first")
	}
	m := b.m
	p, err := m.prepare(opts)
	if err != nil {
		return err
	}
	if opts.UIDL != "" && b.given[opts.UIDL] {
		return fmt.Errorf("mailstore: delivering to %s: UIDL %q: %w", m.st.logName, opts.UIDL, ErrDuplicateUIDL)
	}
	sys, kws, now, date := p.sys, p.kws, p.now, p.date
	// The user's usage is read once per batch, the batch's own bytes
	// added: other deliveries meanwhile may overshoot the quota by their
	// own sizes, as with Deliver.
	limit, err := m.deliveryLimit(opts, func() (int64, error) {
		if b.used < 0 {
			used, _, err := m.u.Usage()
			if err != nil {
				return 0, err
			}
			b.used = used
		}
		return b.used + b.bytes, nil
	})
	if err != nil {
		return err
	}
	uniq := m.u.s.newUnique(now)
	tmp := filepath.Join(m.st.dir, "tmp", uniq)
	f, size, err := m.createTmp(tmp, r, now, date, limit)
	if err != nil {
		return err
	}
	if !m.u.s.nosync {
		startWriteback(f)
	}
	b.items = append(b.items, batchItem{
		f: f, tmp: tmp, uniq: uniq, uidl: opts.UIDL, size: size, date: date.Unix(),
		sys: sys, kw: joinKeywords(kws), created: now,
	})
	b.bytes += size
	if opts.UIDL != "" {
		b.given[opts.UIDL] = true
	}
	return nil
}

// Commit makes the batch's messages durable and visible, in the order
// they were added, and empties the batch: every file is fsynced, then
// under the mailbox lock each gets its UID and is renamed into new/ or
// cur/, those directories are fsynced once, and the index records are
// appended with one write and one fsync. It returns only then. On error
// none of the batch is stored (a crash meanwhile may leave some of it
// stored, each message whole and found by the next load; see the package
// documentation).
func (b *Batch) Commit() ([]Delivered, error) {
	items := b.items
	b.items, b.bytes, b.used = nil, 0, -1
	clear(b.given)
	if len(items) == 0 {
		return nil, nil
	}
	m := b.m
	placed := make([]string, 0, len(items))
	crashed := false
	defer func() {
		for i := range items {
			if crashed {
				break
			}
			if items[i].f != nil {
				_ = items[i].f.Close()
			}
			if items[i].tmp != "" {
				_ = os.Remove(items[i].tmp)
			}
		}
	}()
	fail := func(err error) ([]Delivered, error) {
		return nil, fmt.Errorf("mailstore: delivering to %s: %w", m.st.logName, err)
	}
	// The files first, outside the lock: the writeback Add started has
	// put most of the data on disk, so these fsyncs mostly find it done.
	for i := range items {
		err := m.u.s.syncFile(items[i].f)
		if cerr := items[i].f.Close(); err == nil {
			err = cerr
		}
		items[i].f = nil
		if err != nil {
			return fail(err)
		}
	}
	if crashHook != nil && crashHook("synced", 0) {
		crashed = true
		return nil, errCrash
	}

	if err := m.lock(); err != nil {
		return nil, err
	}
	defer m.unlock()
	st := m.st
	if err := st.checkUIDSpace(len(items)); err != nil {
		return nil, err
	}
	present := st.uidlSet()
	out := make([]Delivered, len(items))
	recs := make([]rec, 0, len(items))
	var touched [2]bool
	undo := func(err error) ([]Delivered, error) {
		for _, p := range placed {
			_ = os.Remove(p)
		}
		_ = st.syncSubdirs(touched)
		st.unload()
		return fail(err)
	}
	for i := range items {
		it := &items[i]
		out[i].UIDL = it.uidl
		uniq := it.uniq
		if it.uidl != "" && present[it.uidl] {
			out[i].Duplicate = true
			continue
		}
		if it.uidl == "" && present[uniq] {
			uniq = st.s.newUnique(it.created)
		}
		rc := newRec(uniq, st.uidnext+uint32(len(recs)), st.uv, it.size, it.date, it.sys, it.kw, it.uidl)
		dst := st.path(&rc)
		if err := os.Rename(it.tmp, dst); err != nil {
			return undo(err)
		}
		it.tmp = ""
		placed = append(placed, dst)
		touched[b2i(rc.inCur)] = true
		present[rc.uidl] = true
		recs = append(recs, rc)
		if crashHook != nil && crashHook("renamed", len(recs)) {
			crashed = true
			return nil, errCrash
		}
	}
	if len(recs) == 0 {
		return out, nil
	}
	if err := st.syncSubdirs(touched); err != nil {
		return undo(err)
	}
	if crashHook != nil && crashHook("dirsynced", len(recs)) {
		crashed = true
		return nil, errCrash
	}
	var log []byte
	for i := range recs {
		log = appendAdd(log, &recs[i])
	}
	st.addRecs(recs)
	st.uidnext += uint32(len(recs))
	if err := st.appendLog(log, len(recs)); err != nil {
		return undo(err)
	}
	st.noteOwnChange()
	st.notify()
	msgs := st.snapshot(recs)
	k := 0
	for i := range out {
		if !out[i].Duplicate {
			out[i].Message = msgs[k]
			k++
		}
	}
	return out, nil
}

// Discard drops the batch's messages: nothing of them is stored.
func (b *Batch) Discard() {
	for _, it := range b.items {
		_ = it.f.Close()
		_ = os.Remove(it.tmp)
	}
	b.items, b.bytes, b.used = nil, 0, -1
	clear(b.given)
}

// crashHook, set only by tests, simulates a kill -9 at a step of Commit
// ("synced": the files fsynced, none placed; "renamed": done of them
// placed; "dirsynced": new/ and cur/ fsynced, no index record): when it
// returns true, Commit returns errCrash at once and leaves everything on
// disk as it is.
var crashHook func(step string, done int) bool

var errCrash = errors.New("mailstore: simulated crash")

// uidlSet is the set of the mailbox's UIDLs.
func (st *mbox) uidlSet() map[string]bool {
	set := make(map[string]bool, len(st.recs))
	for i := range st.recs {
		set[st.recs[i].uidl] = true
	}
	return set
}
