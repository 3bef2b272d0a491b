package mailstore

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Mailbox names: validation, the canonical form, the Maildir++ folder
// name on disk (levels in modified UTF-7, see mutf7.go, joined by ".")
// and the special-use mailboxes every user gets.

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
