// Package smtpd is the SMTP side of the embedded mail server, on
// github.com/emersion/go-smtp:
//
//   - submission (RFC 6409) on 587 with STARTTLS (RFC 3207) and on 465 with
//     implicit TLS (RFC 8314): AUTH PLAIN and LOGIN (RFC 4954), offered
//     only after TLS; the username must be the full address; MAIL without
//     AUTH gets 530 5.7.0 with the client setting to turn on; MAIL FROM
//     must be the authenticated address or one of its aliases (553 5.7.1);
//     local recipients are delivered to their mailbox, others queued;
//   - inbound (RFC 5321) on 25: no AUTH, only recipients of local domains
//     (550 5.1.1 unknown user; 554 5.7.1 relay refused), message size
//     checked (SIZE, RFC 1870), Return-Path and Received headers added.
//
// A message is acknowledged (250) only after every local copy and the
// queue entry are durable.
//
// Imports: go-smtp, autoconfig, auth and events; the mail store is behind
// the Directory and Deliverer interfaces (server/mailbackend implements
// them); never another protocol server.
package smtpd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"mailsetup/autoconfig"
	"mailsetup/server/auth"
	"mailsetup/server/events"
	"mailsetup/server/handoff"
)

// Mode says which port a server is.
type Mode int

const (
	// Submission: mail from the domain's users, authenticated (587/465).
	Submission Mode = iota
	// Inbound: mail from other servers to local recipients (25).
	Inbound
)

func (m Mode) String() string { return string(m.Proto()) }

// Proto is the protocol the mode's events carry.
func (m Mode) Proto() events.Proto {
	if m == Inbound {
		return events.ProtoSMTP
	}
	return events.ProtoSubmission
}

// Directory answers questions about local addresses.
type Directory interface {
	// Resolve returns the account that receives mail for address (the
	// account itself or one of its aliases).
	Resolve(address string) (account string, ok bool)
	// MaySendAs reports whether the account may use from as its sender
	// (its own address or one of its aliases).
	MaySendAs(account, from string) bool
	// IsLocalDomain reports whether a domain is served here.
	IsLocalDomain(domain string) bool
}

// Deliverer stores accepted messages durably.
type Deliverer interface {
	// DeliverLocal stores msg in the account's INBOX; it returns only
	// when the message is durable.
	DeliverLocal(account string, msg io.Reader) error
	// Enqueue stores msg for remote recipients; durable on return.
	Enqueue(from string, to []string, msg io.Reader) error
}

// Options configure a Server. Zero limits take the defaults.
type Options struct {
	Mode      Mode
	Hostname  string
	Auth      *auth.Authenticator // required for Submission
	Directory Directory
	Deliverer Deliverer
	Events    events.Sink
	Logger    *slog.Logger
	// TLSConfig enables STARTTLS; with ImplicitTLS, Serve speaks TLS on
	// its plain listener from the first byte (465).
	TLSConfig   *tls.Config
	ImplicitTLS bool
	// AllowInsecureAuth offers AUTH without TLS. Only for loopback tests:
	// passwords would travel in the clear.
	AllowInsecureAuth bool
	// MaxMessageBytes, default 25 MiB, advertised with SIZE.
	MaxMessageBytes int64
	// MaxRecipients per message, default 100.
	MaxRecipients int
	// ReadTimeout and WriteTimeout per command, default 5 minutes
	// (RFC 5321 §4.5.3.2 suggests 5 minutes for most commands).
	ReadTimeout, WriteTimeout time.Duration
	// MaxLineLength, default 2000 (twice RFC 5321's 1000).
	MaxLineLength int
	// SpoolDir holds message data while it is delivered. Required.
	SpoolDir string
	// LoggedIn is told the client's address after a successful AUTH (on
	// port 25: after the first accepted recipient), so that a
	// connection limit in front of the server counts the connection as
	// a customer's; may be nil.
	LoggedIn func(remote net.Addr)
	// UnknownRecipientsSlow: after this many unknown local recipients in
	// one connection each further one is answered after a growing delay
	// (1 s more each, at most 5 s); UnknownRecipientsMax: the one after
	// that gets 421 and the connection is closed (directory harvest).
	// Defaults 3 and 10.
	UnknownRecipientsSlow, UnknownRecipientsMax int
	// OnHarvest is told "slowed" or "disconnected" for each such
	// answer (for metrics); may be nil.
	OnHarvest func(action string)
	// SendLimit, on submission, is asked before each recipient of
	// another domain is accepted; may be nil (no limit).
	SendLimit SendLimiter
}

// SendLimiter is the accounts' sending limit: recipients of other
// domains per hour.
type SendLimiter interface {
	// AllowRecipient counts one recipient for account, or reports that
	// the account is over its limit (of limit recipients per hour) and
	// when it may send again.
	AllowRecipient(account string) (ok bool, limit int, retryIn time.Duration)
}

// SpoolPattern names the files a message is spooled to during DATA
// (os.CreateTemp pattern; also a filepath.Glob pattern for the sweep
// after a crash).
const SpoolPattern = "smtp-*"

// Server is one SMTP listener's server. Its limits (Limits) can change
// while it serves: go-smtp reads its Server's fields throughout a
// session, so a change starts a new smtp.Server for the connections
// accepted from then on, and the sessions already open finish on the
// old one with the values they started with.
type Server struct {
	base Options
	log  *slog.Logger

	mu      sync.Mutex
	cur     *generation
	gens    []*generation // every one serving, for Shutdown
	loop    *handoff.Loop // nil until Serve
	addr    net.Addr      // the listener's, once serving
	closing bool
}

// Limits are the options a running server can change; they hold for
// the connections accepted after SetLimits.
type Limits struct {
	MaxMessageBytes                             int64
	ReadTimeout                                 time.Duration
	UnknownRecipientsSlow, UnknownRecipientsMax int
	AllowInsecureAuth                           bool
}

// generation is one smtp.Server with the options its sessions use, and
// the listener it takes its connections from.
type generation struct {
	*handoff.Gen
	opts Options
	log  *slog.Logger
	smtp *smtp.Server
}

// New builds a server.
func New(opts Options) *Server {
	if opts.Events == nil {
		opts.Events = events.Discard{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxRecipients == 0 {
		opts.MaxRecipients = 100
	}
	if opts.WriteTimeout == 0 {
		opts.WriteTimeout = 5 * time.Minute
	}
	if opts.MaxLineLength == 0 {
		opts.MaxLineLength = 2000
	}
	s := &Server{base: opts, log: opts.Logger.With("proto", opts.Mode.String())}
	s.cur = s.newGeneration(Limits{MaxMessageBytes: opts.MaxMessageBytes, ReadTimeout: opts.ReadTimeout,
		UnknownRecipientsSlow: opts.UnknownRecipientsSlow, UnknownRecipientsMax: opts.UnknownRecipientsMax, AllowInsecureAuth: opts.AllowInsecureAuth})
	return s
}

// newGeneration builds an smtp.Server with the base options and lim.
func (s *Server) newGeneration(lim Limits) *generation {
	opts := s.base
	opts.MaxMessageBytes, opts.ReadTimeout, opts.AllowInsecureAuth = lim.MaxMessageBytes, lim.ReadTimeout, lim.AllowInsecureAuth
	opts.UnknownRecipientsSlow, opts.UnknownRecipientsMax = lim.UnknownRecipientsSlow, lim.UnknownRecipientsMax
	if opts.MaxMessageBytes == 0 {
		opts.MaxMessageBytes = 25 << 20
	}
	if opts.ReadTimeout == 0 {
		opts.ReadTimeout = 5 * time.Minute
	}
	if opts.UnknownRecipientsMax == 0 {
		opts.UnknownRecipientsMax = 10
	}
	if opts.UnknownRecipientsSlow == 0 {
		opts.UnknownRecipientsSlow = min(3, opts.UnknownRecipientsMax)
	}
	g := &generation{opts: opts, log: s.log}
	srv := smtp.NewServer(g)
	srv.Domain = opts.Hostname
	srv.MaxMessageBytes = opts.MaxMessageBytes
	srv.MaxRecipients = opts.MaxRecipients
	srv.MaxLineLength = opts.MaxLineLength
	srv.ReadTimeout = opts.ReadTimeout
	srv.WriteTimeout = opts.WriteTimeout
	srv.AllowInsecureAuth = opts.AllowInsecureAuth
	if !opts.ImplicitTLS {
		srv.TLSConfig = opts.TLSConfig
	}
	srv.ErrorLog = slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn)
	g.smtp = srv
	return g
}

// SetLimits applies lim to the connections accepted from now on; open
// sessions keep theirs.
func (s *Server) SetLimits(lim Limits) {
	g := s.newGeneration(lim)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return
	}
	if s.loop == nil { // not serving yet
		s.cur = g
		return
	}
	s.start(g)
	if old, ok := s.loop.Swap(g.Gen); ok {
		old.Close() // its server stops accepting; its sessions go on
	}
	s.cur = g
}

// start serves g's connections (with s.mu held).
func (s *Server) start(g *generation) {
	g.Gen = handoff.NewGen(s.addr)
	s.gens = append(s.gens, g)
	go g.smtp.Serve(g) //nolint:errcheck // ends with net.ErrClosed when replaced or shut down
}

// Serve accepts connections on ln until Shutdown. ln is a plain TCP
// listener also with ImplicitTLS: the server does the TLS, above the
// guard (guard.go), so the guard's rules hold on every port.
func (s *Server) Serve(ln net.Listener) error {
	ln = guardListener{ln}
	if s.base.ImplicitTLS {
		ln = tls.NewListener(ln, s.base.TLSConfig)
	}
	s.mu.Lock()
	if s.closing || s.loop != nil {
		s.mu.Unlock()
		return errors.New("smtpd: Serve after Shutdown or called twice")
	}
	s.addr = ln.Addr()
	s.start(s.cur)
	s.loop = handoff.New(ln, s.cur.Gen)
	loop := s.loop
	s.mu.Unlock()
	return loop.Serve()
}

// Shutdown stops accepting and waits for sessions (of every
// generation) to end or ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	loop, gens := s.loop, s.gens
	s.mu.Unlock()
	if loop != nil {
		loop.Close()
	}
	var first error
	for _, g := range gens {
		g.Close()
		if err := g.smtp.Shutdown(ctx); err != nil && !errors.Is(err, smtp.ErrServerClosed) && first == nil {
			first = err
		}
	}
	return first
}

// Reject is the netlimit refusal line for SMTP.
func Reject(c net.Conn, reason string) {
	fmt.Fprintf(c, "421 4.7.0 %s, try again later\r\n", reason)
}

// Replies that name the fix in the client's own words.
var (
	errAuthRequired = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0},
		Message: `Authentication required: turn on "My outgoing server (SMTP) requires authentication" in your mail client, with the same username (your full email address) and password as for incoming mail`}
	errRelay = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1},
		Message: "Relay access denied: this server only accepts mail for its own domains; to send mail, use the submission port with authentication"}
	errUnknownUser = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user here"}
	errTempFailure = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Temporary local problem, please try again later"}
	errBadAddress  = &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 1, 3}, Message: "Bad address syntax"}
	errClosing     = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "Connection closed"}
)

// NewSession implements smtp.Backend: the session keeps its
// generation's options.
func (s *generation) NewSession(c *smtp.Conn) (smtp.Session, error) {
	remote := netip.Addr{}
	if ap, err := netip.ParseAddrPort(c.Conn().RemoteAddr().String()); err == nil {
		remote = ap.Addr().Unmap()
	}
	_, isTLS := c.TLSConnectionState()
	sess := &session{s: s, conn: c, remote: remote, tls: isTLS || s.opts.ImplicitTLS}
	if s.opts.Mode == Submission {
		return &submissionSession{session: sess}, nil
	}
	return sess, nil
}

// session is the inbound session; submissionSession adds AUTH.
type session struct {
	s      *generation
	conn   *smtp.Conn
	remote netip.Addr
	tls    bool

	account string // authenticated account (submission)
	unknown int    // unknown local recipients in this connection
	from    string
	local   []string // accounts to deliver to
	relay   []string // remote recipients to queue
}

type submissionSession struct {
	*session
}

var (
	_ smtp.Backend     = (*generation)(nil)
	_ smtp.AuthSession = (*submissionSession)(nil)
)

func (ss *session) event(kind events.Kind, result events.Result, detail string) {
	ss.s.opts.Events.Emit(events.Event{Kind: kind, Proto: ss.s.opts.Mode.Proto(), Remote: ss.remote, TLS: ss.isTLS(),
		Account: ss.account, Result: result, Detail: detail, Client: ss.conn.Hostname()})
}

func (ss *session) isTLS() bool {
	_, ok := ss.conn.TLSConnectionState()
	return ok || ss.s.opts.ImplicitTLS
}

// Reset implements smtp.Session.
func (ss *session) Reset() {
	ss.from, ss.local, ss.relay = "", nil, nil
}

// Logout implements smtp.Session.
func (ss *session) Logout() error { return nil }

// AuthMechanisms implements smtp.AuthSession.
func (ss *submissionSession) AuthMechanisms() []string { return []string{sasl.Plain, sasl.Login} }

// Auth implements smtp.AuthSession.
func (ss *submissionSession) Auth(mech string) (sasl.Server, error) {
	check := func(username, password string) error {
		if ss.closed() {
			return errClosing
		}
		account, err := ss.s.opts.Auth.Authenticate(context.Background(), auth.Attempt{
			Proto: events.ProtoSubmission, Remote: ss.remote, TLS: ss.isTLS(), Username: username, Password: password, Client: ss.conn.Hostname()})
		var fe *auth.FormError
		var te *auth.ThrottledError
		switch {
		case err == nil:
			ss.account = account
			ss.loggedIn()
			return nil
		case errors.As(err, &fe):
			// RFC 4954 §6: 535 5.7.8 for invalid credentials.
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Authentication failed: " + fe.Error()}
		case errors.As(err, &te):
			return &smtp.SMTPError{Code: 454, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Temporary authentication failure: " + te.Error()}
		case errors.Is(err, auth.ErrBadCredentials):
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Authentication failed: wrong username or password"}
		default:
			ss.s.log.Error("authentication", "err", err)
			return &smtp.SMTPError{Code: 454, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Temporary authentication failure"}
		}
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, username, password string) error {
			if identity != "" && identity != username {
				return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Authentication failed: authorization identity must be empty or equal the username"}
			}
			return check(username, password)
		}), nil
	case sasl.Login:
		return &loginServer{check: check}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

// loginServer is the server side of the LOGIN mechanism
// (draft-murchison-sasl-login): prompts "Username:" and "Password:".
type loginServer struct {
	check    func(username, password string) error
	username string
	step     int
}

func (l *loginServer) Next(response []byte) ([]byte, bool, error) {
	switch l.step {
	case 0:
		l.step++
		if len(response) > 0 { // initial response carries the username
			l.username = string(response)
			l.step++
			return []byte("Password:"), false, nil
		}
		return []byte("Username:"), false, nil
	case 1:
		l.username = string(response)
		l.step++
		return []byte("Password:"), false, nil
	default:
		return nil, true, l.check(l.username, string(response))
	}
}

// Mail implements smtp.Session.
func (ss *submissionSession) Mail(from string, opts *smtp.MailOptions) error {
	if ss.closed() {
		return errClosing
	}
	if ss.account == "" {
		// Attribute the refusal to the sender's account when it is ours:
		// support looks it up by that address.
		ev := events.Event{Kind: events.SubmissionRefused, Proto: ss.s.opts.Mode.Proto(), Remote: ss.remote, TLS: ss.isTLS(),
			Result: events.ResultAuthRequired, Detail: "MAIL FROM:<" + from + "> without AUTH", Client: ss.conn.Hostname()}
		if account, ok := ss.s.opts.Directory.Resolve(from); ok {
			ev.Account = account
		}
		ss.s.opts.Events.Emit(ev)
		return errAuthRequired
	}
	if !ss.s.opts.Directory.MaySendAs(ss.account, from) {
		ss.event(events.SubmissionRefused, events.ResultForgedSender, "MAIL FROM:<"+from+">")
		return &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 7, 1},
			Message: fmt.Sprintf("Sender address rejected: you are logged in as %s; send from that address or one of its aliases", ss.account)}
	}
	return ss.session.Mail(from, opts)
}

// Mail implements smtp.Session (inbound: any sender, including <>).
// go-smtp refuses a SIZE= over MaxMessageBytes itself (552, RFC 1870).
func (ss *session) Mail(from string, opts *smtp.MailOptions) error {
	if ss.closed() {
		return errClosing
	}
	ss.from = from
	return nil
}

// Rcpt implements smtp.Session.
func (ss *session) Rcpt(to string, opts *smtp.RcptOptions) error {
	if ss.closed() {
		return errClosing
	}
	addr, err := autoconfig.ParseAddress(to)
	if err != nil {
		return errBadAddress
	}
	if !ss.s.opts.Directory.IsLocalDomain(addr.Domain) {
		if ss.s.opts.Mode == Inbound {
			ss.event(events.SubmissionRefused, events.ResultRelay, "RCPT TO:<"+to+"> from MAIL FROM:<"+ss.from+">")
			return errRelay
		}
		if err := ss.checkSendLimit(to); err != nil {
			return err
		}
		ss.relay = append(ss.relay, addr.String())
		return nil
	}
	account, ok := ss.s.opts.Directory.Resolve(addr.String())
	if !ok {
		ss.event(events.SubmissionRefused, events.ResultUnknownRecipient, "RCPT TO:<"+to+">")
		return ss.unknownRecipient()
	}
	ss.local = append(ss.local, account)
	if ss.s.opts.Mode == Inbound {
		ss.loggedIn()
	}
	return nil
}

// checkSendLimit refuses a recipient of another domain over the
// account's sending limit, with a reply the customer understands:
// whoever sends mass mail with a stolen password is stopped, and the
// customer who really sent that much knows when to go on.
func (ss *session) checkSendLimit(to string) error {
	lim := ss.s.opts.SendLimit
	if lim == nil || ss.account == "" {
		return nil
	}
	ok, limit, wait := lim.AllowRecipient(ss.account)
	if ok {
		return nil
	}
	ss.event(events.SubmissionRefused, events.ResultSendLimit, fmt.Sprintf("RCPT TO:<%s>: over the sending limit of %d recipients per hour", to, limit))
	minutes := max(1, int((wait+time.Minute-1)/time.Minute))
	return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: fmt.Sprintf(
		"Sending limit reached: this account may send to %d recipients per hour and has; try the rest again in %d minute(s). "+
			"If you did not send that much mail, change your password now: someone else may be using your account.", limit, minutes)}
}

// unknownRecipient answers an unknown local recipient: 550 at first,
// then slower, then 421 and the end of the connection, so that guessing
// addresses (a directory harvest) costs the guesser time and
// connections.
func (ss *session) unknownRecipient() error {
	ss.unknown++
	o := &ss.s.opts
	if ss.unknown > o.UnknownRecipientsMax {
		if o.OnHarvest != nil {
			o.OnHarvest("disconnected")
		}
		ss.s.log.Warn("too many unknown recipients: closing the connection", "remote", ss.remote, "unknown", ss.unknown-1)
		c := ss.conn.Conn()
		_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "421 4.7.0 Too many unknown recipients, closing connection\r\n")
		c.Close()
		return errClosing
	}
	if ss.unknown > o.UnknownRecipientsSlow {
		if o.OnHarvest != nil {
			o.OnHarvest("slowed")
		}
		time.Sleep(min(time.Duration(ss.unknown-o.UnknownRecipientsSlow)*time.Second, 5*time.Second))
	}
	return errUnknownUser
}

// loggedIn tells the connection limit that this is a customer's
// connection now.
func (ss *session) loggedIn() {
	if f := ss.s.opts.LoggedIn; f != nil {
		f(ss.conn.Conn().RemoteAddr())
	}
}

// closed reports whether the connection was closed under the library,
// after a read timed out: the library may still hand over the partial
// line it read, which must not be acted on.
func (ss *session) closed() bool {
	var c net.Conn = ss.conn.Conn()
	for c != nil {
		if cc, ok := c.(interface{ Closed() bool }); ok && cc.Closed() {
			return true
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return false
		}
		c = u.NetConn()
	}
	return false
}

// Data implements smtp.Session: spool the message with our trace
// headers, then store every copy; 250 only when all are durable.
func (ss *session) Data(r io.Reader) error {
	spool, err := os.CreateTemp(ss.s.opts.SpoolDir, SpoolPattern)
	if err != nil {
		ss.s.log.Error("spool", "err", err)
		return errTempFailure
	}
	defer func() {
		spool.Close()
		os.Remove(spool.Name())
	}()
	if _, err := io.WriteString(spool, ss.traceHeaders()); err != nil {
		ss.s.log.Error("spool", "err", err)
		return errTempFailure
	}
	if _, err := io.Copy(spool, r); err != nil {
		var se *smtp.SMTPError
		if errors.As(err, &se) {
			return se // message too large
		}
		if errors.Is(err, smtp.ErrTooLongLine) {
			// RFC 5321 §4.5.3.1.6 allows 1000 octets per line.
			return &smtp.SMTPError{Code: 500, EnhancedCode: smtp.EnhancedCode{5, 5, 2},
				Message: fmt.Sprintf("Line too long: a line of the message has more than %d characters", ss.s.opts.MaxLineLength)}
		}
		ss.s.log.Warn("reading message", "err", err)
		return errTempFailure
	}
	deliver := func(f func(io.Reader) error) error {
		if _, err := spool.Seek(0, io.SeekStart); err != nil {
			return err
		}
		return f(spool)
	}
	for _, account := range dedupe(ss.local) {
		if err := deliver(func(m io.Reader) error { return ss.s.opts.Deliverer.DeliverLocal(account, m) }); err != nil {
			ss.s.log.Error("delivery", "account", account, "err", err)
			return errTempFailure
		}
		ss.event(events.Delivery, events.ResultOK, "local "+account)
	}
	if len(ss.relay) > 0 {
		if err := deliver(func(m io.Reader) error { return ss.s.opts.Deliverer.Enqueue(ss.from, ss.relay, m) }); err != nil {
			ss.s.log.Error("queue", "err", err)
			return errTempFailure
		}
		ss.event(events.Delivery, events.ResultOK, fmt.Sprintf("queued for %d remote recipient(s)", len(ss.relay)))
	}
	return nil
}

func dedupe(list []string) []string {
	seen := map[string]bool{}
	out := list[:0:0]
	for _, s := range list {
		k := strings.ToLower(s)
		if !seen[k] {
			seen[k] = true
			out = append(out, s)
		}
	}
	return out
}

// traceHeaders are Return-Path (RFC 5321 §4.4) and Received.
func (ss *session) traceHeaders() string {
	with := "ESMTP"
	if ss.isTLS() {
		with += "S"
	}
	if ss.account != "" {
		with += "A" // RFC 3848
	}
	helo := sanitize(ss.conn.Hostname())
	return fmt.Sprintf("Return-Path: <%s>\r\nReceived: from %s (%s) by %s (mailsetup) with %s; %s\r\n",
		sanitize(ss.from), helo, ss.remote, ss.s.opts.Hostname, with, time.Now().Format(time.RFC1123Z))
}

// sanitize keeps client-supplied text from breaking a header line.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}
