// Package pop3d is a POP3 server protocol library. It knows nothing about
// storage: a Backend authenticates users and opens their maildrop as a
// Session (the shape of go-smtp's and go-imap's server APIs), and the
// server runs the protocol, its limits and its error replies.
//
// Implemented:
//
//   - RFC 1939, POP3: USER, PASS, STAT, LIST [msg], RETR, DELE, NOOP,
//     RSET, QUIT, TOP msg n, UIDL [msg]; the AUTHORIZATION, TRANSACTION and
//     UPDATE states, "-ERR" for every command outside the states it is
//     allowed in; DELE only marks, and deletions are committed only in
//     UPDATE, after QUIT; deleted messages are invisible to STAT, LIST,
//     UIDL, RETR, TOP and DELE ("-ERR message already deleted"); the
//     inactivity timer of at least 10 minutes (§3), after which the
//     connection is closed without a reply and without UPDATE. APOP is
//     not implemented (the greeting has no timestamp).
//   - RFC 2449, the POP3 extension mechanism: CAPA, with TOP, UIDL, USER,
//     SASL PLAIN, RESP-CODES, PIPELINING, EXPIRE (NEVER or days),
//     LOGIN-DELAY (when set) and IMPLEMENTATION; response codes IN-USE and
//     LOGIN-DELAY. CAPA reflects the state: USER and SASL only where a
//     login is possible (after TLS unless Options.AllowInsecureAuth), STLS
//     only before TLS, no login capabilities in TRANSACTION. EXPIRE may
//     differ per user (§6.7): before login CAPA shows Options.Expire,
//     e.g. "7 USER", the smallest value of any user; after login the
//     user's own value from the optional SessionExpire interface.
//   - RFC 2595, STLS: upgrade to TLS in AUTHORIZATION, refused when TLS is
//     active or when input follows the command in the same packet
//     (plaintext injection).
//   - RFC 3206, response codes SYS/TEMP, SYS/PERM and AUTH, and the
//     AUTH-RESP-CODE capability: the Backend chooses the code with *Error.
//   - RFC 5034, the POP3 SASL AUTH command, with the PLAIN mechanism of
//     RFC 4616: the initial response ("=" for an empty one) or the "+ "
//     continuation, "*" to cancel, and base64 errors answered "-ERR".
//
// Message content is streamed from Session.Open through a fixed buffer:
// never a whole message in memory. On the way lines starting with "." are
// dot-stuffed, bare LF becomes CRLF, a missing final CRLF is added, and
// the response ends with ".\r\n". A read error in the middle of a message
// closes the connection without the terminating line, so that a client
// never mistakes a truncated message for a whole one.
//
// Pipelining: commands are read from a buffer and the replies are flushed
// only when no complete command is waiting, so a batch of commands is
// answered in as few writes as possible.
//
// Limits: command lines of Options.MaxLineLength octets (default 512; a
// longer line gets "-ERR line too long" and the connection is closed), a
// read deadline per command (IdleTimeout) and a write deadline per write
// (WriteTimeout), Options.MaxErrors protocol errors, Options.MaxSessions
// and Options.MaxPerIP concurrent connections (beyond them:
// "-ERR [SYS/TEMP] too many connections"). An unknown command before login
// ends the connection, as it most likely is another protocol (a
// cross-protocol attack). A panic while serving a connection is recovered,
// answered "-ERR [SYS/TEMP] internal error", logged with its stack, and
// the connection closed. Throttling logins is the Backend's job; passwords
// are never logged (the debug log names commands, never arguments).
//
// Memory per session. Per message in the maildrop the server keeps 8
// bytes (a 4-byte size, sizes of 4 GiB and more in a side map, and a
// 4-byte offset), the UIDL's bytes in one shared string, and 2 bits
// (deleted, retrieved): 32.25 bytes per message with 24-byte UIDLs, about
// 320 KB for a maildrop of 10,000 messages (TestMaildropFootprint pins
// the figure; BenchmarkSessionMemory10k measures the whole session at
// about 34 bytes per message). Per connection, whatever the maildrop: the
// command buffer (MaxLineLength bytes), a 4 KiB output buffer, the
// goroutine's stack (8 KiB to start) and a few hundred bytes of state;
// crypto/tls adds its own buffers on TLS connections. RETR and TOP take a
// 16 KiB read buffer from a per-server pool for the time of the command.
// Session.Messages' slice is not kept: the backend may reuse it.
//
// Shutdown is two-phased (see Server.Shutdown) and never commits the
// deletions of a session that did not QUIT. Options.Events receives one
// SessionEvent per session, for the observations of client behaviour.
//
// Imports: the standard library only; the mail store is behind the
// Backend and Session interfaces (server/mailbackend implements them).
package pop3d
