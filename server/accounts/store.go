package accounts

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"mailsetup/autoconfig"
)

// Store is the accounts: in files (Open) with all of them in memory, or
// in a shared store (OpenShared) with a bounded cache of those in use.
// It is safe for concurrent use.
type Store struct {
	// The files store (journal.go).
	path string
	// reloadMu serializes reading the files; mu guards st.
	reloadMu sync.Mutex
	mu       sync.RWMutex
	st       *state
	// compactAt: the journal is compacted when it is larger than this
	// many bytes and than half the snapshot.
	compactAt int64

	// shared, when set, is where the accounts live (the database);
	// cache holds the ones looked up (shared.go).
	shared Shared
	cache  *cache
}

// state is the files store's accounts and how far the files were read.
type state struct {
	accounts map[string]*Account // by lower-case address
	aliases  map[string]string   // lower-case alias -> lower-case account address
	files
}

func newState() *state {
	return &state{accounts: map[string]*Account{}, aliases: map[string]string{}}
}

// owner returns the account that key (an address or alias) names.
func (st *state) owner(key string) (*Account, bool) {
	if a, ok := st.accounts[key]; ok {
		return a, true
	}
	if k, ok := st.aliases[key]; ok {
		return st.accounts[k], true
	}
	return nil, false
}

// put replaces (or adds) an account and its aliases.
func (st *state) put(a Account) {
	key := strings.ToLower(a.Address)
	st.del(key)
	st.accounts[key] = &a
	for _, al := range a.Aliases {
		st.aliases[strings.ToLower(al)] = key
	}
}

// del removes an account and its aliases.
func (st *state) del(key string) {
	if old, ok := st.accounts[key]; ok {
		for _, al := range old.Aliases {
			delete(st.aliases, strings.ToLower(al))
		}
		delete(st.accounts, key)
	}
}

// apply applies journal entries in order.
func (st *state) apply(entries []entry) {
	for _, e := range entries {
		if e.Put != nil {
			st.put(*e.Put)
		} else {
			st.del(e.Del)
		}
		st.seq = e.Seq
	}
}

// Resolve returns the account that receives mail for address: the
// account itself or the owner of the alias. With a shared store an
// error (it is unreachable) reads as not found; Lookup tells them apart.
func (s *Store) Resolve(address string) (Account, bool) {
	a, ok, _ := s.resolve(address)
	return a, ok
}

func (s *Store) resolve(address string) (Account, bool, error) {
	key := strings.ToLower(address)
	if s.shared != nil {
		return s.lookupShared(key)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	a, ok := s.st.owner(key)
	if !ok {
		return Account{}, false, nil
	}
	return clone(*a), true, nil
}

// Lookup returns the account of address (not of an alias); the error
// says the shared store could not be asked (the account is then
// neither known nor unknown).
func (s *Store) Lookup(address string) (Account, bool, error) {
	a, ok, err := s.resolve(address)
	if err != nil || !ok || !strings.EqualFold(a.Address, address) {
		return Account{}, false, err
	}
	return a, true, nil
}

// Get returns the account of address.
func (s *Store) Get(address string) (Account, bool) {
	a, ok, _ := s.Lookup(address)
	return a, ok
}

func clone(a Account) Account {
	a.Aliases = slices.Clone(a.Aliases)
	return a
}

// Each calls fn with every account in address order, without holding
// all of them in memory for a shared store; an error from fn ends it.
func (s *Store) Each(ctx context.Context, fn func(Account) error) error {
	if s.shared != nil {
		return s.shared.Each(ctx, fn)
	}
	for _, a := range s.List() {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(a); err != nil {
			return err
		}
	}
	return nil
}

// List returns every account, sorted by address. With a shared store
// it reads them all, and an unreachable one is an empty list: use Each.
func (s *Store) List() []Account {
	if s.shared != nil {
		var out []Account
		_ = s.shared.Each(context.Background(), func(a Account) error {
			out = append(out, a)
			return nil
		})
		return out
	}
	s.mu.RLock()
	out := make([]Account, 0, len(s.st.accounts))
	for _, a := range s.st.accounts {
		out = append(out, clone(*a))
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b Account) int { return strings.Compare(a.Address, b.Address) })
	return out
}

// Search returns up to limit account addresses, sorted, where the
// address or an alias contains q (lower case).
func (s *Store) Search(q string, limit int) ([]string, error) {
	q = strings.ToLower(q)
	if s.shared != nil {
		ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
		defer cancel()
		return s.shared.Search(ctx, q, limit)
	}
	var out []string
	for _, a := range s.List() {
		match := strings.Contains(strings.ToLower(a.Address), q)
		for _, al := range a.Aliases {
			match = match || strings.Contains(strings.ToLower(al), q)
		}
		if match {
			out = append(out, a.Address)
			if len(out) >= limit {
				break
			}
		}
	}
	return out, nil
}

// SetQuota sets an account's storage limit in bytes; 0 means none.
func (s *Store) SetQuota(address string, bytes int64) error {
	if bytes < 0 {
		return fmt.Errorf("quota %d: want 0 (no limit) or more bytes", bytes)
	}
	if s.shared != nil {
		return s.apply(Change{Op: OpQuota, Address: address, Quota: bytes})
	}
	return s.change(func(st *state) ([]entry, error) {
		a, ok := st.accounts[strings.ToLower(address)]
		if !ok {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, address)
		}
		c := clone(*a)
		c.QuotaBytes = bytes
		return []entry{{Put: &c}}, nil
	})
}

// AddAlias makes alias deliver to, and usable as a sender by, address.
func (s *Store) AddAlias(address, alias string) error {
	al, err := autoconfig.ParseAddress(alias)
	if err != nil {
		return err
	}
	if s.shared != nil {
		return s.apply(Change{Op: OpAddAlias, Address: address, Alias: al.String()})
	}
	return s.change(func(st *state) ([]entry, error) {
		a, ok := st.accounts[strings.ToLower(address)]
		if !ok {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, address)
		}
		key := strings.ToLower(al.String())
		if _, taken := st.accounts[key]; taken {
			return nil, fmt.Errorf("%w: %s is an account", ErrExists, al)
		}
		if owner, taken := st.aliases[key]; taken {
			return nil, fmt.Errorf("%w: %s is already an alias of %s", ErrExists, al, st.accounts[owner].Address)
		}
		c := clone(*a)
		c.Aliases = append(c.Aliases, al.String())
		slices.Sort(c.Aliases)
		return []entry{{Put: &c}}, nil
	})
}

// RemoveAlias removes an alias of address.
func (s *Store) RemoveAlias(address, alias string) error {
	if s.shared != nil {
		return s.apply(Change{Op: OpRemoveAlias, Address: address, Alias: alias})
	}
	return s.change(func(st *state) ([]entry, error) {
		a, ok := st.accounts[strings.ToLower(address)]
		if !ok {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, address)
		}
		i := slices.IndexFunc(a.Aliases, func(x string) bool { return strings.EqualFold(x, alias) })
		if i < 0 {
			return nil, fmt.Errorf("%w: %s is not an alias of %s", ErrNotFound, alias, address)
		}
		c := clone(*a)
		c.Aliases = slices.Delete(c.Aliases, i, i+1)
		return []entry{{Put: &c}}, nil
	})
}

// Add creates an account.
func (s *Store) Add(address, password string) error {
	addr, err := autoconfig.ParseAddress(address)
	if err != nil {
		return err
	}
	hash, err := HashPassword(password)
	if err != nil {
		return err
	}
	now := time.Now().UTC().Truncate(time.Second)
	a := Account{Address: addr.String(), PasswordHash: hash, Created: now, Changed: now}
	if s.shared != nil {
		return s.apply(Change{Op: OpAdd, Address: addr.String(), Account: a})
	}
	return s.change(func(st *state) ([]entry, error) {
		key := strings.ToLower(addr.String())
		if _, ok := st.accounts[key]; ok {
			return nil, fmt.Errorf("%w: %s", ErrExists, addr)
		}
		if _, ok := st.aliases[key]; ok {
			return nil, fmt.Errorf("%w: %s is an alias", ErrExists, addr)
		}
		return []entry{{Put: &a}}, nil
	})
}

// SetPassword replaces an account's password.
func (s *Store) SetPassword(address, password string) error {
	hash, err := HashPassword(password)
	if err != nil {
		return err
	}
	now := time.Now().UTC().Truncate(time.Second)
	if s.shared != nil {
		return s.apply(Change{Op: OpPassword, Address: address, Hash: hash, Changed: now})
	}
	return s.change(func(st *state) ([]entry, error) {
		a, ok := st.accounts[strings.ToLower(address)]
		if !ok {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, address)
		}
		c := clone(*a)
		c.PasswordHash, c.Changed = hash, now
		return []entry{{Put: &c}}, nil
	})
}

// Remove deletes an account (not its mail).
func (s *Store) Remove(address string) error {
	if s.shared != nil {
		return s.apply(Change{Op: OpRemove, Address: address})
	}
	return s.change(func(st *state) ([]entry, error) {
		key := strings.ToLower(address)
		if _, ok := st.accounts[key]; !ok {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, address)
		}
		return []entry{{Del: key}}, nil
	})
}

// Copy puts every account of from into s with its password hash,
// aliases and quota (mailsetup db import and db export); an account s
// already has is left as it is and counted in skipped. Into the files
// it is one journal write; into the database one transaction per
// copyBatch accounts (per change into another shared store), so an
// error leaves what was copied before it.
func (s *Store) Copy(from *Store) (copied, skipped int, err error) {
	var all []Account
	err = from.Each(context.Background(), func(a Account) error {
		if err := ValidHash(a.PasswordHash); err != nil {
			return fmt.Errorf("%s: %w", a.Address, err)
		}
		all = append(all, a)
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	if s.shared == nil {
		err = s.change(func(st *state) ([]entry, error) {
			copied, skipped = 0, 0
			var out []entry
			for _, a := range all {
				if _, ok := st.accounts[strings.ToLower(a.Address)]; ok {
					skipped++
					continue
				}
				c := clone(a)
				out = append(out, entry{Put: &c})
				copied++
			}
			return out, nil
		})
		return copied, skipped, err
	}
	if many, ok := s.shared.(manyAdder); ok {
		return s.copyMany(many, all)
	}
	for _, a := range all {
		if _, ok := s.Get(a.Address); ok {
			skipped++
			continue
		}
		acct := a
		acct.Aliases = nil
		if err := s.apply(Change{Op: OpAdd, Address: a.Address, Account: acct}); err != nil {
			return copied, skipped, fmt.Errorf("%s: %w", a.Address, err)
		}
		for _, al := range a.Aliases {
			if err := s.apply(Change{Op: OpAddAlias, Address: a.Address, Alias: al}); err != nil {
				return copied, skipped, fmt.Errorf("%s: alias %s: %w", a.Address, al, err)
			}
		}
		copied++
	}
	return copied, skipped, nil
}

// manyAdder is a shared store that adds many accounts in one
// transaction (the database).
type manyAdder interface {
	AddMany(ctx context.Context, accts []Account) (added int, err error)
}

// copyBatch is how many accounts one transaction of Copy adds.
const copyBatch = 1000

func (s *Store) copyMany(many manyAdder, all []Account) (copied, skipped int, err error) {
	for len(all) > 0 {
		n := min(len(all), copyBatch)
		ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
		added, err := many.AddMany(ctx, all[:n])
		cancel()
		if err != nil {
			return copied, skipped, err
		}
		for _, a := range all[:n] {
			keys := []string{strings.ToLower(a.Address)}
			for _, al := range a.Aliases {
				keys = append(keys, strings.ToLower(al))
			}
			s.cache.forget(keys...)
		}
		copied += added
		skipped += n - added
		all = all[n:]
	}
	return copied, skipped, nil
}
