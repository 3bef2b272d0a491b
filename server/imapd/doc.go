// Package imapd is the IMAP side of the embedded mail server: a session
// backend for github.com/emersion/go-imap/v2's imapserver on top of
// mailstore, plus the few pieces the library does not do itself.
//
// Implemented, with the RFC that defines each:
//
//   - IMAP4rev1 (RFC 3501): LOGIN, AUTHENTICATE PLAIN (RFC 4616),
//     LIST/LSUB, CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, STATUS,
//     SELECT, EXAMINE, FETCH (flags, dates, sizes, ENVELOPE,
//     BODYSTRUCTURE, BODY[...] sections with partial ranges and PEEK),
//     STORE, SEARCH, COPY, EXPUNGE, APPEND, CLOSE, NOOP, CHECK, LOGOUT;
//   - STARTTLS and LOGINDISABLED (RFC 3501 §6.2.1, RFC 8314 for implicit
//     TLS on 993): no login before TLS unless Options.AllowInsecureAuth;
//   - IDLE (RFC 2177), woken by mailstore's change notification, so a
//     message delivered by SMTP shows up at once as EXISTS;
//   - NAMESPACE (RFC 2342), ID (RFC 2971), UNSELECT (RFC 3691),
//     UIDPLUS (RFC 4315: UID EXPUNGE, APPENDUID, COPYUID), MOVE (RFC
//     6851), SPECIAL-USE (RFC 6154), CHILDREN (RFC 3348), ESEARCH (RFC
//     4731), BINARY (RFC 3516), STATUS=SIZE (RFC 8438), APPENDLIMIT
//     (RFC 7889), LITERAL- (RFC 7888), SASL-IR (RFC 4959), ENABLE (RFC
//     5161) and UTF8=ACCEPT (RFC 6855) as the library provides them;
//   - response codes of RFC 5530 (AUTHENTICATIONFAILED, UNAVAILABLE,
//     PRIVACYREQUIRED, NONEXISTENT, ALREADYEXISTS, TRYCREATE, ...).
//
// Logins go through auth.Authenticator like every other protocol: the
// username must be the full address, and the reply to a wrong form says
// what to type instead.
//
// Message sequence numbers are kept per session (RFC 3501 §2.3.1.2): each
// session holds its own view of the selected mailbox and learns changes
// from mailstore, whoever made them (another IMAP session, SMTP delivery,
// POP3, a Maildir agent), reporting expunges only where RFC 3501 §7.4.1
// allows them.
//
// go-imap's server has no hook for commands it does not know, and it
// performs STARTTLS inside its own connection object. So every connection
// passes through the stream filter of server/imapd/filter, which answers
// ID, performs STARTTLS, refuses LOGIN before TLS and edits the
// capability lists; the session tells it whether the client has logged
// in and receives the client's ID (clientid.go).
//
// It imports mailstore, auth, events and the filter; never another
// protocol server.
package imapd
