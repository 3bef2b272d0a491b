package mailstore

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// The Maildir on disk: the names of this package's files in it, creating
// a user's Maildir and a folder's, and removing what interrupted
// operations left behind. The layout is in the package documentation.

const (
	indexFile         = "mailsetup.index"
	uidvalidityFile   = "mailsetup.uidvalidity"
	subscriptionsFile = "mailsetup.subscriptions"

	// tmpMaxAge: maildir(5) says a file in tmp/ untouched for 36 hours
	// is garbage.
	tmpMaxAge = 36 * time.Hour
)

// Names of temporary directories inside a Maildir.
const (
	tmpDirPrefix   = "mailsetup-tmp-"
	trashDirPrefix = "mailsetup-trash-"
)

func randomSuffix() string {
	var r [6]byte
	_, _ = rand.Read(r[:])
	return hex.EncodeToString(r[:])
}

func isMaildir(dir string) bool {
	fi, err := os.Stat(filepath.Join(dir, "cur"))
	return err == nil && fi.IsDir()
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

// cleanTmp removes files older than tmpMaxAge from the mailbox's tmp/.
func (st *mbox) cleanTmp() {
	dir := filepath.Join(st.dir, "tmp")
	names, err := readDirNames(dir)
	if err != nil {
		return
	}
	cutoff := st.s.now().Add(-tmpMaxAge)
	for _, n := range names {
		p := filepath.Join(dir, n)
		fi, err := os.Lstat(p)
		// The modification time of a message being delivered is its
		// internal date, often long past: its ctime says it is new.
		if err != nil || fi.IsDir() || !fi.ModTime().Before(cutoff) || !changeTime(fi).Before(cutoff) {
			continue
		}
		if err := os.Remove(p); err != nil {
			st.s.log.Warn("mailstore: removing stale file from tmp/", "mailbox", st.logName, "file", n, "err", err)
		}
	}
}
