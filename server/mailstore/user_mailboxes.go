package mailstore

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// A user's mailboxes: listing, opening, creating, deleting and renaming
// them (RFC 3501 §6.3.1 to §6.3.5, §6.3.8). Creation, deletion and
// renaming hold the user's lock.

// MailboxInfo describes a mailbox for LIST (RFC 3501 §6.3.8).
type MailboxInfo struct {
	Name       string
	SpecialUse string // RFC 6154 attribute ("\\Sent" ...) or ""
	Subscribed bool
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
	if n, err := u.createMissing(strings.Split(canon, "/")); err != nil {
		return fmt.Errorf("mailstore: creating %s: %w", n, err)
	}
	return nil
}

// createMissing creates, in order, every mailbox named by a prefix of
// levels (the hierarchy levels of a canonical name) that does not exist
// yet. On failure it returns the name it could not create. Called with
// u.us.mu held.
func (u *User) createMissing(levels []string) (string, error) {
	for i := range levels {
		n := strings.Join(levels[:i+1], "/")
		if n == Inbox || isMaildir(u.boxDir(n)) {
			continue
		}
		if err := u.createOne(n); err != nil {
			return n, err
		}
	}
	return "", nil
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

// boxMove is one mailbox directory to rename in RenameMailbox.
type boxMove struct{ from, to string }

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
	moves, err := u.planRename(from, to)
	if err != nil {
		return err
	}
	// Superiors of the new name (RFC 3501 §6.3.5: created as needed).
	levels := strings.Split(to, "/")
	if n, err := u.createMissing(levels[:len(levels)-1]); err != nil {
		return fmt.Errorf("mailstore: renaming %s: creating %s: %w", from, n, err)
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

// planRename lists the mailboxes that renaming from to to moves (from
// and those below it) and checks that every new name is valid and free.
// Called with u.us.mu held.
func (u *User) planRename(from, to string) ([]boxMove, error) {
	if !isMaildir(u.boxDir(from)) {
		return nil, fmt.Errorf("mailstore: renaming %s: %w", from, ErrNoMailbox)
	}
	names, err := u.listNames()
	if err != nil {
		return nil, err
	}
	var moves []boxMove
	for _, n := range names {
		if n != from && !strings.HasPrefix(n, from+"/") {
			continue
		}
		target := to + n[len(from):]
		if _, err := canonicalName(target); err != nil {
			return nil, fmt.Errorf("mailstore: renaming %s to %s: %w", n, target, err)
		}
		if isMaildir(u.boxDir(target)) {
			return nil, fmt.Errorf("mailstore: renaming %s to %s: %w", n, target, ErrMailboxExists)
		}
		moves = append(moves, boxMove{n, target})
	}
	return moves, nil
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
