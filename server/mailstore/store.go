package mailstore

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

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

// Options configure a Store. The zero value is the production setting.
type Options struct {
	// Logger receives rebuilds, pick-ups and damage found on disk. Nil:
	// discard.
	Logger *slog.Logger
	// Hostname is written into Maildir file names (maildir(5)). Default:
	// os.Hostname(). It only has to make names unique per host; changing
	// it never changes existing UIDLs.
	Hostname string
	// NoSync skips every fsync. For tests and benchmarks only: with it a
	// crash can lose acknowledged mail.
	NoSync bool
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
}

// Store is a storage root holding the Maildirs of all users. It is safe
// for concurrent use; open one Store per root per process.
type Store struct {
	root   string
	log    *slog.Logger
	host   string
	pid    int
	nosync bool
	now    func() time.Time

	counter atomic.Uint64

	mu     sync.Mutex
	boxes  map[string]*mbox      // by mailbox directory
	users  map[string]*userState // by Maildir directory
	lastUV uint32
}

// Open opens (creating if needed) the storage root.
func Open(root string, opts Options) (*Store, error) {
	if root == "" {
		return nil, errors.New("mailstore: empty storage root")
	}
	s := &Store{
		root:   filepath.Clean(root),
		log:    opts.Logger,
		nosync: opts.NoSync,
		now:    opts.Now,
		pid:    os.Getpid(),
		boxes:  make(map[string]*mbox),
		users:  make(map[string]*userState),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	host := opts.Hostname
	if host == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("mailstore: host name for Maildir file names: %w", err)
		}
		host = h
	}
	s.host = sanitizeHost(host)
	if err := os.MkdirAll(s.root, 0o700); err != nil {
		return nil, fmt.Errorf("mailstore: creating storage root: %w", err)
	}
	return s, nil
}

// Evict drops the in-memory index of every mailbox that has not been used
// for idle or longer and returns how many it dropped; the next use loads
// the index again. Call it periodically to bound memory.
func (s *Store) Evict(idle time.Duration) int {
	s.mu.Lock()
	boxes := make([]*mbox, 0, len(s.boxes))
	for dir, st := range s.boxes {
		if st.gone.Load() {
			delete(s.boxes, dir)
			continue
		}
		boxes = append(boxes, st)
	}
	s.mu.Unlock()
	now := s.now()
	n := 0
	for _, st := range boxes {
		if !st.mu.TryLock() {
			continue
		}
		if st.loaded && now.Sub(st.lastUse) >= idle {
			st.unload()
			n++
		}
		st.mu.Unlock()
	}
	return n
}

// box returns the shared state of the mailbox in dir.
func (s *Store) box(dir, logName string) *mbox {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.boxes[dir]
	if st == nil || st.gone.Load() {
		st = &mbox{s: s, dir: dir, logName: logName, changed: make(chan struct{})}
		s.boxes[dir] = st
	}
	return st
}

// existingBox returns the shared state of dir if one is registered.
func (s *Store) existingBox(dir string) *mbox {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.boxes[dir]
}

// dropBox marks the state of dir gone (its directory was deleted, renamed
// or replaced) and forgets it. The caller holds no mailbox lock.
func (s *Store) dropBox(dir string) {
	s.mu.Lock()
	st := s.boxes[dir]
	delete(s.boxes, dir)
	s.mu.Unlock()
	if st != nil {
		st.mu.Lock()
		st.markGone()
		st.mu.Unlock()
	}
}

// newUIDValidity returns a UIDVALIDITY larger than above and than every
// value this Store handed out, based on the clock so that values also grow
// across restarts (RFC 3501 §2.3.1.1).
func (s *Store) newUIDValidity(above uint32) uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := uint32(s.now().Unix())
	v = max(v, s.lastUV+1, above+1, 1)
	s.lastUV = v
	return v
}

// newUnique returns the unique part of a new Maildir file name. It is
// also the message's UIDL, so the host name is shortened to keep it within
// RFC 1939's 70 characters.
func (s *Store) newUnique(now time.Time) string {
	var r [4]byte
	_, _ = rand.Read(r[:])
	prefix := fmt.Sprintf("%d.M%dP%dQ%dR%s.", now.Unix(), now.Nanosecond()/1000, s.pid,
		s.counter.Add(1), hex.EncodeToString(r[:]))
	host := s.host
	if room := MaxUIDLLen - len(prefix); len(host) > room {
		host = host[:max(room, 1)]
	}
	return prefix + host
}

func randomSuffix() string {
	var r [6]byte
	_, _ = rand.Read(r[:])
	return hex.EncodeToString(r[:])
}

// syncFile fsyncs f unless NoSync.
func (s *Store) syncFile(f *os.File) error {
	if s.nosync {
		return nil
	}
	return f.Sync()
}

// syncDir fsyncs a directory so that entries created, renamed or removed
// in it are durable.
func (s *Store) syncDir(dir string) error {
	if s.nosync {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("opening directory to sync: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("syncing directory: %w", err)
	}
	return nil
}

// writeFileAtomic replaces path with data: temporary file, fsync, rename,
// fsync of the directory.
func (s *Store) writeFileAtomic(path string, data []byte) error {
	return s.replaceFile(path+".tmp", path, time.Time{}, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// replaceFile writes a file at tmp with write, sets its modification
// time to mtime unless zero, fsyncs it, renames it over path and fsyncs
// path's directory: a crash leaves the old file or the new one, whole.
func (s *Store) replaceFile(tmp, path string, mtime time.Time, write func(io.Writer) error) error {
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	err = write(f)
	if err == nil && !mtime.IsZero() {
		err = os.Chtimes(tmp, mtime, mtime) // before the sync, so that it is durable too
	}
	if err == nil {
		err = s.syncFile(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return s.syncDir(filepath.Dir(path))
}

// splitAddress lower-cases an address and checks that its parts are safe
// as directory names.
func splitAddress(address string) (local, domain string, err error) {
	i := strings.LastIndexByte(address, '@')
	if i <= 0 || i == len(address)-1 {
		return "", "", fmt.Errorf("%w: address %q", ErrBadName, address)
	}
	local, domain = strings.ToLower(address[:i]), strings.ToLower(address[i+1:])
	for _, p := range []string{local, domain} {
		if p == "." || p == ".." || len(p) > 255 || strings.ContainsAny(p, "/\\\x00") {
			return "", "", fmt.Errorf("%w: address %q", ErrBadName, address)
		}
		for _, r := range p {
			if r < 0x20 || r == 0x7f {
				return "", "", fmt.Errorf("%w: address %q", ErrBadName, address)
			}
		}
	}
	return local, domain, nil
}

// userState is shared by all User values of one Maildir.
type userState struct {
	mu    sync.Mutex // mailbox creation, deletion, renaming, subscriptions
	ready bool       // the Maildir exists and leftovers were cleaned
}

func (s *Store) userState(dir string) *userState {
	s.mu.Lock()
	defer s.mu.Unlock()
	us := s.users[dir]
	if us == nil {
		us = &userState{}
		s.users[dir] = us
	}
	return us
}

// Names of temporary directories inside a Maildir.
const (
	tmpDirPrefix   = "mailsetup-tmp-"
	trashDirPrefix = "mailsetup-trash-"
)

// User returns the mail storage of an address (full and already
// validated), creating its Maildir with INBOX and the special-use
// mailboxes (RFC 6154) on first access.
func (s *Store) User(address string) (*User, error) {
	local, domain, err := splitAddress(address)
	if err != nil {
		return nil, err
	}
	addr := local + "@" + domain
	userDir := filepath.Join(s.root, domain, local)
	dir := filepath.Join(userDir, "Maildir")
	us := s.userState(dir)
	us.mu.Lock()
	defer us.mu.Unlock()
	if !us.ready {
		if err := s.prepareUser(userDir, dir, addr); err != nil {
			return nil, fmt.Errorf("mailstore: preparing mail storage of %s: %w", addr, err)
		}
		us.ready = true
	}
	return &User{s: s, addr: addr, dir: dir, us: us}, nil
}

// HasUser reports whether an address has mail storage (its INBOX
// Maildir), without creating it as User does: for sweeps over all
// accounts that must not create storage for accounts without mail.
func (s *Store) HasUser(address string) (bool, error) {
	local, domain, err := splitAddress(address)
	if err != nil {
		return false, err
	}
	return isMaildir(filepath.Join(s.root, domain, local, "Maildir")), nil
}

// prepareUser creates the Maildir if needed and removes leftovers of
// interrupted operations.
func (s *Store) prepareUser(userDir, dir, addr string) error {
	if _, err := os.Stat(filepath.Join(dir, "cur")); err == nil {
		s.removeLeftovers(dir, tmpDirPrefix, trashDirPrefix)
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.MkdirAll(userDir, 0o700); err != nil {
		return err
	}
	// The domain and user directories may be new: make their entries
	// durable before the Maildir appears in them.
	for _, d := range []string{s.root, filepath.Dir(userDir)} {
		if err := s.syncDir(d); err != nil {
			return err
		}
	}
	s.removeLeftovers(userDir, "Maildir."+tmpDirPrefix)
	// Build the whole Maildir aside and rename it into place, so that a
	// crash leaves either no Maildir or a complete one.
	tmp := filepath.Join(userDir, "Maildir."+tmpDirPrefix+randomSuffix())
	if err := s.makeMaildir(tmp, false); err != nil {
		_ = os.RemoveAll(tmp)
		return err
	}
	subs := []string{Inbox}
	for _, name := range specialUseNames() {
		if err := s.makeMaildir(filepath.Join(tmp, diskName(name)), true); err != nil {
			_ = os.RemoveAll(tmp)
			return err
		}
		subs = append(subs, name)
	}
	if err := s.writeFileAtomic(filepath.Join(tmp, subscriptionsFile), encodeSubscriptions(subs)); err != nil {
		_ = os.RemoveAll(tmp)
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		_ = os.RemoveAll(tmp)
		if errors.Is(err, fs.ErrExist) || errors.Is(err, syscall.ENOTEMPTY) {
			return nil // created meanwhile by another agent
		}
		return err
	}
	s.log.Info("mailstore: created mail storage", "user", addr)
	return s.syncDir(userDir)
}

// removeLeftovers removes entries of dir whose names start with one of the
// prefixes.
func (s *Store) removeLeftovers(dir string, prefixes ...string) {
	names, err := readDirNames(dir)
	if err != nil {
		return
	}
	for _, n := range names {
		for _, p := range prefixes {
			if strings.HasPrefix(n, p) {
				if err := os.RemoveAll(filepath.Join(dir, n)); err != nil {
					s.log.Warn("mailstore: removing leftover", "dir", dir, "name", n, "err", err)
				}
			}
		}
	}
}

// makeMaildir creates a complete, empty Maildir (with a fresh UIDVALIDITY
// and index) at dir; folder adds the Maildir++ maildirfolder marker.
func (s *Store) makeMaildir(dir string, folder bool) error {
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	for _, sub := range []string{"tmp", "new", "cur"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o700); err != nil {
			return err
		}
	}
	if folder {
		f, err := os.OpenFile(filepath.Join(dir, "maildirfolder"), os.O_WRONLY|os.O_CREATE, 0o600)
		if err != nil {
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	uv := s.newUIDValidity(0)
	if err := s.writeFileAtomic(filepath.Join(dir, uidvalidityFile), encodeUVFile(uv, 1)); err != nil {
		return err
	}
	if err := s.writeFileAtomic(filepath.Join(dir, indexFile), appendHeader(nil, uv, 1)); err != nil {
		return err
	}
	return s.syncDir(dir)
}

// readDirNames lists a directory without sorting or stat calls.
func readDirNames(dir string) ([]string, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.Readdirnames(-1)
}
