package imapd

import (
	"errors"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"mailsetup/server/mailstore"
)

// view is a session's picture of its selected mailbox: the messages in
// the order of their sequence numbers, as the client was last told.
// Messages expunged meanwhile stay (gone) until an EXPUNGE response may
// be sent (RFC 3501 §7.4.1: not during FETCH, STORE, SEARCH); new ones
// are added with an EXISTS response; changed flags are sent as FETCH.
//
// The view is used only by the session's connection goroutine, or by
// its IDLE goroutine while the connection goroutine waits for it.
type view struct {
	mb          *mailstore.Mailbox
	readOnly    bool
	uidValidity uint32
	msgs        []vmsg
	nGone       int             // messages marked gone, not yet expunged
	keywords    map[string]bool // keywords announced in FLAGS
	changed     <-chan struct{} // closed on the mailbox's next change
	synced      time.Time
	searchRes   []uint32 // SEARCHRES saved result ($)

	// The mailbox's messages as last read, valid until curCh is closed;
	// so a client fetching one message per command does not make every
	// command copy the whole index.
	cur   []mailstore.Message
	curCh <-chan struct{}
}

type vmsg struct {
	uid   uint32
	flags []string // as last told to the client
	gone  bool
}

// errMailboxGone: the selected mailbox was deleted, renamed or rebuilt
// with a new UIDVALIDITY; the connection ends (RFC 3501 §2.3.1.1).
var errMailboxGone = errors.New("imapd: the selected mailbox is gone")

// systemFlags are the flags every mailbox supports.
var systemFlags = []imap.Flag{imap.FlagAnswered, imap.FlagFlagged, imap.FlagDeleted, imap.FlagSeen, imap.FlagDraft}

// Select implements imapserver.Session for SELECT and EXAMINE.
func (s *session) Select(name string, options *imap.SelectOptions) (*imap.SelectData, error) {
	defer s.enter()()
	s.view = nil
	mb, err := s.user.Mailbox(name)
	if err != nil {
		return nil, s.mapStoreError(err, "selecting a mailbox")
	}
	changed := mb.Changed()
	snap, err := mb.Snapshot()
	if err != nil {
		return nil, s.mapStoreError(err, "selecting a mailbox")
	}
	v := &view{mb: mb, readOnly: options.ReadOnly, uidValidity: snap.UIDValidity, keywords: map[string]bool{},
		changed: changed, synced: time.Now(), msgs: make([]vmsg, len(snap.Messages))}
	v.keep(snap.Messages, changed)
	var firstUnseen uint32
	for i, m := range snap.Messages {
		v.msgs[i] = vmsg{uid: m.UID, flags: m.Flags}
		if firstUnseen == 0 && !m.HasFlag(mailstore.FlagSeen) {
			firstUnseen = uint32(i + 1)
		}
		v.noteKeywords(m.Flags)
	}
	s.view = v
	data := &imap.SelectData{
		Flags:             v.mailboxFlags(),
		NumMessages:       uint32(len(v.msgs)),
		FirstUnseenSeqNum: firstUnseen,
		UIDNext:           imap.UID(snap.UIDNext),
		UIDValidity:       snap.UIDValidity,
	}
	if !v.readOnly {
		data.PermanentFlags = append(v.mailboxFlags(), imap.FlagWildcard)
	} else {
		data.PermanentFlags = []imap.Flag{}
	}
	return data, nil
}

// noteKeywords adds keywords to the announced set; it reports whether
// any was new.
func (v *view) noteKeywords(flags []string) bool {
	added := false
	for _, f := range flags {
		if strings.HasPrefix(f, `\`) {
			continue
		}
		if k := strings.ToLower(f); !v.keywords[k] {
			v.keywords[k] = true
			added = true
		}
	}
	return added
}

func (v *view) mailboxFlags() []imap.Flag {
	flags := slices.Clone(systemFlags)
	var kws []string
	for k := range v.keywords {
		kws = append(kws, k)
	}
	sort.Strings(kws)
	for _, k := range kws {
		flags = append(flags, imap.Flag(k))
	}
	return flags
}

// Unselect implements imapserver.Session.
func (s *session) Unselect() error {
	s.view = nil
	return nil
}

// Poll implements imapserver.Session: it reports changes after each
// command (NOOP included).
func (s *session) Poll(w *imapserver.UpdateWriter, allowExpunge bool) error {
	defer s.enter()()
	if s.view == nil {
		return nil
	}
	return s.sync(w, allowExpunge, false)
}

// Idle implements imapserver.Session (RFC 2177): changes are reported as
// they happen until stop is closed.
func (s *session) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	if s.view == nil {
		<-stop
		return nil
	}
	tick := time.NewTicker(rescanInterval)
	defer tick.Stop()
	for {
		if err := s.sync(w, true, false); err != nil {
			return err
		}
		select {
		case <-stop:
			return nil
		case <-s.view.changed:
		case <-tick.C:
		}
	}
}

// sync brings the view up to date with the mailbox and writes what
// changed. Without force it does nothing unless the mailbox changed or
// was last read rescanInterval ago.
func (s *session) sync(w *imapserver.UpdateWriter, allowExpunge, force bool) error {
	v := s.view
	if !force && time.Since(v.synced) < rescanInterval && !(allowExpunge && v.nGone > 0) {
		select {
		case <-v.changed:
		default:
			return nil
		}
	}
	changed := v.mb.Changed()
	snap, err := v.mb.Snapshot()
	if errors.Is(err, mailstore.ErrNoMailbox) || err == nil && snap.UIDValidity != v.uidValidity {
		return s.mailboxGone()
	}
	if err != nil {
		return s.mapStoreError(err, "reading the selected mailbox")
	}
	v.changed, v.synced = changed, time.Now()
	v.keep(snap.Messages, changed)

	// Mark what is gone, remember flag changes, find what is new.
	cur := snap.Messages
	j := 0
	var flagged []int // view indexes whose flags changed
	newFlags := map[int][]string{}
	for i := range v.msgs {
		m := &v.msgs[i]
		for j < len(cur) && cur[j].UID < m.uid {
			j++
		}
		if m.gone {
			continue
		}
		if j >= len(cur) || cur[j].UID != m.uid {
			m.gone = true
			v.nGone++
			continue
		}
		if !slices.Equal(m.flags, cur[j].Flags) {
			flagged = append(flagged, i)
			newFlags[i] = cur[j].Flags
		}
	}
	var added []mailstore.Message
	last := uint32(0)
	if n := len(v.msgs); n > 0 {
		last = v.msgs[n-1].uid
	}
	for k := len(cur) - 1; k >= 0 && cur[k].UID > last; k-- {
		added = append(added, cur[k])
	}
	slices.Reverse(added)

	var newKeywords bool
	for _, m := range added {
		newKeywords = v.noteKeywords(m.Flags) || newKeywords
	}
	for _, i := range flagged {
		newKeywords = v.noteKeywords(newFlags[i]) || newKeywords
	}
	if newKeywords {
		if err := w.WriteMailboxFlags(v.mailboxFlags()); err != nil {
			return err
		}
	}

	// Flag changes first, while the sequence numbers are still the
	// client's.
	for _, i := range flagged {
		m := &v.msgs[i]
		m.flags = newFlags[i]
		if err := w.WriteMessageFlags(uint32(i+1), imap.UID(m.uid), toIMAPFlags(m.flags)); err != nil {
			return err
		}
	}
	if allowExpunge {
		if err := v.dropGone(w.WriteExpunge, nil); err != nil {
			return err
		}
	}
	if len(added) > 0 {
		for _, m := range added {
			v.msgs = append(v.msgs, vmsg{uid: m.UID, flags: m.Flags})
		}
		if err := w.WriteNumMessages(uint32(len(v.msgs))); err != nil {
			return err
		}
	}
	return nil
}

// dropGone removes gone messages (and those in also) from the view,
// writing an EXPUNGE response for each, in ascending order with the
// sequence numbers as they are after the earlier removals.
func (v *view) dropGone(expunge func(uint32) error, also map[uint32]bool) error {
	out := v.msgs[:0]
	for i, m := range v.msgs {
		if m.gone || also[m.uid] {
			if err := expunge(uint32(len(out) + 1)); err != nil {
				// Keep the view consistent with what was written.
				v.msgs = append(out, v.msgs[i:]...)
				return err
			}
			if m.gone {
				v.nGone--
			}
			continue
		}
		out = append(out, m)
	}
	clear(v.msgs[len(out):])
	v.msgs = out
	return nil
}

// mailboxGone ends the connection: the client's UIDs are no longer
// valid.
func (s *session) mailboxGone() error {
	s.byeOnce.Do(func() {
		s.ic.Bye("the selected mailbox was deleted, renamed or rebuilt; please reconnect")
	})
	return errMailboxGone
}

func toIMAPFlags(flags []string) []imap.Flag {
	out := make([]imap.Flag, len(flags))
	for i, f := range flags {
		out[i] = imap.Flag(f)
	}
	return out
}

// selected returns the view or the error for commands that need one.
func (s *session) selected() (*view, error) {
	if s.view == nil {
		return nil, errNoSelect
	}
	return s.view, nil
}

// resolve returns the view indexes a sequence or UID set names, sorted
// and without duplicates. "*" is the last message of the client's view
// (RFC 3501 §6.4.8, §9 seq-number); "$" is the saved search result (RFC
// 5182).
func (v *view) resolve(set imap.NumSet) []int {
	var idxs []int
	switch set := set.(type) {
	case imap.SeqSet:
		n := uint32(len(v.msgs))
		for _, r := range set {
			start, stop := staticRange(r.Start, r.Stop, n)
			if n == 0 || start > n {
				continue
			}
			stop = min(stop, n)
			for seq := max(start, 1); seq <= stop; seq++ {
				idxs = append(idxs, int(seq-1))
			}
		}
	case imap.UIDSet:
		if imap.IsSearchRes(set) {
			set = imap.UIDSet{}
			for _, uid := range v.searchRes {
				set.AddNum(imap.UID(uid))
			}
		}
		var maxUID uint32
		if n := len(v.msgs); n > 0 {
			maxUID = v.msgs[n-1].uid
		}
		for _, r := range set {
			start, stop := staticRange(uint32(r.Start), uint32(r.Stop), maxUID)
			i, _ := slices.BinarySearchFunc(v.msgs, start, func(m vmsg, uid uint32) int { return cmpUint32(m.uid, uid) })
			for ; i < len(v.msgs) && v.msgs[i].uid <= stop; i++ {
				idxs = append(idxs, i)
			}
		}
	}
	slices.Sort(idxs)
	return slices.Compact(idxs)
}

// staticRange replaces "*" (0) by last and orders the range.
func staticRange(start, stop, last uint32) (uint32, uint32) {
	if start == 0 {
		start = last
	}
	if stop == 0 {
		stop = last
	}
	if start > stop {
		start, stop = stop, start
	}
	return start, stop
}

func cmpUint32(a, b uint32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// present returns the messages at idxs that still exist, with their
// current data from the mailbox, and their indexes.
func (v *view) present(idxs []int) ([]int, []mailstore.Message, error) {
	cur, err := v.messages()
	if err != nil {
		return nil, nil, err
	}
	var outIdx []int
	var out []mailstore.Message
	for _, i := range idxs {
		if v.msgs[i].gone {
			continue
		}
		k, ok := slices.BinarySearchFunc(cur, v.msgs[i].uid, func(m mailstore.Message, uid uint32) int { return cmpUint32(m.UID, uid) })
		if !ok {
			continue
		}
		outIdx = append(outIdx, i)
		out = append(out, cur[k])
	}
	return outIdx, out, nil
}

// messages returns the mailbox's messages, read again only after a
// change. The result is shared: callers must not modify it.
func (v *view) messages() ([]mailstore.Message, error) {
	if v.curCh != nil {
		select {
		case <-v.curCh:
		default:
			return v.cur, nil
		}
	}
	ch := v.mb.Changed()
	cur, err := v.mb.Messages()
	if err != nil {
		return nil, err
	}
	v.keep(cur, ch)
	return cur, nil
}

// cacheMax is the largest listing a session keeps between commands. A
// listing costs about 100 bytes per message; with 200 idle sessions on a
// 10,000-message mailbox the caches held 200 MB. Above this size a command
// reads the listing again (about 1 ms per 10,000 messages).
const cacheMax = 2000

// keep caches a listing until ch is closed, if it is small enough.
func (v *view) keep(msgs []mailstore.Message, ch <-chan struct{}) {
	if len(msgs) > cacheMax {
		v.cur, v.curCh = nil, nil
		return
	}
	v.cur, v.curCh = msgs, ch
}

// Store implements imapserver.Session.
func (s *session) Store(w *imapserver.FetchWriter, numSet imap.NumSet, flags *imap.StoreFlags, _ *imap.StoreOptions) error {
	defer s.enter()()
	v, err := s.selected()
	if err != nil {
		return err
	}
	if v.readOnly {
		return errReadOnly
	}
	idxs, msgs, err := v.present(v.resolve(numSet))
	if err != nil {
		return s.mapStoreError(err, "reading the selected mailbox")
	}
	if len(idxs) == 0 {
		return nil
	}
	var op mailstore.FlagOp
	switch flags.Op {
	case imap.StoreFlagsAdd:
		op = mailstore.FlagsAdd
	case imap.StoreFlagsDel:
		op = mailstore.FlagsRemove
	default:
		op = mailstore.FlagsReplace
	}
	uids := make([]uint32, len(msgs))
	for i, m := range msgs {
		uids[i] = m.UID
	}
	changed, err := v.mb.StoreFlags(uids, op, storableFlags(flags.Flags))
	if err != nil {
		return s.mapStoreError(err, "storing flags")
	}
	_, isUID := numSet.(imap.UIDSet)
	for k, i := range idxs {
		pos, ok := slices.BinarySearchFunc(changed, uids[k], func(m mailstore.Message, uid uint32) int { return cmpUint32(m.UID, uid) })
		if !ok {
			continue // expunged meanwhile
		}
		m := &v.msgs[i]
		m.flags = changed[pos].Flags
		v.noteKeywords(m.flags)
		if flags.Silent {
			continue
		}
		rw := w.CreateMessage(uint32(i + 1))
		if isUID {
			rw.WriteUID(imap.UID(m.uid))
		}
		rw.WriteFlags(toIMAPFlags(m.flags))
		if err := rw.Close(); err != nil {
			return err
		}
	}
	return nil
}

// Expunge implements imapserver.Session for EXPUNGE, UID EXPUNGE (RFC
// 4315) and CLOSE. In a read-only mailbox it does nothing (CLOSE after
// EXAMINE must not expunge).
func (s *session) Expunge(w *imapserver.ExpungeWriter, uids *imap.UIDSet) error {
	defer s.enter()()
	v, err := s.selected()
	if err != nil {
		return err
	}
	if v.readOnly {
		return nil
	}
	all := make([]int, len(v.msgs))
	for i := range all {
		all[i] = i
	}
	_, msgs, err := v.present(all)
	if err != nil {
		return s.mapStoreError(err, "reading the selected mailbox")
	}
	var targets []uint32
	for _, m := range msgs {
		if m.HasFlag(mailstore.FlagDeleted) && (uids == nil || uids.Contains(imap.UID(m.UID))) {
			targets = append(targets, m.UID)
		}
	}
	if len(targets) == 0 {
		return nil
	}
	done, err := v.mb.Expunge(targets)
	if err != nil {
		return s.mapStoreError(err, "expunging")
	}
	return v.dropGone(w.WriteExpunge, uidSet(done))
}

func uidSet(uids []uint32) map[uint32]bool {
	m := make(map[uint32]bool, len(uids))
	for _, u := range uids {
		m[u] = true
	}
	return m
}

// Copy implements imapserver.Session, with COPYUID (RFC 4315).
func (s *session) Copy(numSet imap.NumSet, dest string) (*imap.CopyData, error) {
	defer s.enter()()
	data, _, err := s.copy(numSet, dest)
	return data, err
}

func (s *session) copy(numSet imap.NumSet, dest string) (*imap.CopyData, [][2]uint32, error) {
	v, err := s.selected()
	if err != nil {
		return nil, nil, err
	}
	dst, err := s.user.Mailbox(dest)
	if errors.Is(err, mailstore.ErrNoMailbox) {
		return nil, nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTryCreate, Text: "no such mailbox: create it first"}
	}
	if err != nil {
		return nil, nil, s.mapStoreError(err, "opening the destination mailbox")
	}
	_, msgs, err := v.present(v.resolve(numSet))
	if err != nil {
		return nil, nil, s.mapStoreError(err, "reading the selected mailbox")
	}
	if len(msgs) == 0 {
		return nil, nil, nil
	}
	if q := s.quota(); q > 0 {
		var size int64
		for _, m := range msgs {
			size += m.Size
		}
		used, _, err := s.user.Usage()
		if err != nil {
			return nil, nil, s.mapStoreError(err, "reading mailbox usage")
		}
		if used+size > q {
			return nil, nil, s.mapStoreError(mailstore.ErrOverQuota, "copying")
		}
	}
	uids := make([]uint32, len(msgs))
	for i, m := range msgs {
		uids[i] = m.UID
	}
	pairs, err := v.mb.CopyTo(dst, uids)
	if err != nil {
		return nil, nil, s.mapStoreError(err, "copying messages")
	}
	if len(pairs) == 0 {
		return nil, nil, nil
	}
	data := &imap.CopyData{UIDValidity: dst.UIDValidity()}
	for _, p := range pairs {
		data.SourceUIDs.AddNum(imap.UID(p[0]))
		data.DestUIDs.AddNum(imap.UID(p[1]))
	}
	return data, pairs, nil
}

// Move implements imapserver.SessionMove (RFC 6851): copy, then expunge
// the originals, announcing COPYUID first.
func (s *session) Move(w *imapserver.MoveWriter, numSet imap.NumSet, dest string) error {
	defer s.enter()()
	if s.view != nil && s.view.readOnly {
		return errReadOnly
	}
	data, pairs, err := s.copy(numSet, dest)
	if err != nil || data == nil {
		return err
	}
	if err := w.WriteCopyData(data); err != nil {
		return err
	}
	src := make([]uint32, len(pairs))
	for i, p := range pairs {
		src[i] = p[0]
	}
	v := s.view
	done, err := v.mb.Expunge(src)
	if err != nil {
		return s.mapStoreError(err, "removing moved messages")
	}
	return v.dropGone(w.WriteExpunge, uidSet(done))
}
