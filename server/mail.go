package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"mailsetup/autoconfig"
	"mailsetup/server/accounts"
	"mailsetup/server/auth"
	"mailsetup/server/events"
	"mailsetup/server/mailstore"
	"mailsetup/server/pop3d"
	"mailsetup/server/queue"
)

// mailSystem joins accounts, authentication, storage and the queue for
// the protocol servers: it is their Directory, Deliverer and POP3 Backend.
type mailSystem struct {
	cfg      *Config
	domains  map[string]bool
	accounts *accounts.Store
	auth     *auth.Authenticator
	store    *mailstore.Store
	queue    *queue.Queue
	events   events.Sink
	// expireDays is each domain's pop3_policy.expire_days (0: never).
	expireDays map[string]int

	mu        sync.Mutex
	pop3Use   map[string]bool      // maildrops claimed by a POP3 session or an expiry sweep
	lastLogin map[string]time.Time // last POP3 login per account, for LOGIN-DELAY
	// pop3Ending holds a closed POP3 session's event until pop3d's report.
	pop3Ending map[string]events.Event
}

func newMailSystem(cfg *Config, policies []autoconfig.Policy, ev events.Sink, log *slog.Logger) (*mailSystem, error) {
	opts := mailstore.Options{Logger: log.With("component", "mailstore"), Hostname: cfg.Hostname}
	data := cfg.Path(cfg.DataDir)
	accts, err := accounts.Open(filepath.Join(data, AccountsFile))
	if err != nil {
		return nil, err
	}
	store, err := mailstore.Open(mailRoot(cfg), opts)
	if err != nil {
		return nil, fmt.Errorf("mail storage: %w", err)
	}
	q, err := queue.Open(filepath.Join(data, "queue"))
	if err != nil {
		return nil, err
	}
	m := &mailSystem{cfg: cfg, domains: map[string]bool{}, expireDays: map[string]int{}, accounts: accts, store: store, queue: q, events: ev, pop3Use: map[string]bool{}}
	for _, p := range policies {
		m.domains[p.Domain] = true
		m.expireDays[p.Domain] = p.POP.ExpireDays
	}
	mc := cfg.Mail
	m.auth = auth.New(auth.Options{Accounts: accts, IsLocal: m.IsLocalDomain, Events: ev, Throttle: auth.ThrottleOptions{
		IPLimit: mc.LoginFailuresPerIP, AccountLimit: mc.LoginFailuresPerAccount, NewAddressLimit: mc.LoginFailuresNewAddresses,
		Window: time.Duration(mc.LoginWindowSeconds) * time.Second, Logger: log.With("component", "auth")}})
	return m, nil
}

// IsLocalDomain implements smtpd.Directory.
func (m *mailSystem) IsLocalDomain(d string) bool { return m.domains[strings.ToLower(d)] }

// Resolve implements smtpd.Directory.
func (m *mailSystem) Resolve(address string) (string, bool) {
	_ = m.accounts.Reload() // a failed reload keeps the last good accounts
	a, ok := m.accounts.Resolve(address)
	return a.Address, ok
}

// MaySendAs implements smtpd.Directory.
func (m *mailSystem) MaySendAs(account, from string) bool {
	owner, ok := m.Resolve(from)
	return ok && strings.EqualFold(owner, account)
}

// DeliverLocal implements smtpd.Deliverer.
func (m *mailSystem) DeliverLocal(account string, msg io.Reader) error {
	a, ok := m.accounts.Get(account)
	if !ok {
		return fmt.Errorf("deliver: no account %s", account)
	}
	u, err := m.store.User(a.Address)
	if err != nil {
		return err
	}
	// The trace headers smtpd adds count against the limit too.
	_, err = u.Deliver("INBOX", msg, mailstore.DeliverOptions{MaxSize: m.cfg.Mail.MaxMessageBytes + 4096, QuotaBytes: a.QuotaBytes})
	return err
}

// quota returns an account's storage limit (0: none).
func (m *mailSystem) quota(account string) int64 {
	a, _ := m.accounts.Get(account)
	return a.QuotaBytes
}

// Enqueue implements smtpd.Deliverer.
func (m *mailSystem) Enqueue(from string, to []string, msg io.Reader) error {
	_, err := m.queue.Enqueue(from, to, msg)
	return err
}

func remoteIP(a net.Addr) netip.Addr {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// Login implements pop3d.Backend.
func (m *mailSystem) Login(ctx context.Context, c pop3d.ConnInfo, username, password string) (pop3d.Session, error) {
	remote := remoteIP(c.RemoteAddr)
	account, err := m.auth.Authenticate(ctx, auth.Attempt{Proto: "pop3", Remote: remote, TLS: c.TLS, Username: username, Password: password})
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
	if wait := m.loginDelay(account); wait > 0 {
		// RFC 2449 §8.1.1: the client logged in again before LOGIN-DELAY.
		return nil, &pop3d.Error{Code: pop3d.CodeLoginDelay, Text: fmt.Sprintf("checking mail too often: wait %d more seconds between checks (set your mail program to check every %d minutes or more)", int(wait.Seconds())+1, (m.cfg.Mail.POP3LoginDelaySeconds+59)/60)}
	}
	release, ok := m.claimMaildrop(account)
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
		expire: expireValue(m.expireDays[accountDomain(account)])}, nil
}

// loginDelay records a POP3 login and returns how long the account must
// still wait when mail.pop3_login_delay_seconds is set and the previous
// login was more recent than that.
func (m *mailSystem) loginDelay(account string) time.Duration {
	delay := time.Duration(m.cfg.Mail.POP3LoginDelaySeconds) * time.Second
	if delay <= 0 {
		return 0
	}
	key := strings.ToLower(account)
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.lastLogin == nil || len(m.lastLogin) > maxLoginTimes {
		m.lastLogin = map[string]time.Time{} // bounded: forget all, at worst one early login each
	}
	if last, ok := m.lastLogin[key]; ok && now.Sub(last) < delay {
		return delay - now.Sub(last)
	}
	m.lastLogin[key] = now
	return 0
}

// maxLoginTimes bounds the LOGIN-DELAY bookkeeping.
const maxLoginTimes = 100_000

// claimMaildrop marks an account's INBOX as used by one POP3 session (or
// an expiry sweep, which must not change a session's snapshot); ok is
// false when it already is. release ends the claim.
func (m *mailSystem) claimMaildrop(account string) (release func(), ok bool) {
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

// expireValue is the POP3 EXPIRE value (RFC 2449 §6.7) of an
// expire_days setting: 0 is NEVER.
func expireValue(days int) string {
	if days <= 0 {
		return pop3d.ExpireNever
	}
	return strconv.Itoa(days)
}

// pop3Session is one POP3 maildrop: a snapshot of INBOX at login.
type pop3Session struct {
	m       *mailSystem
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
	// Close; pop3Ended merges them and emits the event.
	s.m.mu.Lock()
	if s.m.pop3Ending == nil || len(s.m.pop3Ending) > maxLoginTimes {
		s.m.pop3Ending = map[string]events.Event{}
	}
	s.m.pop3Ending[s.connID] = events.Event{Kind: events.POP3Session, Proto: "pop3", Remote: s.remote, TLS: s.tls, Account: s.account, Result: "ok",
		Retrieved: len(s.retrieved), Redownloaded: s.redownloaded, Deleted: s.deleted, Messages: len(s.msgs), Bytes: bytes,
		LeftAll: len(s.retrieved) > 0 && s.deleted == 0, Oldest: oldest}
	s.m.mu.Unlock()
	return err
}

// pop3Ended is pop3d's end-of-session report: it completes the
// session's event with the LIST/UIDL count and emits it.
func (m *mailSystem) pop3Ended(e pop3d.SessionEvent) {
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
