package mailstore

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Maildir file names: the unique part this package writes, the ",key=value"
// fields of a base name, the ":2," info suffix that carries the system
// flags, and a record's path. See "File names and UIDLs" in the package
// documentation.

// sanitizeHost makes a host name safe for the unique part of a Maildir
// file name (maildir(5): "/" as \057 and ":" as \072; we also write ","
// as \054 because "," starts our fields) and bounds its length.
func sanitizeHost(h string) string {
	var b strings.Builder
	for i := 0; i < len(h); i++ {
		switch c := h[i]; {
		case c == '/':
			b.WriteString(`\057`)
		case c == ':':
			b.WriteString(`\072`)
		case c == ',':
			b.WriteString(`\054`)
		case c <= 0x20 || c >= 0x7f || c == '%':
			b.WriteByte('_')
		default:
			b.WriteByte(c)
		}
	}
	s := b.String()
	if len(s) > 32 {
		s = s[:32]
	}
	if s == "" {
		s = "localhost"
	}
	return s
}

// newUnique returns the unique part of a new Maildir file name. It is
// also the message's UIDL, so the host name is shortened to keep it within
// RFC 1939's 70 characters.
func (s *Store) newUnique(now time.Time) string {
	var r [4]byte
	_, _ = rand.Read(r[:])
	prefix := fmt.Sprintf("%d.M%dP%dQ%dR%s.", now.Unix(), now.Nanosecond()/1000, s.pid,
		s.counter.Add(1), hex.EncodeToString(r[:]))
	host := s.host
	if room := MaxUIDLLen - len(prefix); len(host) > room {
		host = host[:max(room, 1)]
	}
	return prefix + host
}

// makeBase composes the base name (the file name up to ":") of a message.
func makeBase(uniq string, size int64, uid, uv uint32, givenUIDL string) string {
	b := make([]byte, 0, len(uniq)+48+2*len(givenUIDL))
	b = append(b, uniq...)
	b = append(b, ",S="...)
	b = strconv.AppendInt(b, size, 10)
	b = append(b, ",U="...)
	b = strconv.AppendUint(b, uint64(uid), 10)
	b = append(b, ",V="...)
	b = strconv.AppendUint(b, uint64(uv), 10)
	if givenUIDL != "" {
		b = append(b, ",X="...)
		b = append(b, uidlEncoding().EncodeToString([]byte(givenUIDL))...)
	}
	return string(b)
}

// baseFields are the parts of a base name this package reads.
type baseFields struct {
	uniq    string
	size    int64 // -1: no S field
	uid, uv uint32
	x       bool // has an X (given UIDL) field
}

func parseBase(base string) baseFields {
	f := baseFields{uniq: base, size: -1}
	i := strings.IndexByte(base, ',')
	if i < 0 {
		return f
	}
	f.uniq = base[:i]
	for rest := base[i+1:]; rest != ""; {
		var field string
		field, rest, _ = strings.Cut(rest, ",")
		if len(field) < 2 || field[1] != '=' {
			continue
		}
		v := field[2:]
		switch field[0] {
		case 'S':
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
				f.size = n
			}
		case 'U':
			if n, err := strconv.ParseUint(v, 10, 32); err == nil {
				f.uid = uint32(n)
			}
		case 'V':
			if n, err := strconv.ParseUint(v, 10, 32); err == nil {
				f.uv = uint32(n)
			}
		case 'X':
			f.x = true
		}
	}
	return f
}

// withUID rewrites the U and V fields of a base name (adding them if
// missing), keeping everything else, so the UIDL does not change.
func withUID(base string, uid, uv uint32) string {
	f := parseBase(base)
	var b strings.Builder
	b.WriteString(f.uniq)
	if i := strings.IndexByte(base, ','); i >= 0 {
		for _, field := range strings.Split(base[i+1:], ",") {
			if strings.HasPrefix(field, "U=") || strings.HasPrefix(field, "V=") {
				continue
			}
			b.WriteByte(',')
			b.WriteString(field)
		}
	}
	fmt.Fprintf(&b, ",U=%d,V=%d", uid, uv)
	return b.String()
}

// splitName splits a file name found in new/ or cur/ into the base name
// and the info flags (after ":2,"); bare means the name has no info suffix
// at all. ok is false for an info suffix of another version (maildir(5)
// defines only "2,"), which this package leaves alone.
func splitName(name string) (base, info string, bare, ok bool) {
	i := strings.IndexByte(name, ':')
	if i < 0 {
		return name, "", true, true
	}
	if rest := name[i+1:]; strings.HasPrefix(rest, "2,") {
		return name[:i], rest[2:], false, true
	}
	return "", "", false, false
}

// validBase rejects base names that could not have come from a directory
// listing (a damaged index must not make us touch other files).
func validBase(base string) bool {
	if base == "" || base == "." || base == ".." || base[0] == '.' {
		return false
	}
	return strings.IndexByte(base, '/') < 0 && strings.IndexByte(base, ':') < 0 && strings.IndexByte(base, 0) < 0
}

// parseInfo reads the flags of a Maildir info suffix (after ":2,"); letters
// other than D F R S T are returned as extra, to be kept on renames.
func parseInfo(info string) (sysFlags, string) {
	var sys sysFlags
	var extra []byte
	for i := 0; i < len(info); i++ {
		switch c := info[i]; c {
		case 'D':
			sys |= sysDraft
		case 'F':
			sys |= sysFlagged
		case 'R':
			sys |= sysAnswered
		case 'S':
			sys |= sysSeen
		case 'T':
			sys |= sysDeleted
		default:
			if c > 0x20 && c < 0x7f && c != '/' && c != ':' && c != '%' && !slices.Contains(extra, c) {
				extra = append(extra, c)
			}
		}
	}
	if len(extra) == 0 {
		return sys, ""
	}
	return sys, string(extra)
}

// canonicalInfo reports whether info is what infoString would write for
// its flags: letters parseInfo keeps, in strictly increasing order.
func canonicalInfo(info string) bool {
	for i := 0; i < len(info); i++ {
		c := info[i]
		if c <= 0x20 || c >= 0x7f || c == '/' || c == ':' || c == '%' || (i > 0 && c <= info[i-1]) {
			return false
		}
	}
	return true
}

// infoString is the info flags part for sys plus extra letters, in ASCII
// order as maildir(5) requires.
func infoString(sys sysFlags, extra string) string {
	var buf [16]byte
	b := buf[:0]
	for i := range nSysFlags {
		if bit, _, letter := sysFlag(i); sys&bit != 0 {
			b = append(b, letter)
		}
	}
	b = append(b, extra...)
	for i := 1; i < len(b); i++ {
		for j := i; j > 0 && b[j] < b[j-1]; j-- {
			b[j], b[j-1] = b[j-1], b[j]
		}
	}
	return string(b)
}

// setInfo takes flags and extra letters from a file's info suffix.
func (r *rec) setInfo(info string) {
	var extra string
	r.sys, extra = parseInfo(info)
	if canonicalInfo(info) {
		r.extra, r.rawInfo = extra, false
	} else {
		r.extra, r.rawInfo = info, true
	}
}

// extraLetters are the info letters to keep when the flags change.
func (r *rec) extraLetters() string {
	if r.rawInfo {
		_, extra := parseInfo(r.extra)
		return extra
	}
	return r.extra
}

// path is where r's file is: new/ or cur/, its base name and its info
// suffix (none when bare, as found when rawInfo, else as infoString
// writes it).
func (st *mbox) path(r *rec) string {
	sub := "new"
	if r.inCur {
		sub = "cur"
	}
	switch {
	case r.bare:
		return filepath.Join(st.dir, sub, r.base)
	case r.rawInfo:
		return filepath.Join(st.dir, sub, r.base+":2,"+r.extra)
	}
	return filepath.Join(st.dir, sub, r.base+":2,"+infoString(r.sys, r.extra))
}
