package mailstore

import (
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Mailbox names.

const (
	// Inbox is the name of the mailbox every user has (RFC 3501 §5.1).
	Inbox = "INBOX"
	// MaxNameLen is the longest mailbox name accepted, in bytes of UTF-8.
	MaxNameLen = 200
)

// canonicalName validates a mailbox name (UTF-8, as the IMAP layer decodes
// it) and returns its canonical form: "INBOX" in any case is INBOX (RFC 3501
// §5.1), and so is the first level of a name below it.
func canonicalName(name string) (string, error) {
	if strings.EqualFold(name, Inbox) {
		return Inbox, nil
	}
	switch {
	case name == "":
		return "", fmt.Errorf("%w: empty mailbox name", ErrBadName)
	case len(name) > MaxNameLen:
		return "", fmt.Errorf("%w: mailbox name longer than %d bytes", ErrBadName, MaxNameLen)
	case !utf8.ValidString(name):
		return "", fmt.Errorf("%w: mailbox name is not UTF-8", ErrBadName)
	}
	for _, r := range name {
		switch {
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			return "", fmt.Errorf("%w: control character in mailbox name", ErrBadName)
		case r == '.':
			// Maildir++ writes the hierarchy separator as "." on disk,
			// so a "." inside a level could not be told apart.
			return "", fmt.Errorf("%w: %q in mailbox name", ErrBadName, ".")
		case r == '*' || r == '%':
			// LIST wildcards (RFC 3501 §6.3.8): a name containing them
			// cannot be listed on its own.
			return "", fmt.Errorf("%w: %q in mailbox name", ErrBadName, r)
		}
	}
	levels := strings.Split(name, "/")
	for _, l := range levels {
		if l == "" {
			return "", fmt.Errorf("%w: empty hierarchy level in mailbox name", ErrBadName)
		}
	}
	if strings.EqualFold(levels[0], Inbox) && levels[0] != Inbox {
		levels[0] = Inbox
		name = strings.Join(levels, "/")
	}
	return name, nil
}

// diskName is the directory name below Maildir/ of a canonical mailbox
// name; "" for INBOX, which is the Maildir itself.
func diskName(canon string) string {
	if canon == Inbox {
		return ""
	}
	levels := strings.Split(canon, "/")
	for i, l := range levels {
		levels[i] = encodeMUTF7(l)
	}
	return "." + strings.Join(levels, ".")
}

// nameFromDisk is the canonical mailbox name of a Maildir++ folder
// directory name, if it is one this package could have written.
func nameFromDisk(entry string) (string, bool) {
	if len(entry) < 2 || entry[0] != '.' || entry[1] == '.' {
		return "", false
	}
	levels := strings.Split(entry[1:], ".")
	for i, l := range levels {
		d, err := decodeMUTF7(l)
		if err != nil {
			return "", false
		}
		levels[i] = d
	}
	canon, err := canonicalName(strings.Join(levels, "/"))
	if err != nil || canon == Inbox || diskName(canon) != entry {
		return "", false
	}
	return canon, true
}

// mutf7Alphabet is the modified base64 alphabet of RFC 3501 §5.1.3: ","
// instead of "/".
const mutf7Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,"

// encodeMUTF7 encodes one hierarchy level in modified UTF-7 (RFC 3501
// §5.1.3), the on-disk form Dovecot uses for Maildir++ folder names.
func encodeMUTF7(s string) string {
	plain := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '&' {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	enc := base64.NewEncoding(mutf7Alphabet).WithPadding(base64.NoPadding)
	var b strings.Builder
	runes := []rune(s)
	for i := 0; i < len(runes); {
		r := runes[i]
		switch {
		case r == '&':
			b.WriteString("&-")
			i++
			continue
		case r >= 0x20 && r <= 0x7e:
			b.WriteRune(r)
			i++
			continue
		}
		var u16 []uint16
		for i < len(runes) && (runes[i] < 0x20 || runes[i] > 0x7e) {
			u16 = utf16.AppendRune(u16, runes[i])
			i++
		}
		raw := make([]byte, 0, 2*len(u16))
		for _, c := range u16 {
			raw = append(raw, byte(c>>8), byte(c))
		}
		b.WriteByte('&')
		b.WriteString(enc.EncodeToString(raw))
		b.WriteByte('-')
	}
	return b.String()
}

// decodeMUTF7 decodes one hierarchy level from modified UTF-7.
func decodeMUTF7(s string) (string, error) {
	var b strings.Builder
	var enc *base64.Encoding
	for i := 0; i < len(s); {
		c := s[i]
		if c < 0x20 || c > 0x7e {
			return "", fmt.Errorf("byte %#x in modified UTF-7", c)
		}
		if c != '&' {
			b.WriteByte(c)
			i++
			continue
		}
		j := strings.IndexByte(s[i+1:], '-')
		if j < 0 {
			return "", fmt.Errorf("unterminated modified UTF-7 sequence")
		}
		j += i + 1
		if j == i+1 {
			b.WriteByte('&')
			i = j + 1
			continue
		}
		if enc == nil {
			enc = base64.NewEncoding(mutf7Alphabet).WithPadding(base64.NoPadding).Strict()
		}
		raw, err := enc.DecodeString(s[i+1 : j])
		if err != nil || len(raw)%2 != 0 {
			return "", fmt.Errorf("bad modified UTF-7 sequence %q", s[i:j+1])
		}
		u16 := make([]uint16, len(raw)/2)
		for k := range u16 {
			u16[k] = uint16(raw[2*k])<<8 | uint16(raw[2*k+1])
		}
		for _, r := range utf16.Decode(u16) {
			if r >= 0x20 && r <= 0x7e {
				return "", fmt.Errorf("printable ASCII encoded in modified UTF-7")
			}
			b.WriteRune(r)
		}
		i = j + 1
	}
	return b.String(), nil
}

// specialUse is the RFC 6154 attribute of the mailboxes every user gets.
func specialUse(canon string) string {
	switch canon {
	case "Sent":
		return `\Sent`
	case "Drafts":
		return `\Drafts`
	case "Trash":
		return `\Trash`
	case "Junk":
		return `\Junk`
	case "Archive":
		return `\Archive`
	}
	return ""
}

// specialUseNames lists the mailboxes created with every Maildir.
func specialUseNames() []string {
	return []string{"Archive", "Drafts", "Junk", "Sent", "Trash"}
}

// Flags.

// System flags (RFC 3501 §2.3.2) that can be stored. \Recent cannot.
const (
	FlagAnswered = `\Answered`
	FlagDeleted  = `\Deleted`
	FlagDraft    = `\Draft`
	FlagFlagged  = `\Flagged`
	FlagSeen     = `\Seen`
)

// sysFlags is a set of system flags; the bit order is the sort order of
// the flag names, so listing bits in order lists names sorted.
type sysFlags uint8

const (
	sysAnswered sysFlags = 1 << iota
	sysDeleted
	sysDraft
	sysFlagged
	sysSeen

	nSysFlags = 5
)

// sysFlag describes system flag i (0 <= i < nSysFlags): its bit, its IMAP
// name and its Maildir info letter (maildir(5), "Info semantics").
func sysFlag(i int) (sysFlags, string, byte) {
	switch i {
	case 0:
		return sysAnswered, FlagAnswered, 'R'
	case 1:
		return sysDeleted, FlagDeleted, 'T'
	case 2:
		return sysDraft, FlagDraft, 'D'
	case 3:
		return sysFlagged, FlagFlagged, 'F'
	default:
		return sysSeen, FlagSeen, 'S'
	}
}

func sysFlagByName(name string) (sysFlags, bool) {
	for i := range nSysFlags {
		if bit, n, _ := sysFlag(i); strings.EqualFold(name, n) {
			return bit, true
		}
	}
	return 0, false
}

// maxKeywordLen bounds one keyword; IMAP sets no limit, clients use short
// ones ($Forwarded, $Junk, $label1).
const maxKeywordLen = 100

// checkKeyword accepts a keyword made of IMAP ATOM-CHARs (RFC 3501 §9:
// any CHAR except atom-specials and "\").
func checkKeyword(kw string) error {
	if kw == "" || len(kw) > maxKeywordLen {
		return fmt.Errorf("%w: keyword length %d", ErrBadFlag, len(kw))
	}
	for i := 0; i < len(kw); i++ {
		switch c := kw[i]; {
		case c <= 0x20 || c >= 0x7f:
			return fmt.Errorf("%w: byte %#x in keyword", ErrBadFlag, c)
		case strings.IndexByte(`(){%*"\]`, c) >= 0:
			return fmt.Errorf("%w: %q in keyword", ErrBadFlag, c)
		}
	}
	return nil
}

// parseFlags splits flags as given by a caller into system flags and
// sorted, de-duplicated keywords (compared case-insensitively).
func parseFlags(flags []string) (sysFlags, []string, error) {
	var sys sysFlags
	var kws []string
	for _, f := range flags {
		if strings.HasPrefix(f, `\`) {
			bit, ok := sysFlagByName(f)
			if !ok {
				return 0, nil, fmt.Errorf("%w: %q cannot be stored (RFC 3501 §2.3.2)", ErrBadFlag, f)
			}
			sys |= bit
			continue
		}
		if err := checkKeyword(f); err != nil {
			return 0, nil, err
		}
		if !slices.ContainsFunc(kws, func(k string) bool { return strings.EqualFold(k, f) }) {
			kws = append(kws, f)
		}
	}
	slices.Sort(kws)
	return sys, kws, nil
}

// FlagOp says how StoreFlags combines the given flags with a message's.
type FlagOp int

const (
	FlagsAdd     FlagOp = iota // +FLAGS
	FlagsRemove                // -FLAGS
	FlagsReplace               // FLAGS
)

// applyFlagOp computes a message's new flags; kw and the result's keywords
// are space-separated sorted lists.
func applyFlagOp(op FlagOp, sys sysFlags, kw string, opSys sysFlags, opKw []string) (sysFlags, string) {
	switch op {
	case FlagsReplace:
		return opSys, strings.Join(opKw, " ")
	case FlagsAdd:
		sys |= opSys
	case FlagsRemove:
		sys &^= opSys
	}
	if len(opKw) == 0 {
		return sys, kw
	}
	var cur []string
	if kw != "" {
		cur = strings.Split(kw, " ")
	}
	for _, k := range opKw {
		i := slices.IndexFunc(cur, func(c string) bool { return strings.EqualFold(c, k) })
		switch {
		case op == FlagsAdd && i < 0:
			cur = append(cur, k)
		case op == FlagsRemove && i >= 0:
			cur = slices.Delete(cur, i, i+1)
		}
	}
	slices.Sort(cur)
	return sys, strings.Join(cur, " ")
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

// File names.

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

// MaxUIDLLen is the longest UIDL (RFC 1939 §7: 1 to 70 characters).
const MaxUIDLLen = 70

// ValidUIDL reports whether s is a valid POP3 unique-id: 1 to 70
// characters in 0x21..0x7E (RFC 1939 §7).
func ValidUIDL(s string) bool {
	if s == "" || len(s) > MaxUIDLLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func uidlEncoding() *base32.Encoding { return base32.StdEncoding.WithPadding(base32.NoPadding) }

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

// uidlFromBase derives a message's UIDL from its base name; see the
// package documentation. It allocates only for given and hashed UIDLs.
func uidlFromBase(base string) string {
	uniq, rest := base, ""
	if i := strings.IndexByte(base, ','); i >= 0 {
		uniq, rest = base[:i], base[i:]
	}
	if j := strings.Index(rest, ",X="); j >= 0 {
		v := rest[j+3:]
		if k := strings.IndexByte(v, ','); k >= 0 {
			v = v[:k]
		}
		if raw, err := uidlEncoding().DecodeString(v); err == nil && ValidUIDL(string(raw)) {
			return string(raw)
		}
	}
	if ValidUIDL(uniq) {
		return uniq
	}
	sum := sha256.Sum256([]byte(uniq))
	return "H" + hex.EncodeToString(sum[:16])
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
