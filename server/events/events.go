// Package events owns what the mail servers observe about each client
// (authentication attempts and the username form used, refused
// submissions, deliveries, POP3 session behaviour, client names) and the
// bus that carries it to its consumers: the observations store, the
// metrics and the log. It defines the contract between them: Event, and
// the typed values of its fields (Kind, Proto, Result, Form), whose
// strings are written to logs, metric labels and snapshots and so never
// change. Emitting never blocks mail handling: events go through a
// bounded queue and are dropped, and counted, when the consumer falls
// behind.
//
// Imports: the standard library only. Imported by the servers that emit
// (auth, smtpd, imapd, the POP3 back end in mailbackend), by logwatch
// (the same events from an existing Dovecot's and Postfix's logs), by
// observe,
// which consumes, and by the composition root (server), which wires the
// bus to them and to the metrics and the log.
package events

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Kind says what happened.
type Kind string

const (
	// Auth is an authentication attempt, successful or not.
	Auth Kind = "auth"
	// SubmissionRefused is a MAIL or RCPT refused on submission (no AUTH,
	// forged sender) or a relay attempt on the inbound port.
	SubmissionRefused Kind = "submission-refused"
	// Delivery is a message accepted for a local mailbox or the queue.
	Delivery Kind = "delivery"
	// POP3Session is the summary of one POP3 session.
	POP3Session Kind = "pop3-session"
	// ClientID is the client's self-description (IMAP ID, EHLO name).
	ClientID Kind = "client-id"
	// Outbound is one attempt to deliver a queued message to one remote
	// recipient: ResultOK (delivered), ResultDeferred (to be tried
	// again) or ResultBounced (given up, the sender was told). Account
	// is the sender's, Detail names the recipient, the remote server and
	// its reply.
	Outbound Kind = "outbound"
)

// Proto is the protocol an event was seen on.
type Proto string

const (
	// ProtoSMTP is the inbound port (mail from other servers).
	ProtoSMTP Proto = "smtp"
	// ProtoSubmission is authenticated submission (587 and 465).
	ProtoSubmission Proto = "submission"
	ProtoIMAP       Proto = "imap"
	ProtoPOP3       Proto = "pop3"
	// ProtoWeb is the settings check of the web pages (a login check
	// with the customer's password).
	ProtoWeb Proto = "web"
)

// Protos returns every Proto the servers emit.
func Protos() []Proto {
	return []Proto{ProtoIMAP, ProtoPOP3, ProtoSMTP, ProtoSubmission, ProtoWeb}
}

// Result is what became of an attempt: ResultOK or the reason of a
// refusal.
type Result string

const (
	ResultOK Result = "ok"
	// ResultBadPassword: a wrong password or no such account (never told
	// apart).
	ResultBadPassword Result = "bad-password"
	// ResultUsernameForm: the username was not the full address (Form
	// says what it was).
	ResultUsernameForm Result = "username-form"
	// ResultThrottled: refused for too many failed logins.
	ResultThrottled Result = "throttled"
	// ResultAuthRequired: MAIL on submission without logging in.
	ResultAuthRequired Result = "auth-required"
	// ResultForgedSender: MAIL FROM an address the login may not send as.
	ResultForgedSender Result = "forged-sender"
	// ResultRelay: RCPT to a domain not served here on the inbound port.
	ResultRelay Result = "relay"
	// ResultUnknownRecipient: RCPT to an address of a served domain that
	// has no account or alias.
	ResultUnknownRecipient Result = "unknown-recipient"
	// ResultTooLarge: a message over the size limit.
	ResultTooLarge Result = "too-large"
	// ResultOverQuota: a recipient's mailbox is full.
	ResultOverQuota Result = "over-quota"
	// ResultDeferred: a remote server refused for now (4xx) or could not
	// be reached; the message stays queued.
	ResultDeferred Result = "deferred"
	// ResultBounced: a remote recipient refused for good (5xx), or the
	// queue gave up; the sender got a delivery status notification.
	ResultBounced Result = "bounced"
	// ResultSendLimit: a recipient over the account's sending limit
	// (recipients per hour).
	ResultSendLimit Result = "send-limit"
)

// Results returns every Result the servers emit.
func Results() []Result {
	return []Result{ResultOK, ResultBadPassword, ResultUsernameForm, ResultThrottled, ResultAuthRequired,
		ResultForgedSender, ResultRelay, ResultUnknownRecipient, ResultTooLarge, ResultOverQuota,
		ResultDeferred, ResultBounced, ResultSendLimit}
}

// Form is the shape of a username as typed.
type Form string

const (
	FormFull          Form = "full-address"
	FormLocalPart     Form = "local-part"      // "john"
	FormSeparator     Form = "wrong-separator" // "john/johndoe.com", "john%johndoe.com", "johndoe.com\john"
	FormUnknownDomain Form = "unknown-domain"  // "john@elsewhere.example"
	FormMalformed     Form = "malformed"
)

// Forms returns every Form.
func Forms() []Form {
	return []Form{FormFull, FormLocalPart, FormSeparator, FormUnknownDomain, FormMalformed}
}

// Event is one observation. Fields that do not apply stay zero.
type Event struct {
	Time   time.Time
	Kind   Kind
	Proto  Proto
	Remote netip.Addr
	TLS    bool
	// Account is the full address the event belongs to, when known.
	Account string
	// Username is what the client typed (never the password).
	Username string
	// Form is the username's form (Auth events).
	Form Form
	// Result is ResultOK or the reason of a refusal.
	Result Result
	// Client is the client's name (IMAP ID, EHLO argument).
	Client string
	// Detail is free text for people (e.g. the refused sender).
	Detail string
	// POP3 session counts: Listed is the LIST/UIDL commands answered,
	// Retrieved the messages sent whole (RETR, or TOP of all lines),
	// Redownloaded those already retrieved in an earlier session, Deleted
	// those removed at QUIT, Messages and Bytes the maildrop at login.
	Listed, Retrieved, Redownloaded, Deleted, Messages int
	Bytes                                              int64
	LeftAll                                            bool
	// Oldest is the internal date of the oldest message in the maildrop
	// at login (POP3 sessions; zero when empty).
	Oldest time.Time
	// UIDLsBefore and UIDLsAfter fingerprint the maildrop's UIDL set
	// (POP3 sessions read from a Dovecot log, its %{uidl_change}) as
	// "count/hash": the messages left from before the session's first
	// retrieval, and those left at its end. Empty when unknown; the
	// observations compare one session's UIDLsBefore with the previous
	// session's UIDLsAfter (pop3.uidl-changed).
	UIDLsBefore, UIDLsAfter string
}

// Sink consumes events. Emit must not block.
type Sink interface {
	Emit(Event)
}

// Discard drops every event.
type Discard struct{}

// Emit implements Sink.
func (Discard) Emit(Event) {}

// Bus fans events out to subscribers through a bounded queue; Emit never
// blocks. Subscribers run on the bus's goroutine, one event at a time.
//
// The queue grows with what waits, up to its size, instead of being
// allocated whole at start: a full 8192-event ring is 2.4 MB that an idle
// server never uses, and a large batch's storage is let go once it has
// been delivered.
type Bus struct {
	size    int
	dropped atomic.Uint64
	wake    chan struct{} // one pending wake-up for run
	done    chan struct{}

	qmu    sync.Mutex
	queue  []Event // waiting, oldest first
	spare  []Event // a small delivered batch's storage, kept for reuse
	closed bool

	mu   sync.RWMutex
	subs []func(Event)
}

// keepBatch is the largest delivered batch whose storage the bus keeps.
const keepBatch = 64

// NewBus starts a bus holding up to size waiting events.
func NewBus(size int) *Bus {
	if size <= 0 {
		size = 4096
	}
	b := &Bus{size: size, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go b.run()
	return b
}

// Subscribe adds a consumer; call before emitting.
func (b *Bus) Subscribe(f func(Event)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.subs = append(b.subs, f)
}

// Emit queues an event, or drops and counts it when the queue is full.
func (b *Bus) Emit(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	b.qmu.Lock()
	if b.closed || len(b.queue) >= b.size {
		b.qmu.Unlock()
		b.dropped.Add(1)
		return
	}
	b.queue = append(b.queue, e)
	b.qmu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// Dropped returns how many events were dropped.
func (b *Bus) Dropped() uint64 { return b.dropped.Load() }

func (b *Bus) run() {
	defer close(b.done)
	for {
		<-b.wake
		b.qmu.Lock()
		batch, closed := b.queue, b.closed
		b.queue, b.spare = b.spare, nil
		b.qmu.Unlock()
		if len(batch) > 0 {
			b.mu.RLock()
			subs := b.subs
			b.mu.RUnlock()
			for i := range batch {
				for _, f := range subs {
					f(batch[i])
				}
				batch[i] = Event{} // let the strings go
			}
		}
		if closed {
			return
		}
		if cap(batch) <= keepBatch {
			b.qmu.Lock()
			if b.spare == nil {
				b.spare = batch[:0]
			}
			b.qmu.Unlock()
		}
	}
}

// Close stops the bus after delivering what is queued.
func (b *Bus) Close() {
	b.qmu.Lock()
	b.closed = true
	b.qmu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
	<-b.done
}
