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
// Flags come from the Status (R: \Seen) and X-Status (A, F, D, T)
// headers, the internal date from the From_ line. The folder's internal
// data message UW IMAP keeps first in an mbox (its X-IMAP header, the
// subject "DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA") is no
// mail: it is left out and not counted.

// MboxFormat is how an mbox quotes From_ lines in bodies.
type MboxFormat string

// The mbox formats.
const (
	MboxRD MboxFormat = "mboxrd"
	MboxO  MboxFormat = "mboxo"
)

// ParseMboxFormat checks a --mbox-format value; "" is mboxrd.
func ParseMboxFormat(s string) (MboxFormat, error) {
	switch v := MboxFormat(s); v {
	case "":
		return MboxRD, nil
	case MboxRD, MboxO:
		return v, nil
	}
	return "", fmt.Errorf("%q: want mboxrd or mboxo", s)
}

// MboxSource says how to read the mbox files.
type MboxSource struct {
	Format MboxFormat
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
	return importEach(ctx, "mbox ("+string(src.Format)+", X-UIDL)", accts, opts, func(a MboxAccount) AccountReport {
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
	seen := map[string]string{}   // UIDL: the message that had it
	identical := map[string]int{} // content UIDL: how many so far
	noUIDL := 0
	limit := in.maxSize
	if limit <= 0 {
		limit = 1 << 40
	}
	err = splitMbox(f, src.Format, limit, func(m mboxMessage) error {
		if ctx.Err() != nil {
			return errors.New("stopped: " + ctx.Err().Error())
		}
		h := mboxHeader(m.data)
		if h.internal && m.n == 1 {
			rep.Notes = append(rep.Notes, "the first message is UW IMAP's folder internal data (X-IMAP): left out")
			return nil
		}
		rep.Found++
		name := fmt.Sprintf("message %d (line %d)", m.n, m.line)
		if m.damaged != "" {
			rep.refuse(name, "", m.damaged)
			return nil
		}
		uidl := h.uidl
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
		size, skipped, refusal, err := in.store(bytes.NewReader(m.data), uidl, h.flags, m.date)
		if err != nil {
			return fmt.Errorf("%s: %v", name, err)
		}
		rep.count(name, uidl, size, skipped, refusal)
		return nil
	})
	if err != nil {
		rep.Error = fmt.Sprintf("%s: %v", a.Path, err)
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
}

// errNotMbox is a file that does not start with a From_ line.
var errNotMbox = errors.New(`not an mbox: the file does not start with a "From " line`)

// splitMbox calls fn with each message of r in order; data holds at most
// limit+1 bytes of a message (size says how large it is). It stops at
// fn's first error. A message cut off at the end of the file (no newline
// at the end, or no end of its header) is given with damaged set.
func splitMbox(r io.Reader, format MboxFormat, limit int64, fn func(mboxMessage) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var cur *mboxMessage
	inHeader := false
	prevEmpty := true // the start counts as after an empty line
	n, lineNo := 0, 0
	add := func(line []byte) {
		cur.size += int64(len(line))
		if room := limit + 1 - int64(len(cur.data)); room > 0 {
			cur.data = append(cur.data, line[:min(int64(len(line)), room)]...)
		}
	}
	flush := func() error {
		if cur == nil {
			return nil
		}
		// The empty line before the next From_ line (or at the end of
		// the file) separates; it is not the message's.
		for _, sep := range []string{"\r\n", "\n"} {
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
		if len(line) > 0 {
			lineNo++
			empty := string(line) == "\n" || string(line) == "\r\n"
			switch {
			case prevEmpty && bytes.HasPrefix(line, []byte("From ")):
				if err := flush(); err != nil {
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
			case cur == nil:
				return fmt.Errorf("%w (line %d)", errNotMbox, lineNo)
			}
			if inHeader && empty {
				inHeader = false
			}
			add(unquoteFrom(line, format))
			if err == io.EOF && !bytes.HasSuffix(line, []byte("\n")) && cur.damaged == "" {
				cur.damaged = "the file ends inside this message (its last line has no newline): the mbox was cut off here"
			}
			prevEmpty = empty
		}
		if err == io.EOF {
			return flush()
		}
		if err != nil {
			return err
		}
	}
}

// unquoteFrom removes the quoting ">" of a body line.
func unquoteFrom(line []byte, format MboxFormat) []byte {
	if len(line) < 6 || line[0] != '>' {
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
