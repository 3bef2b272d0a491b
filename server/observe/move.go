package observe

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// SnapshotReader reads a snapshot one account at a time, so that a
// snapshot of any size is copied in bounded memory (mailsetup db
// import).
type SnapshotReader struct {
	dec     *json.Decoder
	version int
	state   int // 0 before '{', 1 in the object, 2 in "accounts", 3 done
	n       int // accounts read
}

// NewSnapshotReader reads the snapshot in r.
func NewSnapshotReader(r io.Reader) *SnapshotReader {
	return &SnapshotReader{dec: json.NewDecoder(bufio.NewReaderSize(r, 64<<10))}
}

// Next returns the next account's key (lower case), the time of its
// latest event (Unix seconds) and its JSON; io.EOF after the last. An
// account that does not decode is an error naming its position.
func (sr *SnapshotReader) Next() (key string, last int64, raw json.RawMessage, err error) {
	a, raw, err := sr.next()
	if err != nil {
		return "", 0, nil, err
	}
	key = accountKey(a.Key)
	if key == "" && !strings.Contains(a.Key, "@") {
		key = localPartKey(a.Key)
	}
	if key == "" {
		return "", 0, nil, fmt.Errorf("account %d: key %q is neither an address nor a local part", sr.n, a.Key)
	}
	return strings.Clone(key), a.Last, raw, nil
}

// next returns the next account decoded and its JSON.
func (sr *SnapshotReader) next() (*account, json.RawMessage, error) {
	for {
		switch sr.state {
		case 0:
			if err := sr.delim('{'); err != nil {
				return nil, nil, err
			}
			sr.state = 1
		case 1:
			if !sr.dec.More() {
				if err := sr.delim('}'); err != nil {
					return nil, nil, err
				}
				if sr.version == 0 {
					return nil, nil, errors.New("no format version")
				}
				if _, err := sr.dec.Token(); err != io.EOF {
					return nil, nil, errors.New("data after the snapshot")
				}
				sr.state = 3
				continue
			}
			tok, err := sr.dec.Token()
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			if err != nil {
				return nil, nil, err
			}
			switch tok {
			case "version":
				if err := sr.dec.Decode(&sr.version); err != nil {
					return nil, nil, fmt.Errorf("version: %w", err)
				}
				if sr.version != SnapshotVersion {
					return nil, nil, fmt.Errorf("%w %d (this program reads version %d)", ErrSnapshotVersion, sr.version, SnapshotVersion)
				}
			case "accounts":
				if sr.version == 0 {
					return nil, nil, errors.New(`"accounts" before "version"`)
				}
				if err := sr.delim('['); err != nil {
					return nil, nil, fmt.Errorf("accounts: %w", err)
				}
				sr.state = 2
			default:
				var skip json.RawMessage
				if err := sr.dec.Decode(&skip); err != nil {
					return nil, nil, err
				}
			}
		case 2:
			if !sr.dec.More() {
				if err := sr.delim(']'); err != nil {
					return nil, nil, fmt.Errorf("accounts: %w", err)
				}
				sr.state = 1
				continue
			}
			sr.n++
			var raw json.RawMessage
			if err := sr.dec.Decode(&raw); err != nil {
				return nil, nil, fmt.Errorf("account %d: %w", sr.n, err)
			}
			a := &account{}
			if err := json.Unmarshal(raw, a); err != nil {
				return nil, nil, fmt.Errorf("account %d: %w", sr.n, err)
			}
			return a, raw, nil
		default:
			return nil, nil, io.EOF
		}
	}
}

func (sr *SnapshotReader) delim(want json.Delim) error {
	tok, err := sr.dec.Token()
	if err == io.EOF {
		return io.ErrUnexpectedEOF // only the end of a whole snapshot is io.EOF
	}
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("want %q, found %v", want, tok)
	}
	return nil
}

// SnapshotWriter writes a snapshot one account at a time (Store.Save and
// mailsetup db export). Accounts go least recently seen first: a loaded
// snapshot keeps the last one as the most recently seen.
type SnapshotWriter struct {
	w     *bufio.Writer
	first bool
}

// NewSnapshotWriter starts a snapshot in w.
func NewSnapshotWriter(w io.Writer, retentionDays int, savedAt time.Time) *SnapshotWriter {
	bw := bufio.NewWriterSize(w, 64<<10)
	fmt.Fprintf(bw, "{\"version\":%d,\"saved_at\":%q,\"retention_days\":%d,\"accounts\":[\n",
		SnapshotVersion, savedAt.UTC().Format(time.RFC3339), retentionDays)
	return &SnapshotWriter{w: bw, first: true}
}

// Add writes one account's JSON (as Next returned it).
func (sw *SnapshotWriter) Add(raw []byte) error {
	if !sw.first {
		sw.w.WriteByte(',')
	}
	sw.first = false
	sw.w.Write(raw)
	return sw.w.WriteByte('\n')
}

// Close ends the snapshot and flushes it.
func (sw *SnapshotWriter) Close() error {
	sw.w.WriteString("]}\n")
	return sw.w.Flush()
}

// Merge adds accounts read from elsewhere (the database's observations,
// least recently seen first): rows calls add with each account's JSON.
// An account the store holds with an event as late is left as it is;
// the others are held to the store's rules as a loaded snapshot is. It
// returns how many were taken.
func (s *Store) Merge(rows func(add func(raw []byte) error) error) (int, error) {
	n := 0
	defer func() {
		s.mu.Lock()
		s.rebuildTroubled()
		s.rebuildRedownloaders()
		s.mu.Unlock()
	}()
	err := rows(func(raw []byte) error {
		a := &account{}
		if err := json.Unmarshal(raw, a); err != nil {
			return fmt.Errorf("observe: account %d: %w", n+1, err)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		now := s.now()
		if old := s.accounts[strings.ToLower(strings.TrimSpace(a.Key))]; old == nil || old.Last < a.Last {
			s.insertLoaded(a, dayOf(now.Unix()), s.cut(now))
			s.gen++
			n++
		}
		return nil
	})
	return n, err
}

// Mark is the store's current state for Changed.
func (s *Store) Mark() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gen
}

// Changed calls each with the JSON of every account an event changed
// since mark (a value Mark or Changed returned), a chunk of accounts at
// a time without holding the store, and returns the mark to pass next
// time; after an error it returns mark, so that nothing is skipped.
func (s *Store) Changed(mark uint64, each func(key string, last int64, raw []byte) error) (uint64, error) {
	s.mu.Lock()
	next := s.gen
	var keys []string
	for a := s.head; a != nil; a = a.next {
		if a.changed > mark {
			keys = append(keys, a.Key)
		}
	}
	s.mu.Unlock()
	buf := make([]account, 0, chunk)
	for len(keys) > 0 {
		n := min(chunk, len(keys))
		buf = buf[:0]
		s.mu.Lock()
		for _, k := range keys[:n] {
			if a := s.accounts[k]; a != nil {
				buf = append(buf, a.clone())
			}
		}
		s.mu.Unlock()
		keys = keys[n:]
		for i := range buf {
			b, err := json.Marshal(&buf[i])
			if err == nil {
				err = each(buf[i].Key, buf[i].Last, b)
			}
			if err != nil {
				return mark, err
			}
		}
	}
	return next, nil
}
