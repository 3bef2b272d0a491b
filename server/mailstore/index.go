package mailstore

import (
	"cmp"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"slices"
	"strconv"
	"strings"
)

// The index file format (described in the package documentation):
// rec, one message as the index records it; encoding the header and the
// A, F, R and X records; parsing an index, dropping a torn last line.
// Writing the file is in index_write.go.

const (
	indexMagic   = "mailsetup-index"
	indexVersion = "1"
	hexDigits    = "0123456789abcdef"
)

// rec is one message in memory. Strings usually share the index text.
type rec struct {
	uid       uint32
	sys       sysFlags
	inCur     bool // the file is in cur/, else new/
	bare      bool // the file name has no info suffix (usual in new/)
	rawInfo   bool // extra is the file's whole info, not in canonical order
	dead      bool // expunged; only while parsing
	size      int64
	date      int64  // internal date, Unix seconds
	retrieved int64  // first POP3 retrieval, Unix seconds; 0: never
	base      string // file name up to ":"
	uidl      string
	kw        string // keywords, sorted, space-separated
	extra     string // info letters other than D F R S T, from other agents
}

// newRec is the record of a new message this package names: its unique
// part, with the UID and UIDVALIDITY it gets and the UIDL given on import
// (or ""). The file goes to cur/ when it has flags, else to new/.
func newRec(uniq string, uid, uv uint32, size, date int64, sys sysFlags, kw, givenUIDL string) rec {
	r := rec{
		uid: uid, sys: sys, kw: kw, size: size, date: date,
		base: makeBase(uniq, size, uid, uv, givenUIDL),
	}
	r.uidl = uidlFromBase(r.base)
	r.inCur = sys != 0 || kw != ""
	r.bare = !r.inCur
	return r
}

// cmpRecs orders records by UID.
func cmpRecs(a, b rec) int { return cmp.Compare(a.uid, b.uid) }

// findRec finds uid in recs, sorted by UID.
func findRec(recs []rec, uid uint32) (int, bool) {
	return slices.BinarySearchFunc(recs, uid, func(r rec, u uint32) int { return cmp.Compare(r.uid, u) })
}

// index is a parsed index file.
type index struct {
	uv, uidnext uint32
	recs        []rec // live messages, sorted by UID
	lines       int   // record lines (after the header)
	size        int64 // bytes of the valid prefix
	torn        bool  // a torn last line was dropped
}

func appendHex8(b []byte, v uint32) []byte {
	for shift := 28; shift >= 0; shift -= 4 {
		b = append(b, hexDigits[(v>>uint(shift))&0xf])
	}
	return b
}

// endLine appends the checksum of b[start:] and the newline.
func endLine(b []byte, start int) []byte {
	sum := crc32.ChecksumIEEE(b[start:])
	b = append(b, ' ')
	b = appendHex8(b, sum)
	return append(b, '\n')
}

func appendHeader(b []byte, uv, uidnext uint32) []byte {
	start := len(b)
	b = append(b, indexMagic+" "+indexVersion+" "...)
	b = strconv.AppendUint(b, uint64(uv), 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(uidnext), 10)
	return endLine(b, start)
}

func appendFlags(b []byte, sys sysFlags, kw string) []byte {
	for i := range nSysFlags {
		if bit, name, _ := sysFlag(i); sys&bit != 0 {
			b = append(b, ' ')
			b = append(b, name...)
		}
	}
	if kw != "" {
		b = append(b, ' ')
		b = append(b, kw...)
	}
	return b
}

func appendEscapedBase(b []byte, base string) []byte {
	for i := 0; i < len(base); i++ {
		c := base[i]
		if c <= ' ' || c >= 0x7f || c == '%' {
			b = append(b, '%', hexDigits[c>>4], hexDigits[c&0xf])
			continue
		}
		b = append(b, c)
	}
	return b
}

func appendAdd(b []byte, r *rec) []byte {
	start := len(b)
	b = append(b, "A "...)
	b = strconv.AppendUint(b, uint64(r.uid), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, r.size, 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, r.date, 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, r.retrieved, 10)
	b = append(b, ' ')
	b = appendEscapedBase(b, r.base)
	b = appendFlags(b, r.sys, r.kw)
	return endLine(b, start)
}

func appendFlagsRec(b []byte, uid uint32, sys sysFlags, kw string) []byte {
	start := len(b)
	b = append(b, "F "...)
	b = strconv.AppendUint(b, uint64(uid), 10)
	b = appendFlags(b, sys, kw)
	return endLine(b, start)
}

func appendRetrieved(b []byte, uid uint32, t int64) []byte {
	start := len(b)
	b = append(b, "R "...)
	b = strconv.AppendUint(b, uint64(uid), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, t, 10)
	return endLine(b, start)
}

func appendExpunge(b []byte, uid uint32) []byte {
	start := len(b)
	b = append(b, "X "...)
	b = strconv.AppendUint(b, uint64(uid), 10)
	return endLine(b, start)
}

// encodeIndex writes a complete, compacted index.
func encodeIndex(uv, uidnext uint32, recs []rec) []byte {
	b := make([]byte, 0, 64+len(recs)*128)
	b = appendHeader(b, uv, uidnext)
	for i := range recs {
		b = appendAdd(b, &recs[i])
	}
	return b
}

// checkLine verifies a line's checksum and returns the text before it;
// raw holds the same bytes as line.
func checkLine(line string, raw []byte) (string, bool) {
	n := len(line)
	if n < 10 || line[n-9] != ' ' {
		return "", false
	}
	var want uint32
	for i := n - 8; i < n; i++ {
		c := line[i]
		switch {
		case c >= '0' && c <= '9':
			want = want<<4 | uint32(c-'0')
		case c >= 'a' && c <= 'f':
			want = want<<4 | uint32(c-'a'+10)
		default:
			return "", false
		}
	}
	return line[:n-9], crc32.ChecksumIEEE(raw[:n-9]) == want
}

// errIndex marks a damaged index.
var errIndex = errors.New("damaged index")

// parseIndex reads an index file. A torn last line is dropped and reported
// in torn; any other damage is an error.
func parseIndex(data []byte) (index, error) {
	var idx index
	s := string(data) // one copy; records keep substrings of it
	nl := strings.IndexByte(s, '\n')
	if nl < 0 {
		return idx, fmt.Errorf("%w: no header", errIndex)
	}
	hdr, ok := checkLine(s[:nl], data[:nl])
	if !ok {
		return idx, fmt.Errorf("%w: header checksum", errIndex)
	}
	f := strings.Split(hdr, " ")
	if len(f) != 4 || f[0] != indexMagic || f[1] != indexVersion {
		return idx, fmt.Errorf("%w: header %q", errIndex, hdr)
	}
	uv, err1 := strconv.ParseUint(f[2], 10, 32)
	next, err2 := strconv.ParseUint(f[3], 10, 32)
	if err1 != nil || err2 != nil || uv == 0 || next == 0 {
		return idx, fmt.Errorf("%w: header %q", errIndex, hdr)
	}
	idx.uv, idx.uidnext = uint32(uv), uint32(next)
	idx.recs = make([]rec, 0, strings.Count(s, "\nA "))
	pos := nl + 1
	ndead := 0
	for pos < len(s) {
		n := strings.IndexByte(s[pos:], '\n')
		if n < 0 {
			idx.torn = true // crash in the middle of an append
			break
		}
		body, ok := checkLine(s[pos:pos+n], data[pos:pos+n])
		if !ok {
			if pos+n+1 == len(s) {
				idx.torn = true
				break
			}
			return idx, fmt.Errorf("%w: checksum at offset %d", errIndex, pos)
		}
		dead, err := idx.apply(body)
		if err != nil {
			return idx, fmt.Errorf("%w: record at offset %d: %v", errIndex, pos, err)
		}
		ndead += dead
		idx.lines++
		pos += n + 1
	}
	idx.size = int64(pos)
	if ndead > 0 {
		idx.recs = slices.DeleteFunc(idx.recs, func(r rec) bool { return r.dead })
	}
	return idx, nil
}

func (idx *index) find(uid uint32) *rec {
	i, ok := findRec(idx.recs, uid)
	if !ok || idx.recs[i].dead {
		return nil
	}
	return &idx.recs[i]
}

func parseUID(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("bad uid %q", s)
	}
	return uint32(n), nil
}

// apply applies one record; it returns 1 when the record expunged a
// message.
func (idx *index) apply(body string) (int, error) {
	if len(body) < 3 || body[1] != ' ' {
		return 0, fmt.Errorf("short record")
	}
	kind, rest := body[0], body[2:]
	var uidS string
	uidS, rest, _ = strings.Cut(rest, " ")
	uid, err := parseUID(uidS)
	if err != nil {
		return 0, err
	}
	switch kind {
	case 'A':
		return 0, idx.add(uid, rest)
	case 'F':
		sys, kw, err := parseFlagTokens(rest)
		if err != nil {
			return 0, err
		}
		if r := idx.find(uid); r != nil {
			r.sys, r.kw = sys, kw
		}
	case 'R':
		t, err := strconv.ParseInt(rest, 10, 64)
		if err != nil || t < 0 {
			return 0, fmt.Errorf("bad time %q", rest)
		}
		if r := idx.find(uid); r != nil {
			r.retrieved = t
		}
	case 'X':
		if rest != "" {
			return 0, fmt.Errorf("trailing data in expunge record")
		}
		if r := idx.find(uid); r != nil {
			r.dead = true
			return 1, nil
		}
	default:
		return 0, fmt.Errorf("unknown record kind %q", kind)
	}
	return 0, nil
}

// add applies an A record: the message uid, described by rest.
func (idx *index) add(uid uint32, rest string) error {
	var sizeS, dateS, retrS, baseS string
	sizeS, rest, _ = strings.Cut(rest, " ")
	dateS, rest, _ = strings.Cut(rest, " ")
	retrS, rest, _ = strings.Cut(rest, " ")
	baseS, rest, _ = strings.Cut(rest, " ")
	size, err1 := strconv.ParseInt(sizeS, 10, 64)
	date, err2 := strconv.ParseInt(dateS, 10, 64)
	retr, err3 := strconv.ParseInt(retrS, 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || size < 0 || retr < 0 {
		return fmt.Errorf("bad numbers in add record")
	}
	base, err := unescapeBase(baseS)
	if err != nil {
		return err
	}
	if !validBase(base) {
		return fmt.Errorf("bad file name %q", base)
	}
	if n := len(idx.recs); n > 0 && idx.recs[n-1].uid >= uid {
		return fmt.Errorf("uid %d not increasing", uid)
	}
	if uid == math.MaxUint32 {
		return fmt.Errorf("uid %d out of range", uid)
	}
	sys, kw, err := parseFlagTokens(rest)
	if err != nil {
		return err
	}
	idx.recs = append(idx.recs, rec{
		uid: uid, sys: sys, size: size, date: date, retrieved: retr,
		base: base, uidl: uidlFromBase(base), kw: kw,
	})
	if uid >= idx.uidnext {
		idx.uidnext = uid + 1
	}
	return nil
}

func unescapeBase(s string) (string, error) {
	if strings.IndexByte(s, '%') < 0 {
		return s, nil
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b = append(b, s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", fmt.Errorf("bad escape in %q", s)
		}
		v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			return "", fmt.Errorf("bad escape in %q", s)
		}
		b = append(b, byte(v))
		i += 2
	}
	return string(b), nil
}

// parseFlagTokens reads the space-separated flags at the end of A and F
// records: system flags, then keywords. The keyword list is returned as a
// substring of s when the keywords come last, as this package writes them.
func parseFlagTokens(s string) (sysFlags, string, error) {
	var sys sysFlags
	kwStart := -1
	contiguous := true
	var kws []string
	for pos := 0; pos < len(s); {
		end := strings.IndexByte(s[pos:], ' ')
		if end < 0 {
			end = len(s)
		} else {
			end += pos
		}
		tok := s[pos:end]
		if tok == "" {
			return 0, "", fmt.Errorf("empty flag")
		}
		if tok[0] == '\\' {
			bit, ok := sysFlagByName(tok)
			if !ok {
				return 0, "", fmt.Errorf("unknown system flag %q", tok)
			}
			sys |= bit
			if kwStart >= 0 {
				contiguous = false
			}
		} else {
			if err := checkKeyword(tok); err != nil {
				return 0, "", err
			}
			if kwStart < 0 {
				kwStart = pos
			}
			kws = append(kws, tok)
		}
		pos = end + 1
		if end == len(s)-1 {
			return 0, "", fmt.Errorf("trailing space")
		}
	}
	switch {
	case kwStart < 0:
		return sys, "", nil
	case contiguous:
		return sys, s[kwStart:], nil
	}
	return sys, strings.Join(kws, " "), nil
}
