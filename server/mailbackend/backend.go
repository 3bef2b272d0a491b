// Package mailbackend is the embedded mail server's back end: it joins
// accounts, authentication, the Maildir store and the outbound queue for
// the protocol servers. It is smtpd's Directory and Deliverer, pop3d's
// Backend (with its POP3 session over an INBOX snapshot), and the POP3
// expiry sweeper.
//
// It may import the project's storage and service packages (accounts,
// auth, events, mailstore, queue) and pop3d for the Backend interface;
// never smtpd, imapd, the web or the server that composes them.
package mailbackend

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"mailsetup/server/accounts"
	"mailsetup/server/auth"
	"mailsetup/server/events"
	"mailsetup/server/mailstore"
	"mailsetup/server/queue"
)

// Options configure a Backend.
type Options struct {
	// AccountsFile is the accounts file; MailRoot the Maildir tree;
	// QueueDir the outbound queue.
	AccountsFile, MailRoot, QueueDir string
	// Hostname names this server in the mail it stores.
	Hostname string
	// Domains are the domains served here, each with its POP3
	// expire_days (0: never).
	Domains map[string]int
	// MaxMessageBytes is the largest message accepted.
	MaxMessageBytes int64
	// POP3LoginDelaySeconds, when set, is the least time between two
	// POP3 logins of one account (RFC 2449 LOGIN-DELAY).
	POP3LoginDelaySeconds int
	// Throttle limits failed logins.
	Throttle auth.ThrottleOptions
	// SendLimitPerHour is each account's sending limit: recipients of
	// other domains per hour (0: none).
	SendLimitPerHour int
	// Accounts, when set, is the account store (the database's) instead
	// of AccountsFile.
	Accounts *accounts.Store
	Events   events.Sink
	Logger   *slog.Logger
}

// Backend joins accounts, authentication, storage and the queue for the
// protocol servers: it is their Directory, Deliverer and POP3 Backend.
type Backend struct {
	opts Options
	// served are the domains and their expire_days; SetDomains (a
	// config reload) replaces them whole.
	served atomic.Pointer[servedDomains]
	// loginDelay is POP3LoginDelaySeconds, then SetPOP3LoginDelay's;
	// maxMessage is the largest MaxMessageBytes given.
	loginDelay atomic.Int64
	maxMessage atomic.Int64
	accounts   *accounts.Store
	auth       *auth.Authenticator
	store      *mailstore.Store
	queue      *queue.Queue
	events     events.Sink

	mu        sync.Mutex
	pop3Use   map[string]bool      // maildrops claimed by a POP3 session or an expiry sweep
	lastLogin map[string]time.Time // last POP3 login per account, for LOGIN-DELAY
	// pop3Ending holds a closed POP3 session's event until pop3d's report.
	pop3Ending map[string]events.Event
	// queued is told each new queue item (the delivery agent).
	queued func(id string)
	// sendLimit is nil without a limit.
	sendLimit *SendLimit
}

// SetPOP3LoginDelay changes POP3LoginDelaySeconds (a config reload) for
// the logins from now on.
func (m *Backend) SetPOP3LoginDelay(seconds int) { m.loginDelay.Store(int64(seconds)) }

// RaiseMaxMessageBytes raises MaxMessageBytes, the local delivery's
// own cap (a config reload). It never lowers it: SMTP sessions opened
// before a reload that lowered mail.max_message_bytes still accept
// messages up to their own, larger, SIZE, and each session enforces its
// limit itself.
func (m *Backend) RaiseMaxMessageBytes(n int64) {
	for {
		cur := m.maxMessage.Load()
		if n <= cur || m.maxMessage.CompareAndSwap(cur, n) {
			return
		}
	}
}

// Open opens the accounts, the mail storage and the queue.
func Open(opts Options) (*Backend, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Events == nil {
		opts.Events = events.Discard{}
	}
	accts := opts.Accounts
	if accts == nil {
		var err error
		if accts, err = accounts.Open(opts.AccountsFile); err != nil {
			return nil, err
		}
	}
	store, err := mailstore.Open(opts.MailRoot, mailstore.Options{Logger: opts.Logger.With("component", "mailstore"), Hostname: opts.Hostname})
	if err != nil {
		return nil, fmt.Errorf("mail storage: %w", err)
	}
	q, err := queue.Open(opts.QueueDir)
	if err != nil {
		return nil, err
	}
	m := &Backend{opts: opts, accounts: accts, store: store, queue: q, events: opts.Events, pop3Use: map[string]bool{}}
	m.SetDomains(opts.Domains)
	m.SetPOP3LoginDelay(opts.POP3LoginDelaySeconds)
	m.RaiseMaxMessageBytes(opts.MaxMessageBytes)
	if opts.SendLimitPerHour > 0 {
		m.sendLimit = NewSendLimit(opts.SendLimitPerHour)
	}
	th := opts.Throttle
	th.Logger = opts.Logger.With("component", "auth")
	m.auth = auth.New(auth.Options{Accounts: accts, IsLocal: m.IsLocalDomain, Events: opts.Events, Throttle: th})
	return m, nil
}

// Auth is the login check every protocol shares.
func (m *Backend) Auth() *auth.Authenticator { return m.auth }

// Accounts are the accounts and aliases.
func (m *Backend) Accounts() *accounts.Store { return m.accounts }

// Store is the Maildir storage.
func (m *Backend) Store() *mailstore.Store { return m.store }

// Queue is the outbound queue.
func (m *Backend) Queue() *queue.Queue { return m.queue }

// servedDomains is one generation of the served domains: each with its
// POP3 expire_days (0: never). Never changed once stored.
type servedDomains struct {
	expireDays map[string]int
}

// SetDomains replaces the served domains (lower case) and their POP3
// expire_days: mail for a new domain is accepted from now on, a removed
// one's refused (its mailboxes stay on disk); sessions already open go
// on, and the expiry sweeper uses the new days from its next sweep.
func (m *Backend) SetDomains(days map[string]int) {
	set := &servedDomains{expireDays: make(map[string]int, len(days))}
	for d, n := range days {
		set.expireDays[strings.ToLower(d)] = n
	}
	m.served.Store(set)
}

// ExpireDays is each served domain's POP3 expire_days (do not modify).
func (m *Backend) ExpireDays() map[string]int { return m.served.Load().expireDays }

// Domains lists the domains served here.
func (m *Backend) Domains() []string {
	days := m.ExpireDays()
	out := make([]string, 0, len(days))
	for d := range days {
		out = append(out, d)
	}
	return out
}

// IsLocalDomain implements smtpd.Directory.
func (m *Backend) IsLocalDomain(d string) bool {
	_, ok := m.ExpireDays()[strings.ToLower(d)]
	return ok
}

// Resolve implements smtpd.Directory.
func (m *Backend) Resolve(address string) (string, bool) {
	_ = m.accounts.Reload() // a failed reload keeps the last good accounts
	a, ok := m.accounts.Resolve(address)
	return a.Address, ok
}

// MaySendAs implements smtpd.Directory.
func (m *Backend) MaySendAs(account, from string) bool {
	owner, ok := m.Resolve(from)
	return ok && strings.EqualFold(owner, account)
}

// DeliverLocal implements smtpd.Deliverer.
func (m *Backend) DeliverLocal(account string, msg io.Reader) error {
	a, ok := m.accounts.Get(account)
	if !ok {
		return fmt.Errorf("deliver: no account %s", account)
	}
	u, err := m.store.User(a.Address)
	if err != nil {
		return err
	}
	// The trace headers smtpd adds count against the limit too.
	_, err = u.Deliver("INBOX", msg, mailstore.DeliverOptions{MaxSize: m.maxMessage.Load() + 4096, QuotaBytes: a.QuotaBytes})
	return err
}

// Quota returns an account's storage limit (0: none).
func (m *Backend) Quota(account string) int64 {
	a, _ := m.accounts.Get(account)
	return a.QuotaBytes
}

// Enqueue implements smtpd.Deliverer.
func (m *Backend) Enqueue(from string, to []string, msg io.Reader) error {
	id, err := m.queue.Enqueue(from, to, msg)
	if err == nil && m.queued != nil {
		m.queued(id)
	}
	return err
}

// SendLimit is the accounts' sending limit (nil: none).
func (m *Backend) SendLimit() *SendLimit { return m.sendLimit }

// OnQueued sets who is told of each new queue item (the delivery
// agent); call it before the mail listeners start.
func (m *Backend) OnQueued(f func(id string)) { m.queued = f }

// DeliverToSender stores a delivery status notification in the INBOX of
// the account that sender (an address or alias of it) belongs to.
func (m *Backend) DeliverToSender(sender string, msg []byte) error {
	account, ok := m.Resolve(sender)
	if !ok {
		return fmt.Errorf("%s has no mailbox here", sender)
	}
	return m.DeliverLocal(account, io.MultiReader(strings.NewReader("Return-Path: <>\r\n"), bytes.NewReader(msg)))
}

// AccountOf returns the account a sender address belongs to, or "".
func (m *Backend) AccountOf(sender string) string {
	account, _ := m.Resolve(sender)
	return account
}
