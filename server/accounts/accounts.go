// Package accounts stores mail accounts: the address, an argon2id password
// hash (never the password), aliases and a quota.
//
// In files (Open): a snapshot (accounts.json, the format of every
// version) and beside it an append-only journal (accounts.journal) of
// the changes made since, one fsynced JSON line each, replayed on open
// (journal.go). A change appends one line, never rewrites the
// snapshot; when the journal has grown to half the snapshot the
// snapshot is written again (compaction). Another process (the
// `mailsetup user` command) may change the store while the server
// runs; Reload picks up the new lines only.
//
// With a database (OpenShared) the accounts live there; the Store looks
// each one up when it is first needed, keeps a bounded cache of them
// for the hot paths (shared.go), writes every change through, and is
// told of other processes' changes by Refresh.
//
// Imports: autoconfig (address parsing), the password-hash library and
// the standard library.
package accounts

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"
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
