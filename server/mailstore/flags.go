package mailstore

import (
	"fmt"
	"slices"
	"strings"
)

// IMAP flags: the storable system flags, keywords, and the three ways
// STORE combines them with a message's flags. Keywords live only in the
// index; system flags also in the file name's info suffix (filename.go).

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

func popcount(f sysFlags) int {
	n := 0
	for ; f != 0; f &= f - 1 {
		n++
	}
	return n
}

// appendFlagNames appends r's flags, sorted.
func (r *rec) appendFlagNames(b []string) []string {
	start := len(b)
	for i := range nSysFlags {
		if bit, name, _ := sysFlag(i); r.sys&bit != 0 {
			b = append(b, name)
		}
	}
	if r.kw == "" {
		return b
	}
	for kw := r.kw; kw != ""; {
		var k string
		k, kw, _ = strings.Cut(kw, " ")
		b = append(b, k)
	}
	slices.Sort(b[start:])
	return b
}
