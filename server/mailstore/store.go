package mailstore

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
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
