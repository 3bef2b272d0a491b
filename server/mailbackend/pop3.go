package mailbackend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"mailsetup/server/auth"
	"mailsetup/server/events"
	"mailsetup/server/mailstore"
	"mailsetup/server/pop3d"
)

// RemoteIP is the IP address of a connection's address (IPv4 unmapped).
func RemoteIP(a net.Addr) netip.Addr {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// Login implements pop3d.Backend.
func (m *Backend) Login(ctx context.Context, c pop3d.ConnInfo, username, password string) (pop3d.Session, error) {
	remote := RemoteIP(c.RemoteAddr)
	account, err := m.auth.Authenticate(ctx, auth.Attempt{Proto: events.ProtoPOP3, Remote: remote, TLS: c.TLS, Username: username, Password: password})
	var fe *auth.FormError
	var te *auth.ThrottledError
	switch {
	case errors.As(err, &fe):
		return nil, &pop3d.Error{Code: "AUTH", Text: fe.Error()}
	case errors.As(err, &te):
		return nil, &pop3d.Error{Code: "SYS/TEMP", Text: te.Error()}
	case errors.Is(err, auth.ErrBadCredentials):
		return nil, &pop3d.Error{Code: "AUTH", Text: "wrong username or password"}
	case err != nil:
		return nil, &pop3d.Error{Code: "SYS/TEMP", Text: "temporary problem, try again later", Err: err}
	}
	if wait, delay := m.waitLoginDelay(account); wait > 0 {
		// RFC 2449 §8.1.1: the client logged in again before LOGIN-DELAY.
		return nil, &pop3d.Error{Code: pop3d.CodeLoginDelay, Text: fmt.Sprintf("checking mail too often: wait %d more seconds between checks (set your mail program to check every %d minutes or more)", int(wait.Seconds())+1, (int(delay/time.Second)+59)/60)}
	}
	release, ok := m.ClaimMaildrop(account)
	if !ok {
		// RFC 2449 §8.1.2
		return nil, &pop3d.Error{Code: "IN-USE", Text: "the mailbox is open in another POP3 session: close the other mail program, or wait for it to finish"}
	}
	u, err := m.store.User(account)
	if err != nil {
		release()
		return nil, &pop3d.Error{Code: "SYS/TEMP", Text: "temporary problem, try again later", Err: err}
	}
	mb, err := u.Mailbox("INBOX")
	if err != nil {
		release()
		return nil, &pop3d.Error{Code: "SYS/TEMP", Text: "temporary problem, try again later", Err: err}
	}
	msgs, err := mb.Messages()
	if err != nil {
		release()
		return nil, &pop3d.Error{Code: "SYS/TEMP", Text: "temporary problem, try again later", Err: err}
	}
	return &pop3Session{m: m, connID: c.ID, release: release, account: account, remote: remote, tls: c.TLS, mb: mb, msgs: msgs,
		expire: ExpireValue(m.ExpireDays()[accountDomain(account)])}, nil
}

// waitLoginDelay records a POP3 login and returns how long the account
// must still wait when mail.pop3_login_delay_seconds (delay) is set and
// the previous login was more recent than that.
func (m *Backend) waitLoginDelay(account string) (wait, delay time.Duration) {
	delay = time.Duration(m.loginDelay.Load()) * time.Second
	if delay <= 0 {
		return 0, 0
	}
	key := strings.ToLower(account)
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.lastLogin == nil || len(m.lastLogin) > maxLoginTimes {
		m.lastLogin = map[string]time.Time{} // bounded: forget all, at worst one early login each
	}
	if last, ok := m.lastLogin[key]; ok && now.Sub(last) < delay {
		return delay - now.Sub(last), delay
	}
	m.lastLogin[key] = now
	return 0, delay
}

// maxLoginTimes bounds the LOGIN-DELAY bookkeeping.
const maxLoginTimes = 100_000

// ClaimMaildrop marks an account's INBOX as used by one POP3 session (or
// an expiry sweep, which must not change a session's snapshot); ok is
// false when it already is. release ends the claim.
func (m *Backend) ClaimMaildrop(account string) (release func(), ok bool) {
	key := strings.ToLower(account)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.pop3Use[key] {
		return nil, false
	}
	m.pop3Use[key] = true
	return func() {
		m.mu.Lock()
		delete(m.pop3Use, key)
		m.mu.Unlock()
	}, true
}

// accountDomain is the lower-cased domain of a full address.
func accountDomain(address string) string {
	_, d, _ := strings.Cut(strings.ToLower(address), "@")
	return d
}

// ExpireValue is the POP3 EXPIRE value (RFC 2449 §6.7) of an
// expire_days setting: 0 is NEVER.
func ExpireValue(days int) string {
	if days <= 0 {
		return pop3d.ExpireNever
	}
	return strconv.Itoa(days)
}

// pop3Session is one POP3 maildrop: a snapshot of INBOX at login.
type pop3Session struct {
	m       *Backend
	connID  string
	release func()
	account string
	remote  netip.Addr
	tls     bool
	mb      *mailstore.Mailbox
	msgs    []mailstore.Message
	expire  string // CAPA EXPIRE after login: the account's domain policy

	retrieved    []uint32
	redownloaded int
	deleted      int
}

func (s *pop3Session) Messages() ([]pop3d.MessageInfo, error) {
	out := make([]pop3d.MessageInfo, len(s.msgs))
	for i, msg := range s.msgs {
		out[i] = pop3d.MessageInfo{Size: msg.Size, UIDL: msg.UIDL}
	}
	return out, nil
}

var _ pop3d.SessionExpire = (*pop3Session)(nil)

// Expire implements pop3d.SessionExpire.
func (s *pop3Session) Expire() string { return s.expire }

func (s *pop3Session) Open(n int) (io.ReadCloser, error) {
	return s.mb.Open(s.msgs[n].UID)
}

func (s *pop3Session) Retrieved(n int) {
	msg := s.msgs[n]
	if !msg.Retrieved.IsZero() {
		s.redownloaded++ // already retrieved in an earlier session
	}
	s.retrieved = append(s.retrieved, msg.UID)
}

func (s *pop3Session) Commit(deleted []int) error {
	uids := make([]uint32, len(deleted))
	for i, n := range deleted {
		uids[i] = s.msgs[n].UID
	}
	gone, err := s.mb.Expunge(uids)
	s.deleted = len(gone)
	return err
}

func (s *pop3Session) Close() error {
	defer s.release()
	var err error
	if len(s.retrieved) > 0 {
		// Retrieved counts even without QUIT: the client has the mail.
		// The store's clock (zero time: now), as the expiry sweep uses.
		err = s.mb.MarkRetrieved(s.retrieved, time.Time{})
	}
	var bytes int64
	var oldest time.Time
	for _, msg := range s.msgs {
		bytes += msg.Size
		if oldest.IsZero() || msg.InternalDate.Before(oldest) {
			oldest = msg.InternalDate
		}
	}
	// pop3d reports the session's protocol counts (LIST/UIDL) right after
	// Close; POP3Ended merges them and emits the event.
	s.m.mu.Lock()
	if s.m.pop3Ending == nil || len(s.m.pop3Ending) > maxLoginTimes {
		s.m.pop3Ending = map[string]events.Event{}
	}
	s.m.pop3Ending[s.connID] = events.Event{Kind: events.POP3Session, Proto: events.ProtoPOP3, Remote: s.remote, TLS: s.tls, Account: s.account, Result: events.ResultOK,
		Retrieved: len(s.retrieved), Redownloaded: s.redownloaded, Deleted: s.deleted, Messages: len(s.msgs), Bytes: bytes,
		LeftAll: len(s.retrieved) > 0 && s.deleted == 0, Oldest: oldest}
	s.m.mu.Unlock()
	return err
}

// POP3Ended is pop3d's end-of-session report: it completes the
// session's event with the LIST/UIDL count and emits it.
func (m *Backend) POP3Ended(e pop3d.SessionEvent) {
	m.mu.Lock()
	ev, ok := m.pop3Ending[e.ConnID]
	delete(m.pop3Ending, e.ConnID)
	m.mu.Unlock()
	if !ok {
		return // no maildrop was opened: the auth event says why
	}
	ev.Listed = e.Listed
	m.events.Emit(ev)
}
