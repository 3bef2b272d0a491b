package mailstore

import "errors"

// Sentinel errors; test with errors.Is. Every error returned by this
// package that wraps one of them also says what was being done.
var (
	// ErrNoMailbox: the mailbox does not exist (or was deleted or renamed
	// meanwhile). IMAP: answer NO [NONEXISTENT] (RFC 5530); SMTP delivery
	// to a missing folder should fall back to INBOX.
	ErrNoMailbox = errors.New("mailstore: no such mailbox")
	// ErrMailboxExists: CreateMailbox or RenameMailbox found the name
	// taken. IMAP: answer NO [ALREADYEXISTS] (RFC 5530).
	ErrMailboxExists = errors.New("mailstore: mailbox already exists")
	// ErrBadName: a mailbox name, address or UIDL is not acceptable (see
	// the package documentation), or the operation is not allowed on
	// INBOX. Reject the command (IMAP NO [CANNOT]); retrying cannot help.
	ErrBadName = errors.New("mailstore: invalid name")
	// ErrBadFlag: a flag is neither a storable system flag nor a keyword
	// of IMAP atom characters. IMAP: answer BAD; nothing was changed.
	ErrBadFlag = errors.New("mailstore: invalid flag")
	// ErrNoMessage: the message was expunged (perhaps by another agent).
	// IMAP: leave it out of the response; POP3: -ERR no such message.
	ErrNoMessage = errors.New("mailstore: no such message")
	// ErrTooLarge: the message is larger than DeliverOptions.MaxSize.
	// Nothing was stored; fail permanently (SMTP 552 5.3.4, IMAP NO
	// [TOOBIG]) and do not retry.
	ErrTooLarge = errors.New("mailstore: message too large")
	// ErrOverQuota: storing the message would exceed
	// DeliverOptions.QuotaBytes. Nothing was stored; SMTP: 452 4.2.2
	// (the sender retries later), IMAP: NO [OVERQUOTA] (RFC 9208).
	ErrOverQuota = errors.New("mailstore: over quota")
	// ErrDuplicateUIDL: DeliverOptions.UIDL is already the UIDL of a
	// message in the mailbox. An importer should treat the message as
	// already imported and go on.
	ErrDuplicateUIDL = errors.New("mailstore: UIDL already in mailbox")
)
