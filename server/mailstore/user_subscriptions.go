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

// Subscriptions (RFC 3501 §6.3.6) live in mailsetup.subscriptions, one
// canonical mailbox name a line, sorted; the file is replaced atomically.

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
