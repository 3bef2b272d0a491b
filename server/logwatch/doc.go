// Package logwatch reads what an existing Dovecot and Postfix log and
// turns it into the events the embedded mail server emits
// (events.Event), so that the observations, their findings and the
// staff console work for an ISP that keeps its mail servers.
//
// A Parser reads one program's lines: Dovecot's login processes (Login,
// "auth failed" disconnects, the IMAP ID), its auth_verbose reasons, the
// POP3 logout line (pop3_logout_format with %{uidl_change}) and the
// IMAP ID of a logged-in client; Postfix smtpd's SASL failures and
// successes and its NOQUEUE rejects. A Source brings the lines: a log
// file followed across rotation (File) or a syslog listener (Syslog,
// RFC 3164 and RFC 5424 over UDP, TCP or a unix socket). Every line is
// counted by its Result; bad input (unknown formats, binary, lines over
// MaxLine, clock jumps) is counted and skipped, never fatal, and memory
// is bounded (the sessions a parser remembers, the line length, the
// syslog connections).
//
// Imports: the standard library, server/events (what goes out) and
// server/auth (the username forms); the composition root (server) wires
// the sources to the event bus.
package logwatch
