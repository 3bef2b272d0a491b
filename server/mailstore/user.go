package mailstore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// User is the mail storage of one address. Its methods are safe for
// concurrent use.
type User struct {
	s    *Store
	addr string
	dir  string // the Maildir (INBOX)
	us   *userState
}

// MailboxInfo describes a mailbox for LIST (RFC 3501 §6.3.8).
type MailboxInfo struct {
	Name       string
	SpecialUse string // RFC 6154 attribute ("\\Sent" ...) or ""
	Subscribed bool
}

// Address returns the user's address, lower-cased.
func (u *User) Address() string { return u.addr }

// boxDir is the directory of a canonical mailbox name.
func (u *User) boxDir(canon string) string {
	if canon == Inbox {
		return u.dir
	}
	return filepath.Join(u.dir, diskName(canon))
}

func (u *User) logName(canon string) string { return u.addr + "/" + canon }

func isMaildir(dir string) bool {
	fi, err := os.Stat(filepath.Join(dir, "cur"))
	return err == nil && fi.IsDir()
}

// listNames returns the canonical names of the user's mailboxes: INBOX,
// then the others sorted.
func (u *User) listNames() ([]string, error) {
	entries, err := readDirNames(u.dir)
	if err != nil {
		return nil, fmt.Errorf("mailstore: listing mailboxes of %s: %w", u.addr, err)
	}
	var names []string
	for _, e := range entries {
		name, ok := nameFromDisk(e)
		if !ok || !isMaildir(filepath.Join(u.dir, e)) {
			continue
		}
		names = append(names, name)
	}
	slices.Sort(names)
	return append([]string{Inbox}, names...), nil
}

// Mailboxes lists the user's mailboxes, INBOX first, the others sorted by
// name.
func (u *User) Mailboxes() ([]MailboxInfo, error) {
	names, err := u.listNames()
	if err != nil {
		return nil, err
	}
	u.us.mu.Lock()
	subs, err := u.readSubscriptions()
	u.us.mu.Unlock()
	if err != nil {
		return nil, err
	}
	out := make([]MailboxInfo, len(names))
	for i, n := range names {
		out[i] = MailboxInfo{Name: n, SpecialUse: specialUse(n), Subscribed: slices.Contains(subs, n)}
	}
	return out, nil
}

// Mailbox opens a mailbox by name; "inbox" in any case is INBOX.
// ErrNoMailbox if it does not exist.
func (u *User) Mailbox(name string) (*Mailbox, error) {
	canon, err := canonicalName(name)
	if err != nil {
		return nil, err
	}
	dir := u.boxDir(canon)
	if canon != Inbox && !isMaildir(dir) {
		return nil, fmt.Errorf("mailstore: mailbox %s of %s: %w", canon, u.addr, ErrNoMailbox)
	}
	m := &Mailbox{u: u, name: canon, st: u.s.box(dir, u.logName(canon))}
	m.st.mu.Lock()
	err = m.st.ensureLoaded()
	m.st.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return m, nil
}

// CreateMailbox creates a mailbox, and its missing superiors (RFC 3501
// §6.3.3). ErrMailboxExists if it exists.
func (u *User) CreateMailbox(name string) error {
	canon, err := canonicalName(name)
	if err != nil {
		return err
	}
	if canon == Inbox {
		return fmt.Errorf("mailstore: creating %s: %w", canon, ErrMailboxExists)
	}
	u.us.mu.Lock()
	defer u.us.mu.Unlock()
	if isMaildir(u.boxDir(canon)) {
		return fmt.Errorf("mailstore: creating %s: %w", canon, ErrMailboxExists)
	}
	levels := strings.Split(canon, "/")
	for i := range levels {
		n := strings.Join(levels[:i+1], "/")
		if n == Inbox || isMaildir(u.boxDir(n)) {
			continue
		}
		if err := u.createOne(n); err != nil {
			return fmt.Errorf("mailstore: creating %s: %w", n, err)
		}
	}
	return nil
}

// createOne builds a mailbox aside and renames it into place, so that it
// appears complete or not at all. Called with u.us.mu held.
func (u *User) createOne(canon string) error {
	dir := u.boxDir(canon)
	tmp := filepath.Join(u.dir, tmpDirPrefix+randomSuffix())
	if err := u.s.makeMaildir(tmp, true); err != nil {
		_ = os.RemoveAll(tmp)
		return err
	}
	u.s.dropBox(dir) // forget the state of an earlier mailbox of this name
	// Debris without cur/ in the way: an empty directory is replaced by
	// the rename, anything else makes it fail.
	if err := os.Rename(tmp, dir); err != nil {
		_ = os.RemoveAll(tmp)
		return err
	}
	return u.s.syncDir(u.dir)
}

// DeleteMailbox deletes a mailbox and its messages; not INBOX. Mailboxes
// below it stay (RFC 3501 §6.3.4). Its subscription is removed.
func (u *User) DeleteMailbox(name string) error {
	canon, err := canonicalName(name)
	if err != nil {
		return err
	}
	if canon == Inbox {
		return fmt.Errorf("mailstore: deleting INBOX (RFC 3501 §6.3.4): %w", ErrBadName)
	}
	u.us.mu.Lock()
	defer u.us.mu.Unlock()
	dir := u.boxDir(canon)
	if !isMaildir(dir) {
		return fmt.Errorf("mailstore: deleting %s: %w", canon, ErrNoMailbox)
	}
	// Rename first (atomic), then remove at leisure: a crash leaves
	// either the mailbox or a trash directory removed on the next start.
	trash := filepath.Join(u.dir, trashDirPrefix+randomSuffix())
	if err := u.moveBoxDir(dir, trash); err != nil {
		return fmt.Errorf("mailstore: deleting %s: %w", canon, err)
	}
	if err := u.s.syncDir(u.dir); err != nil {
		return fmt.Errorf("mailstore: deleting %s: %w", canon, err)
	}
	if err := os.RemoveAll(trash); err != nil {
		u.s.log.Warn("mailstore: removing deleted mailbox", "mailbox", u.logName(canon), "err", err)
	}
	if err := u.updateSubscriptions(func(subs []string) []string {
		return slices.DeleteFunc(subs, func(s string) bool { return s == canon })
	}); err != nil {
		return fmt.Errorf("mailstore: deleting %s: %w", canon, err)
	}
	return nil
}

// moveBoxDir renames a mailbox directory while holding its state's lock
// (so no operation is half done), and marks the state gone.
func (u *User) moveBoxDir(from, to string) error {
	st := u.s.existingBox(from)
	if st != nil {
		st.mu.Lock()
	}
	err := os.Rename(from, to)
	if st != nil {
		if err == nil {
			st.markGone()
		}
		st.mu.Unlock()
	}
	if err == nil {
		u.s.dropBox(from)
	}
	return err
}

// RenameMailbox renames a mailbox and the mailboxes below it (RFC 3501
// §6.3.5), keeping UIDs and UIDVALIDITY; subscriptions follow. Renaming
// INBOX moves its messages into a new mailbox and leaves INBOX empty.
func (u *User) RenameMailbox(oldName, newName string) error {
	from, err := canonicalName(oldName)
	if err != nil {
		return err
	}
	to, err := canonicalName(newName)
	if err != nil {
		return err
	}
	if to == Inbox || from == to {
		return fmt.Errorf("mailstore: renaming %s to %s: %w", from, to, ErrMailboxExists)
	}
	if from == Inbox {
		return u.renameInbox(to)
	}
	if strings.HasPrefix(to, from+"/") {
		return fmt.Errorf("mailstore: renaming %s below itself: %w", from, ErrBadName)
	}
	u.us.mu.Lock()
	defer u.us.mu.Unlock()
	if !isMaildir(u.boxDir(from)) {
		return fmt.Errorf("mailstore: renaming %s: %w", from, ErrNoMailbox)
	}
	names, err := u.listNames()
	if err != nil {
		return err
	}
	type move struct{ from, to string }
	var moves []move
	for _, n := range names {
		if n != from && !strings.HasPrefix(n, from+"/") {
			continue
		}
		target := to + n[len(from):]
		if _, err := canonicalName(target); err != nil {
			return fmt.Errorf("mailstore: renaming %s to %s: %w", n, target, err)
		}
		if isMaildir(u.boxDir(target)) {
			return fmt.Errorf("mailstore: renaming %s to %s: %w", n, target, ErrMailboxExists)
		}
		moves = append(moves, move{n, target})
	}
	// Superiors of the new name (RFC 3501 §6.3.5: created as needed).
	levels := strings.Split(to, "/")
	for i := 1; i < len(levels); i++ {
		n := strings.Join(levels[:i], "/")
		if n != Inbox && !isMaildir(u.boxDir(n)) {
			if err := u.createOne(n); err != nil {
				return fmt.Errorf("mailstore: renaming %s: creating %s: %w", from, n, err)
			}
		}
	}
	for _, mv := range moves {
		dst := u.boxDir(mv.to)
		if err := u.moveBoxDir(u.boxDir(mv.from), dst); err != nil {
			return fmt.Errorf("mailstore: renaming %s to %s: %w", mv.from, mv.to, err)
		}
		u.s.dropBox(dst)
	}
	if err := u.s.syncDir(u.dir); err != nil {
		return fmt.Errorf("mailstore: renaming %s: %w", from, err)
	}
	return u.updateSubscriptions(func(subs []string) []string {
		for i, s := range subs {
			for _, mv := range moves {
				if s == mv.from {
					subs[i] = mv.to
				}
			}
		}
		return subs
	})
}

// renameInbox implements RENAME of INBOX (RFC 3501 §6.3.5): all messages
// move to the new mailbox, INBOX stays, empty.
func (u *User) renameInbox(to string) error {
	if err := u.CreateMailbox(to); err != nil {
		return err
	}
	inbox, err := u.Mailbox(Inbox)
	if err != nil {
		return err
	}
	dst, err := u.Mailbox(to)
	if err != nil {
		return err
	}
	msgs, err := inbox.Messages()
	if err != nil {
		return err
	}
	uids := make([]uint32, len(msgs))
	for i, m := range msgs {
		uids[i] = m.UID
	}
	pairs, err := inbox.CopyTo(dst, uids)
	if err != nil {
		return fmt.Errorf("mailstore: renaming INBOX: %w", err)
	}
	moved := make([]uint32, len(pairs))
	for i, p := range pairs {
		moved[i] = p[0]
	}
	if _, err := inbox.Expunge(moved); err != nil {
		return fmt.Errorf("mailstore: renaming INBOX: %w", err)
	}
	return nil
}

// SetSubscribed subscribes (RFC 3501 §6.3.6) or unsubscribes a mailbox.
// Subscribing needs an existing mailbox.
func (u *User) SetSubscribed(name string, on bool) error {
	canon, err := canonicalName(name)
	if err != nil {
		return err
	}
	u.us.mu.Lock()
	defer u.us.mu.Unlock()
	if on && !isMaildir(u.boxDir(canon)) {
		return fmt.Errorf("mailstore: subscribing %s: %w", canon, ErrNoMailbox)
	}
	return u.updateSubscriptions(func(subs []string) []string {
		subs = slices.DeleteFunc(subs, func(s string) bool { return s == canon })
		if on {
			subs = append(subs, canon)
		}
		return subs
	})
}

// readSubscriptions reads mailsetup.subscriptions; called with u.us.mu.
func (u *User) readSubscriptions() ([]string, error) {
	data, err := os.ReadFile(filepath.Join(u.dir, subscriptionsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("mailstore: reading subscriptions of %s: %w", u.addr, err)
	}
	var subs []string
	for _, line := range strings.Split(string(data), "\n") {
		if line != "" {
			subs = append(subs, line)
		}
	}
	return subs, nil
}

func encodeSubscriptions(subs []string) []byte {
	var b []byte
	for _, s := range subs {
		b = append(b, s...)
		b = append(b, '\n')
	}
	return b
}

// updateSubscriptions rewrites the subscriptions; called with u.us.mu.
func (u *User) updateSubscriptions(f func([]string) []string) error {
	subs, err := u.readSubscriptions()
	if err != nil {
		return err
	}
	subs = f(subs)
	slices.Sort(subs)
	subs = slices.Compact(subs)
	if err := u.s.writeFileAtomic(filepath.Join(u.dir, subscriptionsFile), encodeSubscriptions(subs)); err != nil {
		return fmt.Errorf("mailstore: writing subscriptions of %s: %w", u.addr, err)
	}
	return nil
}

// Usage returns the bytes and number of messages in all of the user's
// mailboxes, from the indexes.
func (u *User) Usage() (bytes int64, messages int, err error) {
	names, err := u.listNames()
	if err != nil {
		return 0, 0, err
	}
	for _, n := range names {
		st := u.s.box(u.boxDir(n), u.logName(n))
		st.mu.Lock()
		err := st.fresh()
		if err == nil {
			bytes += st.bytes
			messages += len(st.recs)
		}
		st.mu.Unlock()
		if err != nil {
			if errors.Is(err, ErrNoMailbox) {
				continue // deleted meanwhile
			}
			return 0, 0, fmt.Errorf("mailstore: usage of %s: %w", u.addr, err)
		}
	}
	return bytes, messages, nil
}
