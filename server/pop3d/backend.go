package pop3d

import (
	"context"
	"io"
	"net"
)

// Backend authenticates users and opens their maildrop. It is called from
// many connection goroutines at once and must be safe for concurrent use.
type Backend interface {
	// Login checks credentials (from USER/PASS or AUTH PLAIN) and locks
	// the maildrop. Return an *Error to choose the reply (e.g. Code
	// CodeAuth with a text naming the fix, CodeInUse, CodeSysTemp,
	// CodeLoginDelay); any other error is logged and answered
	// "-ERR [SYS/TEMP] internal error". With an error, the returned
	// Session must be nil (it is ignored).
	//
	// The server advertises AUTH-RESP-CODE (RFC 3206), which promises
	// "[AUTH]" on every failure caused by the credentials: return
	// ErrAuthFailed, or an *Error with Code CodeAuth, for those.
	//
	// Throttling (failed-login limits, LOGIN-DELAY enforcement) is the
	// backend's job: refuse with CodeSysTemp or CodeLoginDelay. ctx is
	// cancelled when the connection ends or the server is forced down.
	Login(ctx context.Context, c ConnInfo, username, password string) (Session, error)
}

// BackendFunc adapts a function to the Backend interface.
type BackendFunc func(ctx context.Context, c ConnInfo, username, password string) (Session, error)

// Login implements Backend.
func (f BackendFunc) Login(ctx context.Context, c ConnInfo, username, password string) (Session, error) {
	return f(ctx, c, username, password)
}

var _ Backend = BackendFunc(nil)

// ConnInfo describes the connection a login arrives on.
type ConnInfo struct {
	RemoteAddr net.Addr
	LocalAddr  net.Addr
	// TLS is true on an implicit-TLS listener and after STLS.
	TLS bool
	// ID is the connection id used in the server's logs and events.
	ID string
}

// Session is one authenticated maildrop, from login to QUIT or drop. Its
// methods are called from the connection's goroutine only, one at a time.
type Session interface {
	// Messages returns the maildrop at login, in order (message number n
	// is index n-1). Called once, right after Login; the server keeps
	// only what it needs (size, UIDL, deleted bit) per message, so the
	// returned slice may be reused by the backend afterwards.
	//
	// Size is the message's size in octets with CRLF line endings, before
	// dot-stuffing (RFC 1939 §5, the "exact size"). UIDL is 1 to 70
	// characters in the range 0x21-0x7E (RFC 1939 §7), unique within the
	// maildrop and stable for the message's lifetime; an invalid UIDL
	// fails the login with "-ERR [SYS/TEMP] internal error".
	Messages() ([]MessageInfo, error)
	// Open returns a message's content (CRLF or bare LF lines; the
	// server normalises and dot-stuffs while streaming). n is 0-based.
	// An error before any content was read is answered "-ERR" (an *Error
	// chooses the code); a read error in the middle of a message closes
	// the connection without the terminating ".", so that the client
	// never takes a truncated message for a whole one.
	Open(n int) (io.ReadCloser, error)
	// Retrieved is told after a RETR (or a TOP that sent the whole body)
	// sent message n (0-based) completely: the last byte and the
	// terminating line were handed to the operating system. For expiry
	// and events.
	Retrieved(n int)
	// Commit permanently removes the messages marked with DELE (0-based,
	// ascending; may be empty). Called only in the UPDATE state, after
	// QUIT, never after a dropped connection, timeout or error. An error
	// is answered "-ERR [SYS/TEMP] some deleted messages not removed" (an
	// *Error chooses the code and text).
	Commit(deleted []int) error
	// Close ends the session and releases the maildrop lock; always
	// called exactly once, after Commit if there was one.
	Close() error
}

// SessionExpire is implemented by a Session whose expiry policy (RFC 2449
// §6.7) depends on the user, e.g. on the user's domain. After login CAPA
// advertises "EXPIRE " + Expire() instead of Options.Expire.
type SessionExpire interface {
	Session
	// Expire returns "NEVER" (the server never deletes mail on its own)
	// or a number of days ("0", "7"): the minimum time the server keeps
	// a message after a client retrieved it. No " USER" suffix: after
	// login the value is exact. Called once, right after Messages; an
	// invalid value fails the login with "-ERR [SYS/TEMP] internal
	// error", as a backend bug.
	Expire() string
}

// MessageInfo is what the server keeps of one message.
type MessageInfo struct {
	Size int64
	UIDL string
}
