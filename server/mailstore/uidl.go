package mailstore

import (
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"strings"
)

// UIDLs (RFC 1939 §7): what a valid one is, how a given one is encoded in
// a file name's X field, and how a message's UIDL follows from its base
// name. See "File names and UIDLs" in the package documentation.

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

// UIDLOfFile is the POP3 UIDL the store serves for a message file in a
// Maildir's new/ or cur/ (its name, with or without the ":2," info): the
// rule of "File names and UIDLs" above, for programs that read a Maildir
// beside a running service (`mailsetup import --verify`).
func UIDLOfFile(name string) string {
	base, _, _ := strings.Cut(name, ":")
	return uidlFromBase(base)
}

// hasGivenUIDL reports whether a base name carries a given UIDL (an X
// field), as imported mail does.
func hasGivenUIDL(base string) bool { return strings.Contains(base, ",X=") }
