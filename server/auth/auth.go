// Package auth checks the credentials every protocol receives (SMTP
// submission, IMAP, POP3 and the self-help check), in one place so that
// the username rule, the throttling and the events are the same for all:
//
//   - the username must be the full email address; the wrong forms
//     ("john", "john/johndoe.com", "john%johndoe.com", "johndoe.com\john")
//     are refused with a message that names the fix, the same message
//     whether or not such an account exists;
//   - failed logins are throttled per remote IP and per account, answered
//     at once with a temporary failure that says when to retry, never by
//     a silent hang;
//   - verified credentials are cached for a short time as a keyed hash
//     (HMAC-SHA-256 with a per-process random key; never the password),
//     so polling clients do not pay argon2id on every login; a password
//     change invalidates the entry.
//
// Imports: autoconfig (address parsing), accounts and events; no protocol
// server (they import it).
package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strings"
	"sync"
	"time"

	"mailsetup/autoconfig"
	"mailsetup/server/accounts"
	"mailsetup/server/events"
)

// Form is the shape of a username as typed; the events carry it.
type Form = events.Form

// The forms Classify tells apart.
const (
	FormFull          = events.FormFull
	FormLocalPart     = events.FormLocalPart
	FormSeparator     = events.FormSeparator
	FormUnknownDomain = events.FormUnknownDomain
	FormMalformed     = events.FormMalformed
)

// Classify tells the form of username and, where it can, the full
// address the user probably meant. isLocal reports whether a domain is
// served here.
func Classify(username string, isLocal func(domain string) bool) (Form, string) {
	u := strings.TrimSpace(username)
	if u == "" {
		return FormMalformed, ""
	}
	if strings.Contains(u, "@") {
		a, err := autoconfig.ParseAddress(u)
		if err != nil {
			return FormMalformed, ""
		}
		if !isLocal(a.Domain) {
			return FormUnknownDomain, ""
		}
		return FormFull, a.String()
	}
	// local SEP domain, or domain SEP local for the backslash (the
	// Windows DOMAIN\user habit).
	for _, sep := range []string{"/", "%", "+", "!", ":", "#"} {
		if l, d, ok := strings.Cut(u, sep); ok {
			if a, err := autoconfig.ParseAddress(l + "@" + d); err == nil && isLocal(a.Domain) {
				return FormSeparator, a.String()
			}
		}
	}
	if d, l, ok := strings.Cut(u, `\`); ok {
		if a, err := autoconfig.ParseAddress(l + "@" + d); err == nil && isLocal(a.Domain) {
			return FormSeparator, a.String()
		}
		return FormSeparator, ""
	}
	if strings.ContainsAny(u, `/%`) {
		return FormSeparator, ""
	}
	return FormLocalPart, ""
}

// Sentinels and error types callers map to their protocol's replies.
var (
	// ErrBadCredentials: wrong password or no such account (the two are
	// never told apart). Answer with an authentication failure.
	ErrBadCredentials = errors.New("authentication failed: wrong username or password")
)

// FormError: the username is not a full address. Its message is the fix
// to show the user; the same whether or not an account exists.
type FormError struct {
	Form Form
	// Suggest is the full address the user probably meant, if known.
	Suggest string
	// Username is what was typed.
	Username string
}

func (e *FormError) Error() string {
	switch {
	case e.Form == FormUnknownDomain:
		return fmt.Sprintf("the username %q is not an address of a domain served here: use your full email address of this provider as the username", e.Username)
	case e.Suggest != "":
		return fmt.Sprintf("use your full email address as the username: %s, not %q", e.Suggest, e.Username)
	default:
		return fmt.Sprintf("use your full email address (like name@example.com) as the username, not %q", e.Username)
	}
}

// ThrottledError: too many failures; try again after RetryAfter. Answer
// with a temporary failure.
type ThrottledError struct {
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("too many failed logins: try again in %s", WaitWords(e.RetryAfter))
}

// WaitWords says a wait for people, rounded up: "40 seconds", "1 minute",
// "12 minutes". Every "try again in" of the servers and the pages uses it.
func WaitWords(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%d seconds", int(d.Seconds())+1)
	}
	if m := int(math.Ceil(d.Minutes())); m > 1 {
		return fmt.Sprintf("%d minutes", m)
	}
	return "1 minute"
}

// Attempt is one login.
type Attempt struct {
	Proto    events.Proto
	Remote   netip.Addr
	TLS      bool
	Username string
	Password string
	// Client is the client's name when the protocol tells it (the EHLO
	// name on submission); it goes into the event.
	Client string
}

// Options configure an Authenticator.
type Options struct {
	Accounts *accounts.Store
	// IsLocal reports whether a domain is served here. Required.
	IsLocal func(domain string) bool
	Events  events.Sink
	// CacheTTL is how long verified credentials are remembered. Default
	// 15 minutes (longer than common POP3 poll intervals). Negative
	// disables the cache.
	CacheTTL time.Duration
	// Throttle limits; zero values take the defaults.
	Throttle ThrottleOptions
	Now      func() time.Time
}

// Authenticator checks credentials.
type Authenticator struct {
	opts     Options
	throttle *Throttle
	key      []byte

	mu    sync.Mutex
	cache map[[32]byte]cacheEntry
}

type cacheEntry struct {
	address string
	hash    string // the account's password hash when verified
	expires time.Time
}

// maxCache bounds the credential cache.
const maxCache = 100_000

// New returns an Authenticator.
func New(opts Options) *Authenticator {
	if opts.Events == nil {
		opts.Events = events.Discard{}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.CacheTTL == 0 {
		opts.CacheTTL = 15 * time.Minute
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return &Authenticator{opts: opts, throttle: NewThrottle(opts.Throttle, opts.Now), key: key, cache: map[[32]byte]cacheEntry{}}
}

// Throttle returns the shared throttle (the web self-check uses it too).
func (a *Authenticator) Throttle() *Throttle { return a.throttle }

// Authenticate checks an attempt and returns the account's address. The
// error is a *FormError, a *ThrottledError or ErrBadCredentials (or an
// internal error, to be logged and answered as a temporary failure).
func (a *Authenticator) Authenticate(ctx context.Context, at Attempt) (string, error) {
	ev := events.Event{Time: a.opts.Now(), Kind: events.Auth, Proto: at.Proto, Remote: at.Remote, TLS: at.TLS, Username: at.Username, Client: at.Client}
	form, address := Classify(at.Username, a.opts.IsLocal)
	ev.Form, ev.Account = form, address
	if form != FormFull {
		// Refused before any password check: a wrong-form username can
		// never log in, so it is no guessing oracle, and the client is
		// told the fix every time rather than throttled.
		ev.Result = events.ResultUsernameForm
		a.opts.Events.Emit(ev)
		return "", &FormError{Form: form, Suggest: address, Username: at.Username}
	}
	wait := a.throttle.Blocked(at.Remote, address)
	if wait == 0 && !a.cached(address, at.Password) {
		// A password check to come: first what other replicas counted
		// (a lockout through one holds on all at once). A cached login
		// costs no database round trip.
		a.throttle.Sync(ctx)
		wait = a.throttle.Blocked(at.Remote, address)
	}
	if wait > 0 {
		ev.Result = events.ResultThrottled
		a.opts.Events.Emit(ev)
		return "", &ThrottledError{RetryAfter: wait}
	}
	ok, err := a.verify(address, at.Password)
	if err != nil {
		return "", err
	}
	if !ok {
		a.throttle.Fail(at.Remote, address)
		ev.Result = events.ResultBadPassword
		a.opts.Events.Emit(ev)
		return "", ErrBadCredentials
	}
	// A success resets no count (an attacker holding one valid account
	// could otherwise clear his address's); it makes the address known
	// to the account, so the account's limits no longer hold it off.
	a.throttle.Succeed(at.Remote, address)
	ev.Result = events.ResultOK
	a.opts.Events.Emit(ev)
	return address, nil
}

func (a *Authenticator) cacheKey(address, password string) [32]byte {
	m := hmac.New(sha256.New, a.key)
	m.Write([]byte(strings.ToLower(address)))
	m.Write([]byte{0})
	m.Write([]byte(password))
	var k [32]byte
	copy(k[:], m.Sum(nil))
	return k
}

// cached reports whether the credentials are in the cache, unexpired,
// for the account's current password hash.
func (a *Authenticator) cached(address, password string) bool {
	if a.opts.CacheTTL <= 0 {
		return false
	}
	acct, ok := a.opts.Accounts.Get(address)
	if !ok {
		return false
	}
	k := a.cacheKey(acct.Address, password)
	a.mu.Lock()
	e, hit := a.cache[k]
	a.mu.Unlock()
	return hit && e.hash == acct.PasswordHash && a.opts.Now().Before(e.expires)
}

// verify checks the password against the account, through the cache.
func (a *Authenticator) verify(address, password string) (bool, error) {
	if err := a.opts.Accounts.Reload(); err != nil {
		return false, err
	}
	acct, ok, err := a.opts.Accounts.Lookup(address)
	if err != nil {
		// The account could not be read (the database is down): a
		// temporary failure, not a wrong password.
		return false, err
	}
	if !ok {
		// Spend the same time as a real check so timing does not tell
		// whether the account exists.
		_, _ = accounts.CheckPassword(dummyHash, password)
		return false, nil
	}
	now := a.opts.Now()
	var k [32]byte
	if a.opts.CacheTTL > 0 {
		k = a.cacheKey(acct.Address, password)
		a.mu.Lock()
		e, hit := a.cache[k]
		a.mu.Unlock()
		if hit && e.hash == acct.PasswordHash && now.Before(e.expires) {
			return true, nil
		}
	}
	ok, err = accounts.CheckPassword(acct.PasswordHash, password)
	if err != nil || !ok {
		return false, err
	}
	if a.opts.CacheTTL > 0 {
		a.mu.Lock()
		if len(a.cache) >= maxCache {
			for old, e := range a.cache { // drop expired, else any one
				if now.After(e.expires) || len(a.cache) >= maxCache {
					delete(a.cache, old)
				}
				if len(a.cache) < maxCache*9/10 {
					break
				}
			}
		}
		a.cache[k] = cacheEntry{address: acct.Address, hash: acct.PasswordHash, expires: now.Add(a.opts.CacheTTL)}
		a.mu.Unlock()
	}
	return true, nil
}

// dummyHash is checked for unknown accounts (password "x", same cost).
const dummyHash = "$argon2id$v=19$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$6ZxY1Hj0c8hYd1x3fN0k2m5q9cT8v2wB4nE7rA1sD0o"
