// Package migrate takes mailboxes over from an old mail server with every
// POP3 UIDL kept, so that POP3 clients that leave mail on the server do
// not download it again after the cutover (the incident behind this
// product), and compares the old server's UIDLs with ours before and
// after the cutover.
//
// Sources: a live POP3 server (ImportPOP3: CAPA, login, UIDL, LIST, RETR,
// QUIT; never DELE), a Maildir on disk from Dovecot, qmail/vpopmail or
// Courier with its Maildir++ folders (ImportMaildir: the UIDL the old
// server served, see maildir.go) and mbox files (ImportMbox: the X-UIDL
// header). Each message goes into the account's INBOX (a folder's into
// the same-named mailbox) through
// mailstore.User.Deliver with DeliverOptions.UIDL, durable before it
// counts; a UIDL already in the INBOX is skipped, so an import that was
// stopped at any point and is run again ends with each message exactly
// once. VerifyPOP3 compares without changing anything.
//
// The caller holds the mail storage (one process owns it; see package
// server's Import) and gives the accounts: an account that does not exist
// here is reported, never created.
package migrate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"mailsetup/server/accounts"
	"mailsetup/server/mailstore"
)

// Target is where mail is imported to.
type Target struct {
	Mail     *mailstore.Store
	Accounts *accounts.Store
	// MaxMessageBytes > 0 refuses larger messages (mail.max_message_bytes).
	MaxMessageBytes int64
}

// Options tune an import.
type Options struct {
	// Concurrency is how many accounts are imported at once (default 4).
	Concurrency int
}

// Report is what an import did, per account.
type Report struct {
	Source   string          `json:"source"`
	Accounts []AccountReport `json:"accounts"`
	Totals   Totals          `json:"totals"`
}

// Totals sum a report's accounts.
type Totals struct {
	Accounts int   `json:"accounts"`
	Failed   int   `json:"failed"` // accounts with an Error
	Found    int   `json:"found"`
	Imported int   `json:"imported"`
	Skipped  int   `json:"skipped"`
	Refused  int   `json:"refused"`
	Bytes    int64 `json:"bytes"`
}

// AccountReport is one account's import.
type AccountReport struct {
	Address string `json:"address"`
	// Found is how many messages the source has.
	Found int `json:"found"`
	// Imported were stored now, Skipped were here already (same UIDL).
	Imported int `json:"imported"`
	Skipped  int `json:"skipped"`
	// Refused were not stored, each with the reason.
	Refused []Refusal `json:"refused,omitempty"`
	// Bytes is the size of the messages imported now.
	Bytes int64 `json:"bytes"`
	// Notes say what the import of this account means for its clients
	// beyond the counts (mbox messages without X-UIDL).
	Notes []string `json:"notes,omitempty"`
	// Error is why the account's import stopped (or never started): a
	// missing account, an unreachable source, a refused login. Messages
	// counted as imported before it are stored.
	Error string `json:"error,omitempty"`
}

// Refusal is a message that was not imported.
type Refusal struct {
	// Message is the message number on the POP3 source, or the file name.
	Message string `json:"message"`
	UIDL    string `json:"uidl,omitempty"`
	Reason  string `json:"reason"`
}

func (r *AccountReport) refuse(msg, uidl, reason string) {
	r.Refused = append(r.Refused, Refusal{Message: msg, UIDL: uidl, Reason: reason})
}

// count counts what inbox.store did with the message msg: skipped,
// refused for refusal, or stored with size bytes.
func (r *AccountReport) count(msg, uidl string, size int64, skipped bool, refusal string) {
	switch {
	case skipped:
		r.Skipped++
	case refusal != "":
		r.refuse(msg, uidl, refusal)
	default:
		r.Imported++
		r.Bytes += size
	}
}

// OK reports whether every account was imported whole.
func (r Report) OK() bool { return r.Totals.Failed == 0 && r.Totals.Refused == 0 }

func (r *Report) sum() {
	r.Totals = Totals{Accounts: len(r.Accounts)}
	for _, a := range r.Accounts {
		if a.Error != "" {
			r.Totals.Failed++
		}
		r.Totals.Found += a.Found
		r.Totals.Imported += a.Imported
		r.Totals.Skipped += a.Skipped
		r.Totals.Refused += len(a.Refused)
		r.Totals.Bytes += a.Bytes
	}
}

// importEach imports each account through fn, at most opts.Concurrency
// at once, into a report of the source.
func importEach[A any](ctx context.Context, source string, accts []A, opts Options, fn func(A) AccountReport) Report {
	rep := Report{Source: source}
	rep.Accounts = forEach(ctx, len(accts), opts.Concurrency, func(i int) AccountReport { return fn(accts[i]) })
	rep.sum()
	return rep
}

// forEach runs fn for n accounts, at most concurrency at once, and
// returns their reports in order.
func forEach(ctx context.Context, n, concurrency int, fn func(i int) AccountReport) []AccountReport {
	if concurrency <= 0 {
		concurrency = 4
	}
	out := make([]AccountReport, n)
	sem := make(chan struct{}, concurrency)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			out[i] = fn(i)
			if out[i].Error == "" && ctx.Err() != nil {
				out[i].Error = "stopped: " + ctx.Err().Error()
			}
		}()
	}
	wg.Wait()
	return out
}

// inbox is an account's INBOX (or another of its mailboxes) opened for
// import: what is there and the limits that apply.
type inbox struct {
	user    *mailstore.User
	mailbox string
	present map[string]bool // UIDLs in the mailbox
	quota   int64
	maxSize int64
}

// openInbox opens the INBOX of an existing account.
func (t Target) openInbox(address string) (*inbox, error) {
	acct, ok := t.Accounts.Get(address)
	if !ok {
		return nil, fmt.Errorf("no account %s here: add it first with `mailsetup user add %s` (an import never creates accounts)", address, address)
	}
	u, err := t.Mail.User(acct.Address)
	if err != nil {
		return nil, err
	}
	in := &inbox{user: u, mailbox: mailstore.Inbox, quota: acct.QuotaBytes, maxSize: t.MaxMessageBytes}
	return in, in.load()
}

// folder opens the account's mailbox name for import, creating it (and
// its superiors) when it is missing.
func (in *inbox) folder(name string) (*inbox, error) {
	if err := in.user.CreateMailbox(name); err != nil && !errors.Is(err, mailstore.ErrMailboxExists) {
		return nil, err
	}
	f := &inbox{user: in.user, mailbox: name, quota: in.quota, maxSize: in.maxSize}
	return f, f.load()
}

// load reads the UIDLs in the mailbox.
func (in *inbox) load() error {
	mb, err := in.user.Mailbox(in.mailbox)
	if err != nil {
		return err
	}
	msgs, err := mb.Messages()
	if err != nil {
		return err
	}
	in.present = make(map[string]bool, len(msgs))
	for _, m := range msgs {
		in.present[m.UIDL] = true
	}
	return nil
}

// sizeRefusal is the reason a message of size bytes is refused before
// reading it, or "".
func (in *inbox) sizeRefusal(size int64) string {
	if in.maxSize > 0 && size > in.maxSize {
		return fmt.Sprintf("%d bytes, larger than mail.max_message_bytes (%d)", size, in.maxSize)
	}
	return ""
}

// errSource marks an error reading the source (not storing): the
// account's import stops.
type errSource struct{ err error }

func (e errSource) Error() string { return e.err.Error() }
func (e errSource) Unwrap() error { return e.err }

// sourceReader marks the errors of r as the source's.
type sourceReader struct{ r io.Reader }

func (s sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		err = errSource{err}
	}
	return n, err
}

// store delivers one message with its UIDL. It returns the size stored,
// or a refusal reason (nothing stored: too large, over quota, a UIDL
// present meanwhile is "" with skipped true), or an error that stops the
// account (the source failed, the store failed).
func (in *inbox) store(r io.Reader, uidl string, flags []string, date time.Time) (size int64, skipped bool, refusal string, err error) {
	m, err := in.user.Deliver(in.mailbox, sourceReader{r}, mailstore.DeliverOptions{
		UIDL: uidl, Flags: flags, InternalDate: date, MaxSize: in.maxSize, QuotaBytes: in.quota,
	})
	var se errSource
	switch {
	case err == nil:
		in.present[uidl] = true
		return m.Size, false, "", nil
	case errors.As(err, &se):
		return 0, false, "", se.err
	case errors.Is(err, mailstore.ErrDuplicateUIDL):
		in.present[uidl] = true
		return 0, true, "", nil
	case errors.Is(err, mailstore.ErrTooLarge):
		return 0, false, fmt.Sprintf("larger than mail.max_message_bytes (%d)", in.maxSize), nil
	case errors.Is(err, mailstore.ErrOverQuota):
		return 0, false, fmt.Sprintf("over the account's quota of %d bytes (raise it with `mailsetup user quota`, then import again)", in.quota), nil
	case errors.Is(err, mailstore.ErrBadFlag):
		return 0, false, err.Error(), nil
	}
	return 0, false, "", err
}

// uidlProblem says why a UIDL cannot be kept (RFC 1939 §7), or "".
func uidlProblem(uidl string) string {
	switch {
	case uidl == "":
		return "no UIDL: RFC 1939 §7 wants 1 to 70 characters"
	case len(uidl) > mailstore.MaxUIDLLen:
		return fmt.Sprintf("UIDL of %d characters: RFC 1939 §7 allows at most 70, so it cannot be kept and clients would download the message again", len(uidl))
	}
	for i := 0; i < len(uidl); i++ {
		if c := uidl[i]; c < 0x21 || c > 0x7e {
			return fmt.Sprintf("UIDL with byte 0x%02x at %d: RFC 1939 §7 allows only 0x21..0x7E, so it cannot be kept and clients would download the message again", c, i)
		}
	}
	return ""
}

// candidate is one message of a source.
type candidate struct {
	name string // message number or file name
	uidl string
}

// screen refuses the candidates whose UIDL cannot be kept or repeats an
// earlier one's and returns those to import.
func screen(rep *AccountReport, cands []candidate) []candidate {
	seen := make(map[string]string, len(cands))
	out := cands[:0:0]
	for _, c := range cands {
		if p := uidlProblem(c.uidl); p != "" {
			rep.refuse(c.name, c.uidl, p)
			continue
		}
		if first, dup := seen[c.uidl]; dup {
			rep.refuse(c.name, c.uidl, fmt.Sprintf("the source lists this UIDL also for message %s: clients cannot tell the two apart, so only the first is imported", first))
			continue
		}
		seen[c.uidl] = c.name
		out = append(out, c)
	}
	return slices.Clip(out)
}
