package observe

import (
	"bufio"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// SnapshotVersion is the snapshot format this package writes and reads.
const SnapshotVersion = 1

// ErrSnapshotVersion: the snapshot was written in a format this program
// does not read (by a newer version, most likely). Move the file away to
// start empty, or run the version that wrote it.
var ErrSnapshotVersion = errors.New("unsupported snapshot format version")

// Save writes the snapshot if anything changed since the last save. It
// prunes expired data first. Without Options.Path it does nothing.
func (s *Store) Save() error {
	if s.opts.Path == "" {
		return nil
	}
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	s.prune()
	s.mu.Lock()
	gen := s.gen
	unchanged := gen == s.savedGen
	s.mu.Unlock()
	if unchanged {
		return nil
	}
	if err := s.write(s.keys()); err != nil {
		return fmt.Errorf("observe: saving the snapshot %s: %w", s.opts.Path, err)
	}
	s.mu.Lock()
	// Changes made while writing may be missing from the file: they
	// advanced gen past this, so the next Save writes again.
	s.savedGen = max(s.savedGen, gen)
	s.mu.Unlock()
	return nil
}

// write writes the accounts of keys, least recently seen first, to a
// temporary file, syncs it and renames it over the snapshot. The
// accounts are copied a chunk at a time and encoded without the lock.
func (s *Store) write(keys []string) (err error) {
	dir := filepath.Dir(s.opts.Path)
	f, err := os.CreateTemp(dir, filepath.Base(s.opts.Path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	sw := NewSnapshotWriter(f, int(s.retDays), s.now())
	buf := make([]account, 0, chunk)
	for len(keys) > 0 {
		buf = buf[:0]
		n, groups := 0, 0
		s.mu.Lock()
		cut := s.cut(s.now())
		for ; n < len(keys) && n < chunk && groups < chunkGroups; n++ {
			if a := s.accounts[keys[n]]; a != nil {
				s.pruneAccount(a, cut)
				if s.accounts[keys[n]] == a {
					buf = append(buf, a.clone())
					groups += a.groups()
				}
			}
		}
		s.mu.Unlock()
		keys = keys[n:]
		for i := range buf {
			b, err := json.Marshal(&buf[i])
			if err != nil {
				return err
			}
			if err := sw.Add(b); err != nil {
				return err
			}
		}
	}
	if err := sw.Close(); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), s.opts.Path); err != nil {
		return err
	}
	// Make the rename durable; not every system can sync a directory.
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// clone copies a deeply (the snapshot is encoded without the lock).
func (a *account) clone() account {
	c := account{Key: a.Key, Last: a.Last, LastDelivery: a.LastDelivery,
		Logins: slices.Clone(a.Logins), Failures: slices.Clone(a.Failures),
		Refusals: slices.Clone(a.Refusals), POP3: slices.Clone(a.POP3),
		Deliveries: slices.Clone(a.Deliveries), Redownloads: slices.Clone(a.Redownloads), RedownloadLast: a.RedownloadLast,
		UIDLs: a.UIDLs, UIDLsAt: a.UIDLsAt, Sent: slices.Clone(a.Sent)}
	if a.UIDLChange != nil {
		u := *a.UIDLChange
		c.UIDLChange = &u
	}
	for i := range c.Logins {
		c.Logins[i].Days = slices.Clone(c.Logins[i].Days)
	}
	for i := range c.Failures {
		c.Failures[i].Days = slices.Clone(c.Failures[i].Days)
	}
	for i := range c.Refusals {
		c.Refusals[i].Days = slices.Clone(c.Refusals[i].Days)
	}
	for i := range c.POP3 {
		c.POP3[i].Days = slices.Clone(c.POP3[i].Days)
	}
	return c
}

// load reads the snapshot, if there is one.
func (s *Store) load() error {
	f, err := os.Open(s.opts.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("observe: %w", err)
	}
	defer f.Close()
	now := s.now()
	if err := s.decode(bufio.NewReaderSize(f, 64<<10), dayOf(now.Unix()), s.cut(now)); err != nil {
		return fmt.Errorf("observe: snapshot %s: %w", s.opts.Path, err)
	}
	s.savedGen = s.gen
	s.rebuildTroubled()
	s.rebuildRedownloaders()
	s.log.Info("observations loaded", "path", s.opts.Path, "accounts", len(s.accounts), "groups", s.groups)
	return nil
}

// decode reads a snapshot, account by account, keeping what is within
// the retention and the bounds.
func (s *Store) decode(r io.Reader, today, cut int32) error {
	sr := NewSnapshotReader(r)
	for {
		a, _, err := sr.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		s.insertLoaded(a, today, cut)
	}
}

// insertLoaded adds an account read from a snapshot as the most recently
// seen, after holding it to today's rules: the bounds, the retention and
// the text limits (the file may come from another configuration).
func (s *Store) insertLoaded(a *account, today, cut int32) {
	key := accountKey(a.Key)
	if key == "" && !strings.Contains(a.Key, "@") {
		key = localPartKey(a.Key)
	}
	if key == "" {
		return
	}
	a.Key = key
	days := func(d []dayCount) []dayCount {
		d = slices.DeleteFunc(d, func(x dayCount) bool { return x.Day < cut || x.Day > today+1 || x.N == 0 })
		slices.SortFunc(d, func(x, y dayCount) int { return int(x.Day) - int(y.Day) })
		for i := range d {
			d[i].First = min(d[i].First, secondsPerDay-1)
		}
		return d
	}
	for i := range a.Logins {
		g := &a.Logins[i]
		g.Proto, g.Username, g.Client = token(g.Proto), fit(g.Username, maxText), fit(g.Client, maxText)
		g.Days = days(g.Days)
	}
	for i := range a.Failures {
		g := &a.Failures[i]
		g.Proto, g.Result, g.Form, g.Username = token(g.Proto), token(g.Result), token(g.Form), fit(g.Username, maxText)
		g.Days = days(g.Days)
	}
	for i := range a.Refusals {
		g := &a.Refusals[i]
		g.Proto, g.Result, g.Client, g.Detail = token(g.Proto), token(g.Result), fit(g.Client, maxText), fit(g.Detail, maxText)
		g.Days = days(g.Days)
	}
	for i := range a.POP3 {
		g := &a.POP3[i]
		g.Days = slices.DeleteFunc(g.Days, func(x pop3Day) bool { return x.Day < cut || x.Day > today+1 || x.Sessions == 0 })
		slices.SortFunc(g.Days, func(x, y pop3Day) int { return int(x.Day) - int(y.Day) })
		for j := range g.Days {
			g.Days[j].First = min(g.Days[j].First, secondsPerDay-1)
		}
		g.Messages, g.Bytes = max(0, g.Messages), max(0, g.Bytes)
	}
	a.Deliveries = days(a.Deliveries)
	if len(a.Deliveries) == 0 {
		a.LastDelivery = 0
	}
	a.Sent = slices.DeleteFunc(a.Sent, func(x sentItem) bool { return dayOf(x.Sec) < cut || dayOf(x.Sec) > today+1 })
	slices.SortStableFunc(a.Sent, func(x, y sentItem) int { return cmp.Compare(x.Sec, y.Sec) })
	if len(a.Sent) > maxSent {
		a.Sent = a.Sent[len(a.Sent)-maxSent:]
	}
	for i := range a.Sent {
		a.Sent[i].Result, a.Sent[i].Detail = token(a.Sent[i].Result), fit(a.Sent[i].Detail, maxText)
	}
	a.Logins = capGroups(a.Logins, maxLogins, func(g *loginGroup) (int64, int) { return g.Last, len(g.Days) })
	a.Failures = capGroups(a.Failures, maxFailures, func(g *failureGroup) (int64, int) { return g.Last, len(g.Days) })
	a.Refusals = capGroups(a.Refusals, maxRefusals, func(g *refusalGroup) (int64, int) { return g.Last, len(g.Days) })
	a.POP3 = capGroups(a.POP3, maxPOP3, func(g *pop3Group) (int64, int) { return g.Last, len(g.Days) })
	if a.empty() {
		return
	}
	a.setOldest()
	if old := s.accounts[key]; old != nil {
		s.remove(old)
	}
	s.accounts[key] = a
	s.groups += a.groups()
	s.moveFront(a)
	s.enforce(a)
}

// capGroups drops the groups without days, then the least recently seen
// beyond max.
func capGroups[G any](s []G, max int, info func(*G) (last int64, days int)) []G {
	s = slices.DeleteFunc(s, func(g G) bool { _, n := info(&g); return n == 0 })
	if len(s) > max {
		slices.SortStableFunc(s, func(x, y G) int {
			lx, _ := info(&x)
			ly, _ := info(&y)
			switch {
			case lx > ly:
				return -1
			case lx < ly:
				return 1
			}
			return 0
		})
		clear(s[max:])
		s = s[:max]
	}
	if len(s) == 0 {
		return nil
	}
	return s
}
