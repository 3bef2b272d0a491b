package pop3d

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"
)

// Defaults and fixed limits. The defaults apply to Options fields left
// zero.
const (
	// DefaultMaxSessions is the default limit of concurrent connections.
	DefaultMaxSessions = 500
	// DefaultMaxPerIP is the default limit of concurrent connections from
	// one IP address.
	DefaultMaxPerIP = 20
	// DefaultIdleTimeout is the default time a client may take to send
	// its next command: RFC 1939 §3 requires an inactivity timer of at
	// least 10 minutes.
	DefaultIdleTimeout = 10 * time.Minute
	// DefaultWriteTimeout is the default time one write to the client
	// (at most one buffer, a few KiB) may take.
	DefaultWriteTimeout = time.Minute
	// DefaultMaxLineLength is the default longest command line, CRLF
	// included. RFC 2449 §4 allows 255 octets per command; twice that
	// leaves room for long user names and AUTH PLAIN responses.
	DefaultMaxLineLength = 512
	// DefaultMaxErrors is the default number of protocol errors after
	// which the connection is closed (go-smtp uses 3; POP3 clients probe
	// more, e.g. CAPA, STLS, AUTH mechanisms).
	DefaultMaxErrors = 10
	// DefaultImplementation is the default CAPA IMPLEMENTATION value.
	DefaultImplementation = "mailsetup"

	// minLineLength is the smallest accepted MaxLineLength: the longest
	// fixed command ("TOP 4294967295 4294967295" is 26 octets) plus
	// margin, and bufio's minimum buffer.
	minLineLength = 64
	// handshakeTimeout bounds a TLS handshake (implicit TLS or after
	// STLS); IdleTimeout caps it when shorter.
	handshakeTimeout = 30 * time.Second
	// shutdownGrace is how long a session that was busy when Shutdown
	// started waits for its next command, to answer it "-ERR [SYS/TEMP]
	// server shutting down" instead of closing on the client.
	shutdownGrace = time.Second
	// lingerTimeout and lingerMaxBytes bound how long and how much a
	// closing connection reads and drops, see conn.lingerClose.
	lingerTimeout  = 2 * time.Second
	lingerMaxBytes = 256 << 10
	// rejectTimeout bounds the write of "too many connections" to a
	// refused client.
	rejectTimeout = 5 * time.Second
	// writeBufferSize is the per-connection output buffer; message
	// bodies are streamed through it.
	writeBufferSize = 4096
	// copyBufferSize is the buffer a message is read into while being
	// streamed; pooled per server, taken only during RETR and TOP.
	copyBufferSize = 16 * 1024
	// Accept backoff for temporary errors, as net/http does.
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
)

// Options configures a Server. The zero value is usable: every field has a
// default.
type Options struct {
	// TLSConfig enables STLS (RFC 2595) on plain listeners. It needs at
	// least one certificate. Nil: STLS is neither advertised nor
	// accepted.
	TLSConfig *tls.Config
	// ImplicitTLS says the listener is already TLS (port 995, e.g. from
	// tls.NewListener): STLS is not offered and every connection counts
	// as TLS. A *tls.Conn from the listener is handshaken before the
	// greeting, bounded by a 30 s timeout.
	ImplicitTLS bool
	// AllowInsecureAuth allows USER/PASS and AUTH without TLS. Otherwise
	// they are refused with "-ERR [AUTH] ... use STLS" and are not
	// advertised in CAPA before TLS. Passwords then cross the network in
	// the clear: set it only for loopback listeners.
	AllowInsecureAuth bool
	// Expire is the CAPA EXPIRE value (RFC 2449 §6.7): "NEVER" (default)
	// or a number of days, e.g. "7", the minimum time the server keeps a
	// message after it was retrieved, optionally followed by " USER"
	// ("NEVER USER", "7 USER") when the value differs per user: it is
	// then the smallest value of any user, and after login CAPA shows the
	// user's own value from SessionExpire (or, for a Session without it,
	// this value without " USER"). The server only advertises it; the
	// backend expires mail. NewServer panics on any other value (see
	// ValidExpire).
	Expire string
	// LoginDelay is the CAPA LOGIN-DELAY value in seconds (RFC 2449
	// §6.8); 0 does not advertise it. The backend enforces it by refusing
	// Login with CodeLoginDelay.
	LoginDelay int
	// Implementation is the CAPA IMPLEMENTATION value; default
	// "mailsetup".
	Implementation string
	// MaxSessions limits concurrent connections (default 500; negative:
	// no limit). Beyond it a new connection gets
	// "-ERR [SYS/TEMP] too many connections" instead of the greeting and
	// is closed.
	MaxSessions int
	// MaxPerIP limits concurrent connections per remote IP address
	// (default 20; negative: no limit), answered as MaxSessions.
	MaxPerIP int
	// IdleTimeout is how long the server waits for a command (or an AUTH
	// continuation line); then it closes the connection without a reply
	// and without entering UPDATE (RFC 1939 §3). Default 10 minutes, the
	// RFC's minimum; shorter values break that rule.
	IdleTimeout time.Duration
	// WriteTimeout bounds every write to the client (default 1 minute).
	// A large message is written in buffer-sized pieces, each with its
	// own deadline, so this does not limit the size of a message.
	WriteTimeout time.Duration
	// MaxLineLength is the longest accepted command line, CRLF included
	// (default 512, at least 64). RFC 2449 §4 allows 255 octets per
	// command; a longer line is answered "-ERR line too long" and the
	// connection is closed.
	MaxLineLength int
	// MaxErrors is the number of protocol errors (unknown or misplaced
	// commands, bad arguments, failed logins) after which the next
	// command is answered "-ERR too many errors" and the connection
	// closed. Default 10.
	MaxErrors int
	// Logger receives one Info line per session end, Warn lines for
	// refused connections and backend failures, and one Debug line per
	// command (its name only, never arguments). Default: discard.
	Logger *slog.Logger
	// Events, when set, is called once at the end of every session that
	// got past the connection limits, on the connection's goroutine after
	// Session.Close. The callee must not block (hand the event to a
	// bounded queue); a panic in it is recovered and logged.
	Events func(SessionEvent)
	// LoggedIn, when set, is told the client's address after each
	// successful login (a connection limit in front of the server then
	// counts the connection as a customer's). It must not block.
	LoggedIn func(remote net.Addr)
}

// SessionEvent summarises one session for Options.Events.
type SessionEvent struct {
	ConnID string
	Remote net.Addr
	// User is the user name of the successful login or, without one, of
	// the last attempt ("" if none). Never the password.
	User string
	// Authenticated is true if a login succeeded.
	Authenticated bool
	// AuthFailures counts refused logins (any reason).
	AuthFailures int
	TLS          bool
	// Listed counts LIST and UIDL commands answered +OK (with or without
	// a message number).
	Listed int
	// Retrieved is len(RetrievedIDs).
	Retrieved int
	// Deleted counts the messages marked with DELE at the session's end.
	Deleted int
	// RetrievedIDs are the 0-based numbers of the messages sent
	// completely by RETR (or a TOP with the whole body), ascending, each
	// once.
	RetrievedIDs []int
	// Committed is true if Commit succeeded (after QUIT).
	Committed bool
	// Messages and Bytes are the maildrop at login: the number of
	// messages and their total size in octets.
	Messages int
	Bytes    int64
	// BytesSent counts the octets written to the client.
	BytesSent  int64
	Start, End time.Time
	// EndReason is quit, timeout, drop, error or shutdown.
	EndReason string
}

// Session end reasons (SessionEvent.EndReason).
const (
	EndQuit     = "quit"     // the client sent QUIT
	EndTimeout  = "timeout"  // IdleTimeout or WriteTimeout expired
	EndDrop     = "drop"     // the client closed the connection or it broke
	EndError    = "error"    // protocol errors, over-long line, TLS failure, internal error
	EndShutdown = "shutdown" // Shutdown or Close
)

// ExpireNever is the EXPIRE value of a server that never deletes mail on
// its own, and ExpireUserSuffix marks a pre-login value that differs per
// user (RFC 2449 §6.7).
const (
	ExpireNever      = "NEVER"
	ExpireUserSuffix = " USER"
)

// ValidExpire checks a CAPA EXPIRE value: "NEVER" or a number of days (1
// to 9 decimal digits), followed by " USER" only if perUser allows it.
// The error names the bad value.
func ValidExpire(v string, perUser bool) error {
	base, user := strings.CutSuffix(v, ExpireUserSuffix)
	if user && !perUser {
		return fmt.Errorf("EXPIRE value %q: the %q suffix is only for the value before login", v, ExpireUserSuffix)
	}
	if base == ExpireNever {
		return nil
	}
	if n, ok := parseNum([]byte(base)); ok && len(base) <= 9 && n >= 0 {
		return nil
	}
	if perUser {
		return fmt.Errorf("EXPIRE value %q: want NEVER or a number of days, optionally followed by %q", v, ExpireUserSuffix)
	}
	return fmt.Errorf("EXPIRE value %q: want NEVER or a number of days", v)
}
