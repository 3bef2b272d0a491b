package mailstore

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

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

func (m *Mailbox) deliver(r io.Reader, opts DeliverOptions) (Message, error) {
	s := m.u.s
	sys, kws, err := parseFlags(opts.Flags)
	if err != nil {
		return Message{}, err
	}
	if opts.UIDL != "" && !ValidUIDL(opts.UIDL) {
		return Message{}, fmt.Errorf("%w: UIDL %q (RFC 1939 §7: 1 to 70 characters 0x21..0x7E)", ErrBadName, opts.UIDL)
	}
	now := s.now()
	date := opts.InternalDate
	if date.IsZero() {
		date = now
	}
	date = time.Unix(date.Unix(), 0)

	limit, limitErr := int64(-1), error(nil)
	if opts.MaxSize > 0 {
		limit, limitErr = opts.MaxSize, ErrTooLarge
	}
	if opts.QuotaBytes > 0 {
		used, _, err := m.u.Usage()
		if err != nil {
			return Message{}, err
		}
		left := opts.QuotaBytes - used
		if left < 0 {
			return Message{}, fmt.Errorf("mailstore: delivering to %s: %d of %d bytes used: %w", m.st.logName, used, opts.QuotaBytes, ErrOverQuota)
		}
		if limit < 0 || left < limit {
			limit, limitErr = left, ErrOverQuota
		}
	}

	uniq := s.newUnique(now)
	tmpPath := filepath.Join(m.st.dir, "tmp", uniq)
	f, err := os.OpenFile(tmpPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Message{}, fmt.Errorf("mailstore: delivering to %s: %w", m.st.logName, ErrNoMailbox)
		}
		return Message{}, fmt.Errorf("mailstore: delivering to %s: creating file in tmp/: %w", m.st.logName, err)
	}
	placed := false
	defer func() {
		if !placed {
			_ = os.Remove(tmpPath)
		}
	}()
	size, err := copyCRLF(f, r, limit)
	if errors.Is(err, errLimit) {
		err = limitErr
	}
	if err == nil {
		// The mtime is the internal date (as Dovecot reads it); set it
		// before the fsync so that it is durable too.
		err = os.Chtimes(tmpPath, now, date)
	}
	if err == nil {
		err = s.syncFile(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Message{}, fmt.Errorf("mailstore: delivering to %s: %w", m.st.logName, err)
	}

	if err := m.lock(); err != nil {
		return Message{}, err
	}
	defer m.unlock()
	st := m.st
	if opts.UIDL != "" || st.nGiven > 0 {
		// A UIDL must be unique in its mailbox. Generated ones are
		// unique by construction unless an import chose one alike.
		want := opts.UIDL
		if want == "" {
			want = uniq
		}
		for i := range st.recs {
			if st.recs[i].uidl == want {
				if opts.UIDL != "" {
					return Message{}, fmt.Errorf("mailstore: delivering to %s: UIDL %q: %w", m.st.logName, want, ErrDuplicateUIDL)
				}
				uniq = s.newUnique(now)
				break
			}
		}
	}
	if err := st.checkUIDSpace(1); err != nil {
		return Message{}, err
	}
	rc := rec{
		uid: st.uidnext, sys: sys, kw: joinKeywords(kws), size: size, date: date.Unix(),
		base: makeBase(uniq, size, st.uidnext, st.uv, opts.UIDL),
	}
	rc.uidl = uidlFromBase(rc.base)
	rc.inCur = len(opts.Flags) > 0
	rc.bare = !rc.inCur
	dst := st.path(&rc)
	if err := os.Rename(tmpPath, dst); err != nil {
		return Message{}, fmt.Errorf("mailstore: delivering to %s: %w", m.st.logName, err)
	}
	placed = true
	dstDir := filepath.Dir(dst)
	undo := func(err error) (Message, error) {
		_ = os.Remove(dst)
		_ = s.syncDir(dstDir)
		st.unload()
		return Message{}, fmt.Errorf("mailstore: delivering to %s: %w", m.st.logName, err)
	}
	if err := s.syncDir(dstDir); err != nil {
		return undo(err)
	}
	st.recs = append(st.recs, rc)
	st.uidnext++
	st.bytes += rc.size
	if opts.UIDL != "" {
		st.nGiven++
	}
	if err := st.appendLog(appendAdd(nil, &rc), 1); err != nil {
		return undo(err)
	}
	st.noteOwnChange()
	st.notify()
	return st.message(&rc), nil
}

func joinKeywords(kws []string) string {
	switch len(kws) {
	case 0:
		return ""
	case 1:
		return kws[0]
	}
	var b []byte
	for i, k := range kws {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, k...)
	}
	return string(b)
}

// errLimit: copyCRLF went over its limit.
var errLimit = errors.New("size limit exceeded")

// copyCRLF streams r to w, writing every LF not preceded by CR as CRLF,
// and returns the bytes written. limit >= 0: errLimit as soon as more than
// limit bytes would be written.
func copyCRLF(w io.Writer, r io.Reader, limit int64) (int64, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	buf := make([]byte, 32<<10)
	var n int64
	prevCR := false
	for {
		k, rerr := r.Read(buf)
		chunk := buf[:k]
		for len(chunk) > 0 {
			i := bytes.IndexByte(chunk, '\n')
			if i < 0 {
				if _, err := bw.Write(chunk); err != nil {
					return n, err
				}
				n += int64(len(chunk))
				prevCR = chunk[len(chunk)-1] == '\r'
				break
			}
			cr := prevCR
			if i > 0 {
				cr = chunk[i-1] == '\r'
			}
			var err error
			if cr {
				_, err = bw.Write(chunk[:i+1])
				n += int64(i + 1)
			} else {
				if _, err = bw.Write(chunk[:i]); err == nil {
					_, err = bw.WriteString("\r\n")
				}
				n += int64(i + 2)
			}
			if err != nil {
				return n, err
			}
			prevCR = false
			chunk = chunk[i+1:]
		}
		if limit >= 0 && n > limit {
			return n, errLimit
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return n, fmt.Errorf("reading message: %w", rerr)
		}
	}
	if err := bw.Flush(); err != nil {
		return n, err
	}
	return n, nil
}
