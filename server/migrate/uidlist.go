package migrate

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Dovecot's dovecot-uidlist: the IMAP UIDs Dovecot gave a Maildir's files,
// the mailbox's UIDVALIDITY, and per file extension fields, among them a
// saved POP3 UIDL (P). Versions 1 and 3 are read:
//
//	1 <uidvalidity> <nextuid>
//	<uid> <filename>
//
//	3 V<uidvalidity> N<nextuid> [G<guid>] ...
//	<uid> [<letter><value> ...] :<filename>

// Uidlist is a parsed dovecot-uidlist.
type Uidlist struct {
	Version     int
	UIDValidity uint32
	NextUID     uint32
	// Recs are the records by the file's base name (up to ":").
	Recs map[string]UidlistRec
}

// UidlistRec is one message of a dovecot-uidlist.
type UidlistRec struct {
	UID uint32
	// POP3UIDL is the P field: the UIDL Dovecot serves instead of
	// pop3_uidl_format (saved by pop3_save_uidl, or by a migration).
	POP3UIDL string
	// GUID is the G field.
	GUID string
}

// maxUidlistLine bounds one line (a file name is at most 255 bytes; the
// extension fields are short).
const maxUidlistLine = 64 << 10

// ParseUidlist reads a dovecot-uidlist.
func ParseUidlist(r io.Reader) (*Uidlist, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), maxUidlistLine)
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("dovecot-uidlist: %w", err)
		}
		return nil, fmt.Errorf("dovecot-uidlist: empty")
	}
	l := &Uidlist{Recs: map[string]UidlistRec{}}
	head := strings.Fields(sc.Text())
	if len(head) == 0 {
		return nil, fmt.Errorf("dovecot-uidlist: empty header line")
	}
	switch head[0] {
	case "1":
		l.Version = 1
		if len(head) < 3 {
			return nil, fmt.Errorf("dovecot-uidlist: version 1 header %q: want 1 <uidvalidity> <nextuid>", sc.Text())
		}
		var err error
		if l.UIDValidity, err = parseUID(head[1]); err != nil {
			return nil, fmt.Errorf("dovecot-uidlist: header: uidvalidity %q: %w", head[1], err)
		}
		if l.NextUID, err = parseUID(head[2]); err != nil {
			return nil, fmt.Errorf("dovecot-uidlist: header: next uid %q: %w", head[2], err)
		}
	case "3":
		l.Version = 3
		for _, f := range head[1:] {
			var err error
			switch f[0] {
			case 'V':
				l.UIDValidity, err = parseUID(f[1:])
			case 'N':
				l.NextUID, err = parseUID(f[1:])
			}
			if err != nil {
				return nil, fmt.Errorf("dovecot-uidlist: header field %q: %w", f, err)
			}
		}
		if l.UIDValidity == 0 {
			return nil, fmt.Errorf("dovecot-uidlist: header %q has no V<uidvalidity>", sc.Text())
		}
	default:
		return nil, fmt.Errorf("dovecot-uidlist: version %q: only versions 1 and 3 are read", head[0])
	}
	for n := 2; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" {
			continue
		}
		name, rec, err := parseUidlistLine(l.Version, line)
		if err != nil {
			return nil, fmt.Errorf("dovecot-uidlist line %d: %w", n, err)
		}
		l.Recs[name] = rec
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("dovecot-uidlist: %w", err)
	}
	return l, nil
}

func parseUidlistLine(version int, line string) (string, UidlistRec, error) {
	var rec UidlistRec
	uid, rest, ok := strings.Cut(line, " ")
	if !ok {
		return "", rec, fmt.Errorf("%q: want <uid> ... <filename>", line)
	}
	var err error
	if rec.UID, err = parseUID(uid); err != nil {
		return "", rec, fmt.Errorf("uid %q: %w", uid, err)
	}
	var name string
	if version == 1 {
		name = rest
	} else {
		fields, fname, ok := strings.Cut(rest, ":")
		if !ok {
			return "", rec, fmt.Errorf("%q: no \":<filename>\"", line)
		}
		name = fname
		for _, f := range strings.Fields(fields) {
			switch f[0] {
			case 'P':
				rec.POP3UIDL = f[1:]
			case 'G':
				rec.GUID = f[1:]
			}
		}
	}
	base, _, _ := strings.Cut(name, ":")
	if base == "" || strings.ContainsAny(base, "/\x00") {
		return "", rec, fmt.Errorf("file name %q", name)
	}
	return base, rec, nil
}

// parseUID reads a nonzero 32-bit unsigned decimal number.
func parseUID(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("not a 32-bit number")
	}
	if n == 0 {
		return 0, fmt.Errorf("zero")
	}
	return uint32(n), nil
}
