package pop3d

import (
	"errors"
	"net"
	"strings"
)

// Response codes (RFC 2449 §8, RFC 3206) a Backend may put in Error.Code.
const (
	// CodeAuth: the credentials are the problem (wrong password, unknown
	// user, wrong username form, policy). RFC 3206 §4.
	CodeAuth = "AUTH"
	// CodeSysTemp: a temporary system problem; the client should retry
	// later. RFC 3206 §4.
	CodeSysTemp = "SYS/TEMP"
	// CodeSysPerm: a permanent system problem; retrying will not help.
	// RFC 3206 §4.
	CodeSysPerm = "SYS/PERM"
	// CodeInUse: the credentials were right but the maildrop is locked by
	// another session. RFC 2449 §8.1.1.
	CodeInUse = "IN-USE"
	// CodeLoginDelay: the user logged in too recently (LOGIN-DELAY).
	// RFC 2449 §8.1.2.
	CodeLoginDelay = "LOGIN-DELAY"
)

// Error is a POP3 "-ERR" reply chosen by a Backend or Session. Code and
// Text go on the wire as "-ERR [Code] Text"; Err is the internal cause,
// logged and never sent.
type Error struct {
	// Code is an RFC 2449/3206 response code without brackets, or "".
	Code string
	// Text is the user-facing reply text. It must not contain internal
	// detail; control characters are replaced and it is cut to fit the
	// 512-octet response line of RFC 2449 §4.
	Text string
	// Err is the internal cause, logged, never sent.
	Err error
}

// ErrAuthFailed is the reply for wrong credentials: "-ERR [AUTH]
// authentication failed". Backends that can tell the user what to change
// (e.g. "use your full email address as the username") should return
// their own *Error with Code CodeAuth instead.
var ErrAuthFailed = &Error{Code: CodeAuth, Text: "authentication failed"}

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("pop3d: server closed")

// Error implements error: "pop3d: [CODE] text: cause".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("pop3d: ")
	if e.Code != "" {
		b.WriteString("[" + e.Code + "] ")
	}
	b.WriteString(e.Text)
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the internal cause.
func (e *Error) Unwrap() error { return e.Err }

// maxResponseLine is the longest response line, CRLF included (RFC 2449
// §4: responses may be up to 512 octets).
const maxResponseLine = 512

// errLine renders "-ERR [code] text" without CRLF, sanitized and cut to
// fit maxResponseLine.
func errLine(code, text string) string {
	var b strings.Builder
	b.WriteString("-ERR")
	code = sanitize(code, true)
	if code != "" {
		b.WriteString(" [")
		b.WriteString(code)
		b.WriteString("]")
	}
	text = sanitize(text, false)
	if text != "" {
		b.WriteString(" ")
		b.WriteString(text)
	}
	s := b.String()
	if len(s) > maxResponseLine-2 {
		s = s[:maxResponseLine-2]
	}
	return s
}

// sanitize replaces what cannot appear in a response line: control
// characters (CR and LF would end the line early) and, in a response
// code, spaces and brackets.
func sanitize(s string, code bool) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f || code && (c == ' ' || c == '[' || c == ']') {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c == 0x7f || code && (c == ' ' || c == '[' || c == ']') {
			b[i] = '_'
			if !code {
				b[i] = ' '
			}
		}
	}
	return string(b)
}

// Reject is the refusal for a connection limit in front of the server:
// "-ERR [SYS/TEMP] reason" instead of the greeting (RFC 3206 §4).
func Reject(c net.Conn, reason string) {
	_, _ = c.Write([]byte(errLine(CodeSysTemp, reason+", try again later") + "\r\n"))
}
