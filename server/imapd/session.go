package imapd

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"mailsetup/server/auth"
	"mailsetup/server/events"
	"mailsetup/server/imapd/filter"
	"mailsetup/server/mailstore"
)

// session is one IMAP connection's state.
type session struct {
	s      *Server
	ic     *imapserver.Conn
	c      *filter.Conn
	remote netip.Addr
	log    *slog.Logger
	// insecure and maxLiteral are the server's AllowInsecureAuth and
	// MaxLiteralBytes when the connection started.
	insecure   bool
	maxLiteral int64

	// busy counts session calls in progress (IDLE excluded), so that
	// Shutdown says BYE between commands only.
	busy    atomic.Int32
	byeOnce sync.Once

	mu      sync.Mutex // guards account and client (the filter handles ID)
	account string
	// client is the name the client gave in ID (RFC 2971), for the
	// login events.
	client string

	user     *mailstore.User
	failures int
	view     *view // the selected mailbox, nil when none
}

var (
	_ imapserver.Session            = (*session)(nil)
	_ imapserver.SessionNamespace   = (*session)(nil)
	_ imapserver.SessionMove        = (*session)(nil)
	_ imapserver.SessionAppendLimit = (*session)(nil)
)

func remoteAddr(a net.Addr) netip.Addr {
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// enter marks the session busy for the duration of a call:
// defer s.enter()().
func (s *session) enter() func() {
	s.busy.Add(1)
	return func() { s.busy.Add(-1) }
}

func (s *session) loggedIn() bool { return s.accountName() != "" }

// Authenticated implements filter.Session.
func (s *session) Authenticated() bool { return s.loggedIn() }

func (s *session) accountName() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.account
}

// byeIfIdle ends the connection with an untagged BYE unless a command is
// being handled.
func (s *session) byeIfIdle(text string) {
	if s.busy.Load() > 0 {
		return
	}
	s.byeOnce.Do(func() {
		go s.ic.Bye(text) // may wait for a response being written
	})
}

// Close implements imapserver.Session. An IDLE goroutine may still be
// finishing, so the view is left alone.
func (s *session) Close() error {
	s.s.forget(s)
	return nil
}

// Errors answered to the client, with RFC 5530 codes.
var (
	errTemporary = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable,
		Text: "temporary problem on the server, please try again later"}
	errBadCredentials = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAuthenticationFailed,
		Text: "wrong username or password (the username is your full email address)"}
	errPrivacy = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodePrivacyRequired,
		Text: "TLS is required before login: turn on SSL/TLS or STARTTLS in your mail client"}
	errReadOnly = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot,
		Text: "the mailbox is open read-only (EXAMINE)"}
	errNoSelect = &imap.Error{Type: imap.StatusResponseTypeBad, Code: imap.ResponseCodeClientBug,
		Text: "no mailbox selected"}
)

// mapStoreError turns a mailstore error into the reply for what was
// being done; unknown errors are logged and answered as temporary.
func (s *session) mapStoreError(err error, doing string) error {
	var ie *imap.Error
	switch {
	case errors.As(err, &ie):
		return err
	case errors.Is(err, mailstore.ErrNoMailbox):
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNonExistent, Text: "no such mailbox"}
	case errors.Is(err, mailstore.ErrMailboxExists):
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAlreadyExists, Text: "the mailbox already exists"}
	case errors.Is(err, mailstore.ErrBadName):
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot,
			Text: `not allowed: mailbox names may not contain ".", "*", "%" or control characters, nor empty levels, and INBOX cannot be deleted`}
	case errors.Is(err, mailstore.ErrBadFlag):
		return &imap.Error{Type: imap.StatusResponseTypeBad, Code: imap.ResponseCodeClientBug, Text: "invalid flag"}
	case errors.Is(err, mailstore.ErrTooLarge):
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTooBig, Text: "the message is too large"}
	case errors.Is(err, mailstore.ErrOverQuota):
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeOverQuota, Text: "the mailbox is full: delete some messages and empty the trash"}
	case errors.Is(err, mailstore.ErrNoMessage):
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: "EXPUNGEISSUED", Text: "the message was deleted meanwhile"}
	}
	s.log.Error("imap: "+doing, "account", s.accountName(), "err", err)
	return errTemporary
}

// Login implements imapserver.Session (LOGIN and AUTHENTICATE PLAIN).
func (s *session) Login(username, password string) error {
	defer s.enter()()
	isTLS := s.c.TLS()
	if !isTLS && !s.insecure {
		return errPrivacy // the filter refuses earlier; kept as a guard
	}
	ctx, cancel := context.WithTimeout(context.Background(), authTimeout)
	defer cancel()
	s.mu.Lock()
	client := s.client
	s.mu.Unlock()
	address, err := s.s.opts.Auth.Authenticate(ctx, auth.Attempt{Proto: events.ProtoIMAP, Remote: s.remote, TLS: isTLS, Username: username, Password: password, Client: client})
	var fe *auth.FormError
	var te *auth.ThrottledError
	switch {
	case errors.As(err, &fe):
		s.failed()
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAuthenticationFailed, Text: fe.Error()}
	case errors.As(err, &te):
		s.failed()
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable, Text: te.Error()}
	case errors.Is(err, auth.ErrBadCredentials):
		s.failed()
		return errBadCredentials
	case err != nil:
		s.log.Error("imap: checking credentials", "username", username, "err", err)
		return errTemporary
	}
	u, err := s.s.opts.Store.User(address)
	if err != nil {
		return s.mapStoreError(err, "opening mail storage")
	}
	s.mu.Lock()
	s.account = address
	s.mu.Unlock()
	s.user = u
	s.log = s.log.With("account", address)
	s.log.Debug("imap: logged in", "tls", isTLS)
	if f := s.s.opts.LoggedIn; f != nil {
		f(s.c.RemoteAddr())
	}
	return nil
}

// failed counts a failed login and ends a connection that keeps trying.
func (s *session) failed() {
	s.failures++
	if s.failures >= maxFailedLogins {
		s.c.ByeAfterReply("too many failed logins")
	}
}

// Namespace implements imapserver.SessionNamespace (RFC 2342): one
// personal namespace with "/" as the separator.
func (s *session) Namespace() (*imap.NamespaceData, error) {
	return &imap.NamespaceData{Personal: []imap.NamespaceDescriptor{{Prefix: "", Delim: delim}}}, nil
}

// AppendLimit implements imapserver.SessionAppendLimit (RFC 7889).
func (s *session) AppendLimit() uint32 { return uint32(s.maxLiteral) }

// delim is the hierarchy separator of mailbox names.
const delim = '/'

// cleanName drops a trailing separator ("CREATE foo/" creates foo, RFC
// 3501 §6.3.3).
func cleanName(name string) string {
	for len(name) > 1 && strings.HasSuffix(name, string(delim)) {
		name = strings.TrimSuffix(name, string(delim))
	}
	return name
}

// Create implements imapserver.Session.
func (s *session) Create(name string, _ *imap.CreateOptions) error {
	defer s.enter()()
	return s.storeErr(s.user.CreateMailbox(cleanName(name)), "creating a mailbox")
}

// Delete implements imapserver.Session.
func (s *session) Delete(name string) error {
	defer s.enter()()
	if strings.EqualFold(name, mailstore.Inbox) {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "INBOX cannot be deleted"}
	}
	return s.storeErr(s.user.DeleteMailbox(name), "deleting a mailbox")
}

// Rename implements imapserver.Session.
func (s *session) Rename(oldName, newName string, _ *imap.RenameOptions) error {
	defer s.enter()()
	return s.storeErr(s.user.RenameMailbox(oldName, cleanName(newName)), "renaming a mailbox")
}

// Subscribe implements imapserver.Session.
func (s *session) Subscribe(name string) error {
	defer s.enter()()
	return s.storeErr(s.user.SetSubscribed(name, true), "subscribing")
}

// Unsubscribe implements imapserver.Session.
func (s *session) Unsubscribe(name string) error {
	defer s.enter()()
	return s.storeErr(s.user.SetSubscribed(name, false), "unsubscribing")
}

func (s *session) storeErr(err error, doing string) error {
	if err == nil {
		return nil
	}
	return s.mapStoreError(err, doing)
}

// List implements imapserver.Session for LIST and LSUB, with the
// SPECIAL-USE (RFC 6154) and CHILDREN (RFC 3348) attributes, and the
// LIST-EXTENDED selection and return options the library parses.
func (s *session) List(w *imapserver.ListWriter, ref string, patterns []string, options *imap.ListOptions) error {
	defer s.enter()()
	if len(patterns) == 0 {
		// RFC 3501 §6.3.8: the separator and the root.
		return w.WriteList(&imap.ListData{Attrs: []imap.MailboxAttr{imap.MailboxAttrNoSelect}, Delim: delim, Mailbox: ""})
	}
	infos, err := s.user.Mailboxes()
	if err != nil {
		return s.mapStoreError(err, "listing mailboxes")
	}
	type entry struct {
		info     mailstore.MailboxInfo
		exists   bool
		children bool
		subChild bool // a subscribed mailbox below it
	}
	byName := map[string]*entry{}
	var order []string
	for _, info := range infos {
		byName[info.Name] = &entry{info: info, exists: true}
		order = append(order, info.Name)
	}
	// Parents that do not exist (their children were created alone, or
	// they were deleted) are listed as \NonExistent with children.
	for _, info := range infos {
		name := info.Name
		for i := strings.LastIndexByte(name, delim); i > 0; i = strings.LastIndexByte(name, delim) {
			name = name[:i]
			e := byName[name]
			if e == nil {
				e = &entry{info: mailstore.MailboxInfo{Name: name}}
				byName[name] = e
				order = append(order, name)
			}
			e.children = true
			e.subChild = e.subChild || info.Subscribed
		}
	}
	for _, name := range order {
		e := byName[name]
		if !matchAny(name, ref, patterns) {
			continue
		}
		if options.SelectSubscribed && !e.info.Subscribed && !(options.SelectRecursiveMatch && e.subChild) {
			continue
		}
		if options.SelectSpecialUse && e.info.SpecialUse == "" {
			continue
		}
		if !e.exists && !e.children {
			continue
		}
		data := &imap.ListData{Delim: delim, Mailbox: name}
		if !e.exists {
			data.Attrs = append(data.Attrs, imap.MailboxAttrNoSelect, imap.MailboxAttrNonExistent)
		}
		if e.children {
			data.Attrs = append(data.Attrs, imap.MailboxAttrHasChildren)
		} else {
			data.Attrs = append(data.Attrs, imap.MailboxAttrHasNoChildren)
		}
		if e.info.Subscribed {
			data.Attrs = append(data.Attrs, imap.MailboxAttrSubscribed)
		}
		if e.info.SpecialUse != "" {
			data.Attrs = append(data.Attrs, imap.MailboxAttr(e.info.SpecialUse))
		}
		if options.SelectRecursiveMatch && !e.info.Subscribed && e.subChild {
			data.ChildInfo = &imap.ListDataChildInfo{Subscribed: true}
		}
		if options.ReturnStatus != nil && e.exists {
			st, err := s.status(name, options.ReturnStatus)
			if err == nil {
				data.Status = st
			}
		}
		if err := w.WriteList(data); err != nil {
			return err
		}
	}
	return nil
}

// matchAny reports whether a mailbox name matches one of the LIST
// patterns; INBOX matches case-insensitively (RFC 3501 §5.1).
func matchAny(name, ref string, patterns []string) bool {
	for _, p := range patterns {
		if imapserver.MatchList(name, delim, ref, p) {
			return true
		}
		if name == mailstore.Inbox && imapserver.MatchList("inbox", delim, strings.ToLower(ref), strings.ToLower(p)) {
			return true
		}
	}
	return false
}

// Status implements imapserver.Session.
func (s *session) Status(name string, options *imap.StatusOptions) (*imap.StatusData, error) {
	defer s.enter()()
	st, err := s.status(name, options)
	if err != nil {
		return nil, s.mapStoreError(err, "reading mailbox status")
	}
	return st, nil
}

func (s *session) status(name string, options *imap.StatusOptions) (*imap.StatusData, error) {
	mb, err := s.user.Mailbox(name)
	if err != nil {
		return nil, err
	}
	snap, err := mb.Snapshot()
	if err != nil {
		return nil, err
	}
	data := &imap.StatusData{Mailbox: mb.Name()}
	var unseen, deleted uint32
	var size int64
	for _, m := range snap.Messages {
		if !m.HasFlag(mailstore.FlagSeen) {
			unseen++
		}
		if m.HasFlag(mailstore.FlagDeleted) {
			deleted++
		}
		size += m.Size
	}
	num := uint32(len(snap.Messages))
	var zero uint32
	if options.NumMessages {
		data.NumMessages = &num
	}
	if options.NumRecent {
		data.NumRecent = &zero
	}
	if options.UIDNext {
		data.UIDNext = imap.UID(snap.UIDNext)
	}
	if options.UIDValidity {
		data.UIDValidity = snap.UIDValidity
	}
	if options.NumUnseen {
		data.NumUnseen = &unseen
	}
	if options.NumDeleted {
		data.NumDeleted = &deleted
	}
	if options.Size {
		data.Size = &size
	}
	if options.AppendLimit {
		limit := s.AppendLimit()
		data.AppendLimit = &limit
	}
	return data, nil
}

// Append implements imapserver.Session.
func (s *session) Append(name string, r imap.LiteralReader, options *imap.AppendOptions) (*imap.AppendData, error) {
	defer s.enter()()
	mb, err := s.user.Mailbox(name)
	if errors.Is(err, mailstore.ErrNoMailbox) {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTryCreate, Text: "no such mailbox: create it first"}
	}
	if err != nil {
		return nil, s.mapStoreError(err, "opening a mailbox for APPEND")
	}
	msg, err := s.user.Deliver(mb.Name(), r, mailstore.DeliverOptions{
		Flags:        storableFlags(options.Flags),
		InternalDate: options.Time,
		MaxSize:      s.maxLiteral,
		QuotaBytes:   s.quota(),
	})
	if err != nil {
		return nil, s.mapStoreError(err, "appending a message")
	}
	return &imap.AppendData{UID: imap.UID(msg.UID), UIDValidity: mb.UIDValidity()}, nil
}

func (s *session) quota() int64 {
	if s.s.opts.QuotaBytes == nil {
		return 0
	}
	return s.s.opts.QuotaBytes(s.accountName())
}

// storableFlags converts flags for mailstore, leaving out \Recent, which
// only the server sets (RFC 3501 §2.3.2).
func storableFlags(flags []imap.Flag) []string {
	out := make([]string, 0, len(flags))
	for _, f := range flags {
		if strings.EqualFold(string(f), `\Recent`) {
			continue
		}
		out = append(out, string(f))
	}
	return out
}
