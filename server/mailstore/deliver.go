package mailstore

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Delivery (SMTP, import) and IMAP APPEND: a new message, streamed to
// tmp/, then given its UID and placed under the mailbox lock. See
// "Guarantees" in the package documentation.

// DeliverOptions tune one delivery.
type DeliverOptions struct {
	// Flags are IMAP flags to store with the message; with any, the
	// file goes to cur/ instead of new/.
	Flags []string
	// InternalDate is the IMAP internal date; zero means now. Stored in
	// whole seconds, as the file's modification time.
	InternalDate time.Time
	// UIDL is the message's POP3 UIDL on the server it is imported from
	// (1 to 70 characters 0x21..0x7E); it is kept in the file name and
	// survives every rebuild. "": generate one.
	UIDL string
	// MaxSize > 0: fail with ErrTooLarge once the stored message (with
	// CRLF line endings) would exceed MaxSize bytes.
	MaxSize int64
	// QuotaBytes > 0: fail with ErrOverQuota when the user's usage plus
	// this message would exceed QuotaBytes. Concurrent deliveries to one
	// user may together overshoot by at most their own sizes.
	QuotaBytes int64
}

// Deliver writes a message into a mailbox and returns only when it is
// durable: the message is streamed to tmp/ (bare LF becomes CRLF), the
// file fsynced, then under the mailbox lock it gets its UID, is renamed
// into new/ (cur/ with flags), the directory is fsynced, and the index
// record appended and fsynced. On any error nothing is visible.
func (u *User) Deliver(mailbox string, r io.Reader, opts DeliverOptions) (Message, error) {
	m, err := u.Mailbox(mailbox)
	if err != nil {
		return Message{}, err
	}
	return m.deliver(r, opts)
}

// Append stores a message in this mailbox, like User.Deliver (IMAP
// APPEND, RFC 3501 §6.3.11). A zero date means now.
func (m *Mailbox) Append(r io.Reader, flags []string, date time.Time) (Message, error) {
	return m.deliver(r, DeliverOptions{Flags: flags, InternalDate: date})
}

// sizeLimit is how large a delivery may get, and the error for larger.
type sizeLimit struct {
	max int64 // -1: none
	err error
}

// prepared is a delivery's options, checked: the flags parsed, the
// internal date in whole seconds.
type prepared struct {
	sys       sysFlags
	kws       []string
	now, date time.Time
}

// prepare checks a delivery's flags and UIDL and fixes its dates.
func (m *Mailbox) prepare(opts DeliverOptions) (prepared, error) {
	sys, kws, err := parseFlags(opts.Flags)
	if err != nil {
		return prepared{}, err
	}
	if opts.UIDL != "" && !ValidUIDL(opts.UIDL) {
		return prepared{}, fmt.Errorf("%w: UIDL %q (RFC 1939 §7: 1 to 70 characters 0x21..0x7E)", ErrBadName, opts.UIDL)
	}
	now := m.u.s.now()
	date := opts.InternalDate
	if date.IsZero() {
		date = now
	}
	return prepared{sys: sys, kws: kws, now: now, date: time.Unix(date.Unix(), 0)}, nil
}

func (m *Mailbox) deliver(r io.Reader, opts DeliverOptions) (Message, error) {
	p, err := m.prepare(opts)
	if err != nil {
		return Message{}, err
	}
	sys, kws, now, date := p.sys, p.kws, p.now, p.date
	limit, err := m.deliveryLimit(opts, func() (int64, error) {
		used, _, err := m.u.Usage()
		return used, err
	})
	if err != nil {
		return Message{}, err
	}
	uniq := m.u.s.newUnique(now)
	tmpPath := filepath.Join(m.st.dir, "tmp", uniq)
	size, err := m.writeTmp(tmpPath, r, now, date, limit)
	if err != nil {
		return Message{}, err
	}
	placed := false
	defer func() {
		if !placed {
			_ = os.Remove(tmpPath)
		}
	}()

	if err := m.lock(); err != nil {
		return Message{}, err
	}
	defer m.unlock()
	st := m.st
	uniq, err = st.uniqueFor(uniq, opts.UIDL, now)
	if err != nil {
		return Message{}, err
	}
	if err := st.checkUIDSpace(1); err != nil {
		return Message{}, err
	}
	rc := newRec(uniq, st.uidnext, st.uv, size, date.Unix(), sys, joinKeywords(kws), opts.UIDL)
	dst := st.path(&rc)
	if err := os.Rename(tmpPath, dst); err != nil {
		return Message{}, fmt.Errorf("mailstore: delivering to %s: %w", m.st.logName, err)
	}
	placed = true
	return st.recordDelivery(rc, dst)
}

// deliveryLimit combines DeliverOptions.MaxSize and what is left of
// DeliverOptions.QuotaBytes beyond the bytes used (read only with a
// quota); ErrOverQuota when nothing is left.
func (m *Mailbox) deliveryLimit(opts DeliverOptions, usage func() (int64, error)) (sizeLimit, error) {
	limit := sizeLimit{max: -1}
	if opts.MaxSize > 0 {
		limit = sizeLimit{opts.MaxSize, ErrTooLarge}
	}
	if opts.QuotaBytes > 0 {
		used, err := usage()
		if err != nil {
			return limit, err
		}
		left := opts.QuotaBytes - used
		if left < 0 {
			return limit, fmt.Errorf("mailstore: delivering to %s: %d of %d bytes used: %w", m.st.logName, used, opts.QuotaBytes, ErrOverQuota)
		}
		if limit.max < 0 || left < limit.max {
			limit = sizeLimit{left, ErrOverQuota}
		}
	}
	return limit, nil
}

// writeTmp streams the message to a new file at tmpPath with CRLF line
// endings, sets its modification time to date and fsyncs it. It returns
// the size written; on error the file is removed.
func (m *Mailbox) writeTmp(tmpPath string, r io.Reader, now, date time.Time, limit sizeLimit) (int64, error) {
	f, size, err := m.createTmp(tmpPath, r, now, date, limit)
	if err != nil {
		return 0, err
	}
	err = m.u.s.syncFile(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tmpPath)
		return 0, fmt.Errorf("mailstore: delivering to %s: %w", m.st.logName, err)
	}
	return size, nil
}

// createTmp streams the message to a new file at tmpPath with CRLF line
// endings and sets its modification time to date, and returns the file,
// open and not yet fsynced, and the size written; on error the file is
// removed.
func (m *Mailbox) createTmp(tmpPath string, r io.Reader, now, date time.Time, limit sizeLimit) (*os.File, int64, error) {
	f, err := os.OpenFile(tmpPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, 0, fmt.Errorf("mailstore: delivering to %s: %w", m.st.logName, ErrNoMailbox)
		}
		return nil, 0, fmt.Errorf("mailstore: delivering to %s: creating file in tmp/: %w", m.st.logName, err)
	}
	size, err := copyCRLF(f, r, limit.max)
	if errors.Is(err, errLimit) {
		err = limit.err
	}
	if err == nil {
		// The mtime is the internal date (as Dovecot reads it); set it
		// before the fsync so that it is durable too.
		err = os.Chtimes(tmpPath, now, date)
	}
	if err != nil {
		_ = f.Close()
		_ = os.Remove(tmpPath)
		return nil, 0, fmt.Errorf("mailstore: delivering to %s: %w", m.st.logName, err)
	}
	return f, size, nil
}

// uniqueFor makes sure a new message's UIDL is unique in the mailbox and
// returns the unique part to name it with. A given UIDL (from an import)
// already present is ErrDuplicateUIDL; a generated one that an import
// chose alike is replaced by a new one.
func (st *mbox) uniqueFor(uniq, given string, now time.Time) (string, error) {
	// Generated UIDLs are unique by construction unless an import chose
	// one alike.
	if given == "" && st.nGiven == 0 {
		return uniq, nil
	}
	want := given
	if want == "" {
		want = uniq
	}
	for i := range st.recs {
		if st.recs[i].uidl == want {
			if given != "" {
				return "", fmt.Errorf("mailstore: delivering to %s: UIDL %q: %w", st.logName, want, ErrDuplicateUIDL)
			}
			return st.s.newUnique(now), nil
		}
	}
	return uniq, nil
}

// recordDelivery makes the new file at dst durable and adds its record
// rc; on failure the file is removed again.
func (st *mbox) recordDelivery(rc rec, dst string) (Message, error) {
	dstDir := filepath.Dir(dst)
	undo := func(err error) (Message, error) {
		_ = os.Remove(dst)
		_ = st.s.syncDir(dstDir)
		st.unload()
		return Message{}, fmt.Errorf("mailstore: delivering to %s: %w", st.logName, err)
	}
	if err := st.s.syncDir(dstDir); err != nil {
		return undo(err)
	}
	st.addRecs([]rec{rc})
	st.uidnext++
	if err := st.appendLog(appendAdd(nil, &rc), 1); err != nil {
		return undo(err)
	}
	st.noteOwnChange()
	st.notify()
	return st.message(&rc), nil
}
