package mailstore

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
)

// User is the mail storage of one address. Its methods are safe for
// concurrent use.
type User struct {
	s    *Store
	addr string
	dir  string // the Maildir (INBOX)
	us   *userState
}

// userState is shared by all User values of one Maildir.
type userState struct {
	mu    sync.Mutex // mailbox creation, deletion, renaming, subscriptions
	ready bool       // the Maildir exists and leftovers were cleaned
}

func (s *Store) userState(dir string) *userState {
	s.mu.Lock()
	defer s.mu.Unlock()
	us := s.users[dir]
	if us == nil {
		us = &userState{}
		s.users[dir] = us
	}
	return us
}

// splitAddress lower-cases an address and checks that its parts are safe
// as directory names.
func splitAddress(address string) (local, domain string, err error) {
	i := strings.LastIndexByte(address, '@')
	if i <= 0 || i == len(address)-1 {
		return "", "", fmt.Errorf("%w: address %q", ErrBadName, address)
	}
	local, domain = strings.ToLower(address[:i]), strings.ToLower(address[i+1:])
	for _, p := range []string{local, domain} {
		if p == "." || p == ".." || len(p) > 255 || strings.ContainsAny(p, "/\\\x00") {
			return "", "", fmt.Errorf("%w: address %q", ErrBadName, address)
		}
		for _, r := range p {
			if r < 0x20 || r == 0x7f {
				return "", "", fmt.Errorf("%w: address %q", ErrBadName, address)
			}
		}
	}
	return local, domain, nil
}

// User returns the mail storage of an address (full and already
// validated), creating its Maildir with INBOX and the special-use
// mailboxes (RFC 6154) on first access.
func (s *Store) User(address string) (*User, error) {
	local, domain, err := splitAddress(address)
	if err != nil {
		return nil, err
	}
	addr := local + "@" + domain
	userDir := filepath.Join(s.root, domain, local)
	dir := filepath.Join(userDir, "Maildir")
	us := s.userState(dir)
	us.mu.Lock()
	defer us.mu.Unlock()
	if !us.ready {
		if err := s.prepareUser(userDir, dir, addr); err != nil {
			return nil, fmt.Errorf("mailstore: preparing mail storage of %s: %w", addr, err)
		}
		us.ready = true
	}
	return &User{s: s, addr: addr, dir: dir, us: us}, nil
}

// HasUser reports whether an address has mail storage (its INBOX
// Maildir), without creating it as User does: for sweeps over all
// accounts that must not create storage for accounts without mail.
func (s *Store) HasUser(address string) (bool, error) {
	local, domain, err := splitAddress(address)
	if err != nil {
		return false, err
	}
	return isMaildir(filepath.Join(s.root, domain, local, "Maildir")), nil
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
