// Package accounts stores mail accounts: the address, an argon2id password
// hash (never the password), aliases and a quota, in one JSON file that is
// replaced atomically on every change (write to a temporary file, fsync,
// rename, fsync the directory). Another process (the `mailsetup user`
// command) may change the file while the server runs; Reload picks the
// change up.
//
// Imports: autoconfig (address parsing), the password-hash library and
// the standard library.
//
// With a database (OpenShared) the accounts live there; the Store keeps
// a copy for the hot paths, writes every change through, and is told of
// other processes' changes by Refresh.
package accounts

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"

	"mailsetup/autoconfig"
)

// Sentinels callers tell apart with errors.Is.
var (
	// ErrExists: the address already has an account; use SetPassword.
	ErrExists = errors.New("account already exists")
	// ErrNotFound: no account has this address.
	ErrNotFound = errors.New("no such account")
	// ErrWeakPassword: the password is too short; ask for another.
	ErrWeakPassword = errors.New("password too short")
)

// MinPasswordLength is the shortest password accepted.
const MinPasswordLength = 8

// Account is one mailbox owner.
type Account struct {
	Address string `json:"address"`
	// PasswordHash is a PHC-format argon2id string.
	PasswordHash string    `json:"password_hash"`
	Aliases      []string  `json:"aliases,omitempty"`
	QuotaBytes   int64     `json:"quota_bytes,omitempty"`
	Created      time.Time `json:"created"`
	// Changed is when the password last changed.
	Changed time.Time `json:"changed"`
}

type file struct {
	Version  int       `json:"version"`
	Accounts []Account `json:"accounts"`
}

// Store is the account file and its in-memory copy. It is safe for
// concurrent use.
type Store struct {
	path string

	mu       sync.RWMutex
	accounts map[string]*Account // by lower-case address
	aliases  map[string]string   // lower-case alias -> lower-case account address
	modTime  time.Time
	size     int64

	// shared, when set, is where the accounts live (the database): the
	// map above is its copy, every change is written there first.
	shared Shared
}

// Shared is an account store that other processes change too (the
// database). The Store keeps a copy of it for the hot paths and writes
// every change through it: a change the shared store refuses or cannot
// take (it is down) is an error, never acknowledged.
type Shared interface {
	// All returns every account with its aliases.
	All(ctx context.Context) ([]Account, error)
	// One returns the account with this lower-case address.
	One(ctx context.Context, key string) (Account, bool, error)
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

// OpenShared loads every account from a shared store (the database).
func OpenShared(ctx context.Context, sh Shared) (*Store, error) {
	all, err := sh.All(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading accounts: %w", err)
	}
	m := make(map[string]*Account, len(all))
	for i := range all {
		a := all[i]
		m[strings.ToLower(a.Address)] = &a
	}
	return &Store{shared: sh, accounts: m, aliases: aliasIndex(m)}, nil
}

// Refresh reads one account again from the shared store (another
// process changed it); a no-op for the file store.
func (s *Store) Refresh(ctx context.Context, address string) error {
	if s.shared == nil {
		return nil
	}
	key := strings.ToLower(address)
	a, ok, err := s.shared.One(ctx, key)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, had := s.accounts[key]; had {
		for _, al := range old.Aliases {
			delete(s.aliases, strings.ToLower(al))
		}
	}
	if !ok {
		delete(s.accounts, key)
		return nil
	}
	s.accounts[key] = &a
	for _, al := range a.Aliases {
		s.aliases[strings.ToLower(al)] = key
	}
	return nil
}

// RefreshAll reads every account again (after the shared store was
// unreachable, when changes may have been missed).
func (s *Store) RefreshAll(ctx context.Context) error {
	if s.shared == nil {
		return s.Reload()
	}
	fresh, err := OpenShared(ctx, s.shared)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.accounts, s.aliases = fresh.accounts, fresh.aliases
	s.mu.Unlock()
	return nil
}

// apply writes a change to the shared store and then reads the account
// back into the copy.
func (s *Store) apply(c Change) error {
	ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
	defer cancel()
	if err := s.shared.Apply(ctx, c); err != nil {
		return err
	}
	// The change is made (and on the feed): it is not reported as failed
	// when only reading it back fails; the copy is then stale until the
	// next RefreshAll (serve's, after an outage).
	_ = s.Refresh(ctx, c.Address)
	return nil
}

// Open reads the account file at path; a missing file is an empty store.
func Open(path string) (*Store, error) {
	s := &Store{path: path, accounts: map[string]*Account{}, aliases: map[string]string{}}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload re-reads the file if it changed since the last read.
func (s *Store) Reload() error {
	if s.shared != nil {
		return nil // kept current by Refresh
	}
	st, err := os.Stat(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading accounts: %w", err)
	}
	s.mu.RLock()
	same := st.ModTime().Equal(s.modTime) && st.Size() == s.size
	s.mu.RUnlock()
	if same {
		return nil
	}
	data, err := os.ReadFile(s.path)
	if err != nil {
		return fmt.Errorf("reading accounts: %w", err)
	}
	var f file
	if err := json.Unmarshal(data, &f); err != nil {
		return fmt.Errorf("reading accounts %s: %w", s.path, err)
	}
	m := make(map[string]*Account, len(f.Accounts))
	for i := range f.Accounts {
		a := f.Accounts[i]
		m[strings.ToLower(a.Address)] = &a
	}
	s.mu.Lock()
	s.accounts, s.aliases, s.modTime, s.size = m, aliasIndex(m), st.ModTime(), st.Size()
	s.mu.Unlock()
	return nil
}

func aliasIndex(m map[string]*Account) map[string]string {
	out := map[string]string{}
	for k, a := range m {
		for _, al := range a.Aliases {
			out[strings.ToLower(al)] = k
		}
	}
	return out
}

// Resolve returns the account that receives mail for address: the
// account itself or the owner of the alias.
func (s *Store) Resolve(address string) (Account, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	key := strings.ToLower(address)
	if a, ok := s.accounts[key]; ok {
		return *a, true
	}
	if owner, ok := s.aliases[key]; ok {
		return *s.accounts[owner], true
	}
	return Account{}, false
}

// SetQuota sets an account's storage limit in bytes; 0 means none.
func (s *Store) SetQuota(address string, bytes int64) error {
	if bytes < 0 {
		return fmt.Errorf("quota %d: want 0 (no limit) or more bytes", bytes)
	}
	if s.shared != nil {
		return s.apply(Change{Op: OpQuota, Address: address, Quota: bytes})
	}
	return s.update(func(m map[string]*Account) error {
		a, ok := m[strings.ToLower(address)]
		if !ok {
			return fmt.Errorf("%w: %s", ErrNotFound, address)
		}
		a.QuotaBytes = bytes
		return nil
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
	return s.update(func(m map[string]*Account) error {
		a, ok := m[strings.ToLower(address)]
		if !ok {
			return fmt.Errorf("%w: %s", ErrNotFound, address)
		}
		key := strings.ToLower(al.String())
		if _, taken := m[key]; taken {
			return fmt.Errorf("%w: %s is an account", ErrExists, al)
		}
		if owner, taken := aliasIndex(m)[key]; taken {
			return fmt.Errorf("%w: %s is already an alias of %s", ErrExists, al, m[owner].Address)
		}
		a.Aliases = append(a.Aliases, al.String())
		slices.Sort(a.Aliases)
		return nil
	})
}

// RemoveAlias removes an alias of address.
func (s *Store) RemoveAlias(address, alias string) error {
	if s.shared != nil {
		return s.apply(Change{Op: OpRemoveAlias, Address: address, Alias: alias})
	}
	return s.update(func(m map[string]*Account) error {
		a, ok := m[strings.ToLower(address)]
		if !ok {
			return fmt.Errorf("%w: %s", ErrNotFound, address)
		}
		i := slices.IndexFunc(a.Aliases, func(x string) bool { return strings.EqualFold(x, alias) })
		if i < 0 {
			return fmt.Errorf("%w: %s is not an alias of %s", ErrNotFound, alias, address)
		}
		a.Aliases = slices.Delete(a.Aliases, i, i+1)
		return nil
	})
}

// List returns every account, sorted by address.
func (s *Store) List() []Account {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Account, 0, len(s.accounts))
	for _, a := range s.accounts {
		out = append(out, *a)
	}
	slices.SortFunc(out, func(a, b Account) int { return strings.Compare(a.Address, b.Address) })
	return out
}

// Get returns the account of address.
func (s *Store) Get(address string) (Account, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	a, ok := s.accounts[strings.ToLower(address)]
	if !ok {
		return Account{}, false
	}
	return *a, true
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
	if s.shared != nil {
		now := time.Now().UTC().Truncate(time.Second)
		return s.apply(Change{Op: OpAdd, Address: addr.String(), Account: Account{Address: addr.String(), PasswordHash: hash, Created: now, Changed: now}})
	}
	return s.update(func(m map[string]*Account) error {
		key := strings.ToLower(addr.String())
		if _, ok := m[key]; ok {
			return fmt.Errorf("%w: %s", ErrExists, addr)
		}
		now := time.Now().UTC().Truncate(time.Second)
		m[key] = &Account{Address: addr.String(), PasswordHash: hash, Created: now, Changed: now}
		return nil
	})
}

// SetPassword replaces an account's password.
func (s *Store) SetPassword(address, password string) error {
	hash, err := HashPassword(password)
	if err != nil {
		return err
	}
	if s.shared != nil {
		return s.apply(Change{Op: OpPassword, Address: address, Hash: hash, Changed: time.Now().UTC().Truncate(time.Second)})
	}
	return s.update(func(m map[string]*Account) error {
		a, ok := m[strings.ToLower(address)]
		if !ok {
			return fmt.Errorf("%w: %s", ErrNotFound, address)
		}
		a.PasswordHash = hash
		a.Changed = time.Now().UTC().Truncate(time.Second)
		return nil
	})
}

// Remove deletes an account (not its mail).
func (s *Store) Remove(address string) error {
	if s.shared != nil {
		return s.apply(Change{Op: OpRemove, Address: address})
	}
	return s.update(func(m map[string]*Account) error {
		key := strings.ToLower(address)
		if _, ok := m[key]; !ok {
			return fmt.Errorf("%w: %s", ErrNotFound, address)
		}
		delete(m, key)
		return nil
	})
}

// update applies fn to a fresh copy of the file's accounts and writes the
// result atomically.
func (s *Store) update(fn func(map[string]*Account) error) error {
	if err := s.Reload(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[string]*Account, len(s.accounts))
	for k, a := range s.accounts {
		c := *a
		c.Aliases = slices.Clone(a.Aliases)
		m[k] = &c
	}
	if err := fn(m); err != nil {
		return err
	}
	f := file{Version: 1, Accounts: make([]Account, 0, len(m))}
	for _, a := range m {
		f.Accounts = append(f.Accounts, *a)
	}
	slices.SortFunc(f.Accounts, func(a, b Account) int { return strings.Compare(a.Address, b.Address) })
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(s.path, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("writing accounts: %w", err)
	}
	st, err := os.Stat(s.path)
	if err != nil {
		return err
	}
	s.accounts, s.aliases, s.modTime, s.size = m, aliasIndex(m), st.ModTime(), st.Size()
	return nil
}

// writeFileAtomic replaces path with data: temporary file, fsync, rename,
// fsync of the directory, so a crash leaves the old or the new file.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Argon2id parameters: RFC 9106's second recommended option scaled to a
// 2-core server (19 MiB, 2 passes), the OWASP baseline.
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
	argonSaltLen = 16
)

// HashPassword returns a PHC string
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>.
func HashPassword(password string) (string, error) {
	if len(password) < MinPasswordLength {
		return "", fmt.Errorf("%w: want at least %d characters", ErrWeakPassword, MinPasswordLength)
	}
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads, enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

// argonHash is a parsed PHC argon2id string.
type argonHash struct {
	time, memory uint32
	threads      uint8
	salt, key    []byte
}

// parseHash parses a PHC argon2id string and bounds its parameters: a
// hash from a hand-edited file must not make one login take gigabytes.
func parseHash(hash string) (argonHash, error) {
	var h argonHash
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return h, errors.New("password hash is not in argon2id PHC format ($argon2id$v=19$m=...,t=...,p=...$salt$hash)")
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return h, fmt.Errorf("unsupported argon2 version %q", parts[2])
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &h.memory, &h.time, &h.threads); err != nil {
		return h, fmt.Errorf("bad argon2 parameters %q", parts[3])
	}
	if h.memory < 8 || h.memory > 1<<20 || h.time < 1 || h.time > 16 || h.threads < 1 || h.threads > 16 {
		return h, fmt.Errorf("argon2 parameters %q out of range (m 8..1048576 KiB, t 1..16, p 1..16)", parts[3])
	}
	enc := base64.RawStdEncoding
	var err error
	if h.salt, err = enc.DecodeString(parts[4]); err != nil || len(h.salt) < 8 || len(h.salt) > 64 {
		return h, errors.New("bad argon2 salt: want 8 to 64 bytes, unpadded base64")
	}
	if h.key, err = enc.DecodeString(parts[5]); err != nil || len(h.key) < 16 || len(h.key) > 64 {
		return h, errors.New("bad argon2 hash: want 16 to 64 bytes, unpadded base64")
	}
	return h, nil
}

// ValidHash reports whether hash is a PHC argon2id string this package
// can check, without hashing anything (for validating a config).
func ValidHash(hash string) error {
	_, err := parseHash(hash)
	return err
}

// CheckPassword reports whether password matches a PHC argon2id hash.
func CheckPassword(hash, password string) (bool, error) {
	h, err := parseHash(hash)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(password), h.salt, h.time, h.memory, h.threads, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(got, h.key) == 1, nil
}

// Copy puts every account of from into s with its password hash,
// aliases and quota (mailsetup db import and db export); an account s
// already has is left as it is and counted in skipped. Into the file it
// is one write; into a shared store one transaction per change, so an
// error leaves what was copied before it.
func (s *Store) Copy(from *Store) (copied, skipped int, err error) {
	all := from.List()
	for _, a := range all {
		if err := ValidHash(a.PasswordHash); err != nil {
			return 0, 0, fmt.Errorf("%s: %w", a.Address, err)
		}
	}
	if s.shared == nil {
		err = s.update(func(m map[string]*Account) error {
			copied, skipped = 0, 0
			for _, a := range all {
				key := strings.ToLower(a.Address)
				if _, ok := m[key]; ok {
					skipped++
					continue
				}
				c := a
				c.Aliases = slices.Clone(a.Aliases)
				m[key] = &c
				copied++
			}
			return nil
		})
		return copied, skipped, err
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
