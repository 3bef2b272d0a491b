package migrate

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// mbox files as a source, as older POP3 servers (qpopper and the like)
// kept them: each message starts with a "From " line (the
// From_ line) after an empty line or at the start of the file. A message
// gets the UIDL in its X-UIDL header, which those servers wrote and
// served; the header is kept (the message stays as the old server served
// it; POP3 clients compare only the UIDL). A message without X-UIDL is
// refused, because the UIDL the old server computed for it is not known
// and clients that leave mail on the server would download it again,
// unless MboxSource.AcceptNewUIDLs: then its UIDL is derived from its
// content, so that a second import skips it.
//
// Body lines that looked like a From_ line were quoted with ">": mboxrd
// quotes ">From " too, so one ">" is removed from every line matching
// ">+From "; mboxo quotes only "From ", so only ">From " loses its ">"
// (an original ">From " cannot be told apart there). The empty line
// before the next From_ line is the separator, not part of the message.
//
// mboxcl and mboxcl2 (what Solaris mail tools and mutt write) give each
// message's body length in a Content-Length header: the body is exactly
// that many bytes after the header's empty line, so a body line "From "
// needs no quoting (mboxcl2 quotes nothing; mboxcl still quotes "From "
// as mboxo does). A Content-Length is trusted only when the message it
// frames ends where the next From_ line (after an optional empty line)
// or the end of the file begins, as mutt checks it; otherwise the
// message is split at its From_ lines as in mboxo and the account's
// report says how many messages that was.
// Flags come from the Status (R: \Seen) and X-Status (A, F, D, T)
// headers, the internal date from the From_ line. The folder's internal
// data message UW IMAP keeps first in an mbox (its X-IMAP header, the
// subject "DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA") is no
// mail: it is left out and not counted.

// MboxFormat is how an mbox quotes From_ lines in bodies.
type MboxFormat string

// The mbox formats.
const (
	MboxRD  MboxFormat = "mboxrd"
	MboxO   MboxFormat = "mboxo"
	MboxCL  MboxFormat = "mboxcl"
	MboxCL2 MboxFormat = "mboxcl2"
)

// framed reports whether the format frames bodies by Content-Length.
func (f MboxFormat) framed() bool { return f == MboxCL || f == MboxCL2 }

// ParseMboxFormat checks a --mbox-format value; "" is mboxrd.
func ParseMboxFormat(s string) (MboxFormat, error) {
	switch v := MboxFormat(s); v {
	case "":
		return MboxRD, nil
	case MboxRD, MboxO, MboxCL, MboxCL2:
		return v, nil
	}
	return "", fmt.Errorf("%q: want mboxrd, mboxo, mboxcl or mboxcl2", s)
}

// MboxSource says how to read the mbox files.
type MboxSource struct {
	Format MboxFormat
	// UIDLFormat, when set, is the old server's pop3_uidl_format: each
	// message's UIDL is computed from its X-UID header (%u) and the
	// UIDVALIDITY of the mbox's X-IMAPbase (or UW IMAP's X-IMAP) header
	// (%v), which Dovecot and UW IMAP write, instead of read from X-UIDL
	// (Dovecot serves X-UIDL only with pop3_reuse_xuidl). Only %u and %v.
	UIDLFormat *UIDLFormat
	// AcceptNewUIDLs imports messages without X-UIDL under a UIDL derived
	// from their content: clients will download them again.
	AcceptNewUIDLs bool
}

// MboxAccount is an account to take over from an mbox file.
type MboxAccount struct {
	Address string `json:"address"`
	// Path is the account's mbox file (its INBOX).
	Path string `json:"path"`
}

// ImportMbox imports the INBOX of each account from its mbox file.
func ImportMbox(ctx context.Context, t Target, src MboxSource, accts []MboxAccount, opts Options) Report {
	uidls := "X-UIDL"
	if src.UIDLFormat != nil {
		uidls = "pop3_uidl_format " + src.UIDLFormat.String() + " from X-UID and X-IMAPbase"
	}
	return importEach(ctx, "mbox ("+string(src.Format)+", "+uidls+")", accts, opts, func(a MboxAccount) AccountReport {
		return importMboxAccount(ctx, t, src, a)
	})
}

func importMboxAccount(ctx context.Context, t Target, src MboxSource, a MboxAccount) AccountReport {
	rep := AccountReport{Address: a.Address}
	in, err := t.openInbox(a.Address)
	if err != nil {
		rep.Error = err.Error()
		return rep
	}
	f, err := os.Open(a.Path)
	if err != nil {
		rep.Error = err.Error()
		return rep
	}
	defer f.Close()
	var uidValidity uint32        // of X-IMAPbase/X-IMAP, from the first message
	seen := map[string]string{}   // UIDL: the message that had it
	identical := map[string]int{} // content UIDL: how many so far
	noUIDL, unframed := 0, 0
	limit := in.maxSize
	if limit <= 0 {
		limit = 1 << 40
	}
	err = splitMbox(f, src.Format, limit, func(m mboxMessage) error {
		if ctx.Err() != nil {
			return errors.New("stopped: " + ctx.Err().Error())
		}
		h := mboxHeader(m.data)
		if m.n == 1 {
			uidValidity = h.uidValidity
		}
		if h.internal && m.n == 1 {
			rep.Notes = append(rep.Notes, "the first message is UW IMAP's folder internal data (X-IMAP): left out")
			return nil
		}
		rep.Found++
		if m.unframed {
			unframed++
		}
		name := fmt.Sprintf("message %d (line %d)", m.n, m.line)
		if m.damaged != "" {
			rep.refuse(name, "", m.damaged)
			return nil
		}
		uidl := h.uidl
		if f := src.UIDLFormat; f != nil {
			switch {
			case f.Needs('u') && h.uid == 0:
				rep.refuse(name, "", "no X-UID header: the old server has not given it its UID yet (let it open the mailbox once, then import again)")
				return nil
			case f.Needs('v') && uidValidity == 0:
				rep.refuse(name, "", "the mbox's first message has no X-IMAPbase header, so its UIDVALIDITY (%v) is not known (let the old server open the mailbox once, then import again)")
				return nil
			}
			uidl = f.Expand(UIDLVars{UID: h.uid, UIDValidity: uidValidity})
		}
		switch {
		case uidl == "" && !src.AcceptNewUIDLs:
			noUIDL++
			rep.refuse(name, "", "no X-UIDL header: the UIDL the old server gave it is not known, so clients would download it again (import it anyway with --accept-new-uidls)")
			return nil
		case uidl == "":
			noUIDL++
			sum := sha256.Sum256(m.data)
			uidl = "mbox-" + hex.EncodeToString(sum[:16])
			identical[uidl]++
			if n := identical[uidl]; n > 1 {
				uidl += fmt.Sprintf("-%d", n)
			}
		default:
			if p := uidlProblem(uidl); p != "" {
				rep.refuse(name, uidl, p)
				return nil
			}
		}
		if first, dup := seen[uidl]; dup {
			rep.refuse(name, uidl, fmt.Sprintf("%s has this X-UIDL too: clients cannot tell the two apart, so only the first is imported", first))
			return nil
		}
		seen[uidl] = name
		if in.present[uidl] {
			rep.Skipped++
			return nil
		}
		if reason := in.sizeRefusal(m.size); reason != "" {
			rep.refuse(name, uidl, reason)
			return nil
		}
		if err := in.store(&rep, name, bytes.NewReader(m.data), uidl, h.flags, m.date); err != nil {
			return fmt.Errorf("%s: %v", name, err)
		}
		return nil
	})
	if ferr := in.flush(&rep); err == nil {
		err = ferr
	}
	if err != nil {
		rep.Error = fmt.Sprintf("%s: %v", a.Path, err)
	}
	if unframed > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%d of %d messages have no Content-Length header or a wrong one: they were split at their From_ lines instead (check them: a body line starting with \"From \" may have cut one in two)", unframed, rep.Found))
	}
	if noUIDL > 0 {
		what := "were not imported: give --accept-new-uidls to import them, and their clients will download them again"
		if src.AcceptNewUIDLs {
			what = "were imported with new UIDLs (--accept-new-uidls): clients that leave mail on the server will download them again"
		}
		rep.Notes = append(rep.Notes, fmt.Sprintf("%d of %d messages have no X-UIDL header and %s", noUIDL, rep.Found, what))
	}
	return rep
}

// mboxMessage is one message of an mbox.
type mboxMessage struct {
	n, line int       // its number (from 1) and the line of its From_ line
	date    time.Time // from the From_ line; zero when it has none
	data    []byte    // unquoted, without the From_ line and the separator
	size    int64     // of the whole message; data stops after limit bytes
	damaged string    // why the message is not whole, or ""
	// unframed: the format frames by Content-Length, but this message's
	// was missing or wrong, so it was split at From_ lines.
	unframed bool
}

// errNotMbox is a file that does not start with a From_ line.
var errNotMbox = errors.New(`not an mbox: the file does not start with a "From " line`)

// splitMbox calls fn with each message of r in order; data holds at most
// limit+1 bytes of a message (size says how large it is). It stops at
// fn's first error. A message cut off at the end of the file (no newline
// at the end, or no end of its header) is given with damaged set. For
// mboxcl and mboxcl2, r must also be an io.ReaderAt (a file) for a
// Content-Length to be checked and used.
func splitMbox(r io.Reader, format MboxFormat, limit int64, fn func(mboxMessage) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	ra, _ := r.(io.ReaderAt)
	var cur *mboxMessage
	inHeader := false
	prevEmpty := true // the start counts as after an empty line
	n, lineNo := 0, 0
	var off int64 // bytes of r consumed
	add := func(line []byte) {
		cur.size += int64(len(line))
		if room := limit + 1 - int64(len(cur.data)); room > 0 {
			cur.data = append(cur.data, line[:min(int64(len(line)), room)]...)
		}
	}
	flush := func(framed bool) error {
		if cur == nil {
			return nil
		}
		// The empty line before the next From_ line (or at the end of
		// the file) separates; it is not the message's. A body framed
		// by its Content-Length is exactly that long.
		for _, sep := range []string{"\r\n", "\n"} {
			if framed {
				break
			}
			if bytes.HasSuffix(cur.data, []byte("\n"+sep)) && int64(len(cur.data)) == cur.size {
				cur.data = cur.data[:len(cur.data)-len(sep)]
				cur.size -= int64(len(sep))
				break
			}
		}
		if inHeader && cur.damaged == "" {
			cur.damaged = "the message ends inside its header: the mbox was cut off or damaged here"
		}
		m := *cur
		cur = nil
		return fn(m)
	}
	for {
		line, err := br.ReadBytes('\n')
		off += int64(len(line))
		if len(line) > 0 {
			lineNo++
			empty := string(line) == "\n" || string(line) == "\r\n"
			switch {
			case prevEmpty && bytes.HasPrefix(line, []byte("From ")):
				if err := flush(false); err != nil {
					return err
				}
				n++
				cur = &mboxMessage{n: n, line: lineNo, date: fromLineDate(line)}
				inHeader = true
				if err == io.EOF {
					cur.damaged = "the file ends right after this message's From_ line"
				}
				prevEmpty = false
				continue
			case cur == nil && empty && n > 0:
				// Between a framed body and the next From_ line.
				prevEmpty = true
				continue
			case cur == nil:
				return fmt.Errorf("%w (line %d)", errNotMbox, lineNo)
			}
			if inHeader && empty {
				inHeader = false
				add(line)
				if format.framed() {
					body, ok := framedLength(ra, cur.data, off)
					if !ok {
						cur.unframed = true
						prevEmpty = true
					} else {
						lines, err := addFramed(io.LimitReader(br, body), format, add)
						off += body
						lineNo += lines
						if err != nil {
							return err
						}
						if err := flush(true); err != nil {
							return err
						}
						prevEmpty = true
					}
				} else {
					prevEmpty = true
				}
				continue
			}
			add(unquoteFrom(line, format))
			if err == io.EOF && !bytes.HasSuffix(line, []byte("\n")) && cur.damaged == "" {
				cur.damaged = "the file ends inside this message (its last line has no newline): the mbox was cut off here"
			}
			prevEmpty = empty
		}
		if err == io.EOF {
			return flush(false)
		}
		if err != nil {
			return err
		}
	}
}

// framedLength returns the Content-Length of the message whose header is
// header (its empty line included), its body starting at offset body of
// ra, when it frames the message: the body ends at the end of ra or
// where the next From_ line, after at most one empty line, starts.
func framedLength(ra io.ReaderAt, header []byte, body int64) (int64, bool) {
	if ra == nil {
		return 0, false
	}
	var length int64 = -1
	for _, l := range bytes.Split(header, []byte("\n")) {
		name, value, ok := strings.Cut(string(bytes.TrimRight(l, "\r")), ":")
		if ok && strings.EqualFold(strings.TrimSpace(name), "Content-Length") {
			v, err := strconv.ParseInt(strings.TrimSpace(value), 10, 64)
			if err != nil || v < 0 {
				return 0, false
			}
			length = v
		}
	}
	if length < 0 {
		return 0, false
	}
	// The body's last byte must be in the file, then what follows it.
	at, skip := body+length-1, 1
	if length == 0 {
		at, skip = body, 0
	}
	next := make([]byte, 8)
	k, err := ra.ReadAt(next, at)
	if err != nil && err != io.EOF || k < skip {
		return 0, false
	}
	next, k = next[skip:k], k-skip
	for _, sep := range []string{"", "\n", "\r\n"} {
		rest, ok := bytes.CutPrefix(next, []byte(sep))
		if ok && (len(rest) == 0 && k == len(sep) || bytes.HasPrefix(rest, []byte("From "))) {
			return length, true
		}
	}
	return 0, false
}

// addFramed adds a framed body, line by line (mboxcl still quotes "From "
// as mboxo does), and returns how many lines it had. A body cut short by
// the end of the file is an error: framedLength saw it whole.
func addFramed(r io.Reader, format MboxFormat, add func([]byte)) (int, error) {
	br := bufio.NewReaderSize(r, 32<<10)
	lines := 0
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			lines++
			if format == MboxCL {
				line = unquoteFrom(line, MboxO)
			}
			add(line)
		}
		if err == io.EOF {
			return lines, nil
		}
		if err != nil {
			return lines, err
		}
	}
}

// unquoteFrom removes the quoting ">" of a body line (mboxcl quotes as
// mboxo does; mboxcl2 does not quote).
func unquoteFrom(line []byte, format MboxFormat) []byte {
	if len(line) < 6 || line[0] != '>' || format == MboxCL2 {
		return line
	}
	rest := line[1:]
	if format == MboxRD {
		rest = bytes.TrimLeft(rest, ">")
	}
	if bytes.HasPrefix(rest, []byte("From ")) {
		return line[1:]
	}
	return line
}

// fromLineDate reads the date of a From_ line ("From sender Sat Jan  3
// 01:05:34 1996", in the writer's local time); zero when it has none.
func fromLineDate(line []byte) time.Time {
	f := strings.Fields(string(line))
	if len(f) < 7 {
		return time.Time{}
	}
	t, err := time.ParseInLocation("Mon Jan 2 15:04:05 2006", strings.Join(f[2:7], " "), time.Local)
	if err != nil {
		return time.Time{}
	}
	return t
}

// mboxHeaderInfo is what the import reads from a message's header.
type mboxHeaderInfo struct {
	uidl  string
	flags []string
	// uid is X-UID; uidValidity the first field of X-IMAPbase (Dovecot)
	// or X-IMAP (UW IMAP's internal message): 0 when absent.
	uid, uidValidity uint32
	// internal is UW IMAP's folder internal data message.
	internal bool
}

// mboxHeader reads the X-UIDL (the first), Status and X-Status headers.
func mboxHeader(data []byte) mboxHeaderInfo {
	var h mboxHeaderInfo
	var status, xstatus string
	var xIMAP, internalSubject bool
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		line = bytes.TrimRight(line, "\r")
		if len(line) == 0 {
			break
		}
		name, value, ok := strings.Cut(string(line), ":")
		if !ok {
			continue
		}
		value = strings.TrimSpace(value)
		switch strings.ToLower(name) {
		case "x-uidl":
			if h.uidl == "" {
				h.uidl = value
			}
		case "status":
			status = value
		case "x-status":
			xstatus = value
		case "x-imap", "x-imapbase":
			xIMAP = true
			if f := strings.Fields(value); len(f) > 0 {
				h.uidValidity = parseUint32(f[0])
			}
		case "x-uid":
			h.uid = parseUint32(value)
		case "subject":
			internalSubject = strings.HasPrefix(value, "DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA")
		}
	}
	h.internal = xIMAP && internalSubject
	if strings.Contains(status, "R") {
		h.flags = append(h.flags, `\Seen`)
	}
	for _, fl := range []struct {
		letter byte
		flag   string
	}{{'A', `\Answered`}, {'F', `\Flagged`}, {'D', `\Deleted`}, {'T', `\Draft`}} {
		if strings.IndexByte(xstatus, fl.letter) >= 0 {
			h.flags = append(h.flags, fl.flag)
		}
	}
	return h
}

// parseUint32 is a header's decimal number, 0 when it is none.
func parseUint32(s string) uint32 {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 32)
	if err != nil {
		return 0
	}
	return uint32(n)
}
