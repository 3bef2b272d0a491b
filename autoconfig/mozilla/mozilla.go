package mozilla

import (
	"errors"

	"mailsetup/autoconfig"
)

// ContentType is the media type to serve the document with.
const ContentType = "application/xml; charset=utf-8"

// MaxDocumentBytes caps what Parse reads (1 MiB); larger input gives
// ErrTooLarge.
const MaxDocumentBytes = 1 << 20

var (
	// ErrTooLarge means the input is longer than MaxDocumentBytes. Parse
	// never looks at a truncated copy; the caller should report the
	// document as rejected (for a fetched document: the server sends
	// something that is not an autoconfig file) and not retry.
	ErrTooLarge = errors.New("autoconfig document larger than 1 MiB")

	// ErrMalformed means the input is not a usable clientConfig document:
	// broken XML, a DTD, a missing or repeated emailProvider, or a server
	// entry with a bad type, port or socketType. The wrapping error names
	// the element and value. The caller should show that message to
	// whoever publishes the document; retrying will not help.
	ErrMalformed = errors.New("malformed autoconfig document")
)

// The socketType values, case-sensitive as written.
const (
	socketSSL      = "SSL"
	socketSTARTTLS = "STARTTLS"
	socketPlain    = "plain"
)

// The placeholders clients substitute in username and hostname.
const (
	placeholderAddress = autoconfig.Placeholder // %EMAILADDRESS%
	placeholderDomain  = "%EMAILDOMAIN%"
)

// authCleartext is the authentication value for PLAIN / LOGIN / USER-PASS
// over the connection's TLS; authPlainAlias is its deprecated alias.
const (
	authCleartext  = "password-cleartext"
	authPlainAlias = "plain"
)

// Thunderbird's built-in POP3 defaults, applied when a pop3 server has no
// pop3 block (or the block lacks an element).
const (
	defaultLeaveOnServer = true
	defaultDaysOnServer  = 14
)
