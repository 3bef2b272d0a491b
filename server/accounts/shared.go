package accounts

import (
	"container/list"
	"context"
	"strings"
	"sync"
	"time"
)

// Shared is an account store that other processes change too (the
// database). The Store looks accounts up in it when they are first
// needed, keeps a bounded cache of them, and writes every change
// through it: a change the shared store refuses or cannot take (it is
// down) is an error, never acknowledged.
type Shared interface {
	// Lookup returns the account whose lower-case address or alias is
	// key.
	Lookup(ctx context.Context, key string) (Account, bool, error)
	// Each calls fn with every account in address order, reading them
	// in pages.
	Each(ctx context.Context, fn func(Account) error) error
	// Search returns up to limit account addresses, sorted, whose
	// address or an alias contains q (lower case).
	Search(ctx context.Context, q string, limit int) ([]string, error)
	// Apply makes one change; it returns errors wrapping ErrNotFound and
	// ErrExists as the file store does.
	Apply(ctx context.Context, c Change) error
}

// Change is one change to the shared store.
type Change struct {
	Op      Op
	Address string  // the account
	Account Account // OpAdd: the new account
	Hash    string  // OpPassword
	Quota   int64   // OpQuota
	Alias   string  // OpAddAlias, OpRemoveAlias
	Changed time.Time
}

// Op names a Change.
type Op string

// The changes.
const (
	OpAdd         Op = "add"
	OpPassword    Op = "password"
	OpQuota       Op = "quota"
	OpAddAlias    Op = "add-alias"
	OpRemoveAlias Op = "remove-alias"
	OpRemove      Op = "remove"
)

// sharedTimeout bounds one write to the shared store.
const sharedTimeout = 10 * time.Second

// lookupTimeout bounds one lookup: a login waits at most this long for
// an account the cache does not hold.
const lookupTimeout = 3 * time.Second

// DefaultCacheSize is how many accounts a shared store's cache holds
// unless told otherwise (and a quarter as many unknown addresses).
const DefaultCacheSize = 100_000

// OpenShared uses a shared store (the database). Nothing is read
// until an account is needed; at most cacheSize accounts (or lookups
// of their aliases) and a quarter as many unknown addresses are kept
// (DefaultCacheSize when 0 or less).
func OpenShared(sh Shared, cacheSize int) *Store {
	if cacheSize <= 0 {
		cacheSize = DefaultCacheSize
	}
	return &Store{shared: sh, cache: newCache(cacheSize)}
}

// Refresh forgets what the cache holds about address (an account or an
// alias another process changed): the next use reads it again. A no-op
// for the files store, which Reload keeps current.
func (s *Store) Refresh(_ context.Context, address string) error {
	if s.shared != nil {
		s.cache.forget(strings.ToLower(address))
	}
	return nil
}

// RefreshAll forgets every cached account (after the shared store was
// unreachable, when changes may have been missed); the files store
// reads its files again.
func (s *Store) RefreshAll(_ context.Context) error {
	if s.shared == nil {
		return s.Reload()
	}
	s.cache.clear()
	return nil
}

// CacheLen is the number of cached lookups (shared store only).
func (s *Store) CacheLen() int {
	if s.cache == nil {
		return 0
	}
	return s.cache.len()
}

// lookupShared resolves key through the cache, asking the shared store
// on a miss; what it answers is cached unless a change was announced
// meanwhile.
func (s *Store) lookupShared(key string) (Account, bool, error) {
	if a, ok, hit := s.cache.get(key); hit {
		return a, ok, nil
	}
	gen := s.cache.generation()
	ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
	defer cancel()
	a, ok, err := s.shared.Lookup(ctx, key)
	if err != nil {
		return Account{}, false, err
	}
	s.cache.put(key, a, ok, gen)
	return clone(a), ok, nil
}

// apply writes a change to the shared store and forgets what the
// cache held of the account (and the alias) it changed. A change not made forgets nothing: with
// the database down the cached account keeps serving logins.
func (s *Store) apply(c Change) error {
	ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
	defer cancel()
	if err := s.shared.Apply(ctx, c); err != nil {
		return err
	}
	s.cache.forget(strings.ToLower(c.Address), strings.ToLower(c.Alias))
	// Read it back into the cache, as the account in use here. The
	// change is made (and on the feed): it is not reported as failed
	// when only this read fails.
	_, _, _ = s.lookupShared(strings.ToLower(c.Address))
	return nil
}

// cache is a bounded LRU of lookups: key (an address or alias) -> the
// account it names, or that it names none. Unknown addresses have
// their own LRU of a quarter of the size, so that mail to many made-up
// addresses cannot push the accounts in use out.
type cache struct {
	mu  sync.Mutex
	max int
	// gen counts forgets: a lookup that started before one is not
	// cached (its answer may be older than the change).
	gen     uint64
	lru     *list.List // of *cached accounts, most recent first
	unknown *list.List // of *cached unknown addresses
	byKey   map[string]*list.Element
	byOwner map[string]map[string]bool // account key -> cached keys naming it
}

type cached struct {
	key   string
	owner string // the account's lower-case address; "" when none
	acct  Account
}

func newCache(max int) *cache {
	c := &cache{max: max}
	c.reset()
	return c
}

func (c *cache) reset() {
	c.lru, c.unknown, c.byKey, c.byOwner = list.New(), list.New(), map[string]*list.Element{}, map[string]map[string]bool{}
}

func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len() + c.unknown.Len()
}

// listOf is the list e is on.
func (c *cache) listOf(e *cached) *list.List {
	if e.owner == "" {
		return c.unknown
	}
	return c.lru
}

func (c *cache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// get returns the cached answer for key; hit is false when there is none.
func (c *cache) get(key string) (a Account, ok, hit bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, hit := c.byKey[key]
	if !hit {
		return Account{}, false, false
	}
	e := el.Value.(*cached)
	c.listOf(e).MoveToFront(el)
	if e.owner == "" {
		return Account{}, false, true
	}
	return clone(e.acct), true, true
}

// put caches the answer for key unless a forget came after gen.
func (c *cache) put(key string, a Account, ok bool, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if _, dup := c.byKey[key]; dup {
		return
	}
	e := &cached{key: key}
	if ok {
		e.owner, e.acct = strings.ToLower(a.Address), clone(a)
		if c.byOwner[e.owner] == nil {
			c.byOwner[e.owner] = map[string]bool{}
		}
		c.byOwner[e.owner][key] = true
	}
	l, max := c.listOf(e), c.max
	if l == c.unknown {
		max = (c.max + 3) / 4
	}
	c.byKey[key] = l.PushFront(e)
	for l.Len() > max {
		c.remove(l.Back())
	}
}

func (c *cache) remove(el *list.Element) {
	e := el.Value.(*cached)
	c.listOf(e).Remove(el)
	delete(c.byKey, e.key)
	if e.owner != "" {
		delete(c.byOwner[e.owner], e.key)
		if len(c.byOwner[e.owner]) == 0 {
			delete(c.byOwner, e.owner)
		}
	}
}

// forget drops what is cached for each key and for the account each
// names (its address and aliases).
func (c *cache) forget(keys ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for _, k := range keys {
		if k == "" {
			continue
		}
		if el, ok := c.byKey[k]; ok {
			if owner := el.Value.(*cached).owner; owner != "" && owner != k {
				c.forgetOwner(owner)
			}
			c.remove(el)
		}
		c.forgetOwner(k)
	}
}

func (c *cache) forgetOwner(owner string) {
	for k := range c.byOwner[owner] {
		c.remove(c.byKey[k])
	}
}

func (c *cache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.reset()
}
