// Package queue is the persistent outbound queue: mail for other domains
// accepted on submission waits here, durable, until the delivery agent
// (server/delivery) sends it. Nothing accepted is ever dropped: an item
// is a message file (ID.eml) and an envelope file (ID.json), each written
// to a temporary name, fsync'd, renamed, and the directory fsync'd before
// Enqueue returns. The agent keeps each recipient's outcome in a third
// file (ID.state, written the same way after every attempt); Remove takes
// the envelope away first, so an item is either whole or gone.
//
// A crash (kill -9, power loss) in the middle of Enqueue leaves a
// temporary file (".tmp-*") or a message without its envelope; neither
// was acknowledged, since Enqueue had not returned. Sweep removes them;
// the service calls it at start, while it holds the data directory's lock
// and before its listeners accept mail, so no Enqueue can be running.
//
// Imports: the standard library only.
package queue

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Envelope is an item's routing data.
type Envelope struct {
	ID       string    `json:"id"`
	From     string    `json:"from"`
	To       []string  `json:"to"`
	Received time.Time `json:"received"`
	Size     int64     `json:"size"`
}

// Queue is a directory of items.
type Queue struct {
	dir string
}

// Open opens (creating) the queue directory.
func Open(dir string) (*Queue, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	return &Queue{dir: dir}, nil
}

// Enqueue stores a message for the recipients and returns its id once
// the message and its envelope are durable.
func (q *Queue) Enqueue(from string, to []string, msg io.Reader) (string, error) {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	id := time.Now().UTC().Format("20060102T150405") + "-" + hex.EncodeToString(b)
	n, err := writeDurable(filepath.Join(q.dir, id+".eml"), func(w io.Writer) (int64, error) { return io.Copy(w, msg) })
	if err != nil {
		return "", fmt.Errorf("queue: writing message: %w", err)
	}
	env := Envelope{ID: id, From: from, To: to, Received: time.Now().UTC(), Size: n}
	data, err := json.Marshal(env)
	if err != nil {
		return "", err
	}
	// The envelope is written last: an item without one is an incomplete
	// write that List ignores.
	if _, err := writeDurable(filepath.Join(q.dir, id+".json"), func(w io.Writer) (int64, error) {
		k, err := w.Write(data)
		return int64(k), err
	}); err != nil {
		os.Remove(filepath.Join(q.dir, id+".eml"))
		return "", fmt.Errorf("queue: writing envelope: %w", err)
	}
	return id, nil
}

// List returns the queued envelopes, oldest first.
func (q *Queue) List() ([]Envelope, error) {
	names, err := filepath.Glob(filepath.Join(q.dir, "*.json"))
	if err != nil {
		return nil, err
	}
	var out []Envelope
	for _, n := range names {
		data, err := os.ReadFile(n)
		if err != nil {
			return nil, err
		}
		var e Envelope
		if err := json.Unmarshal(data, &e); err != nil {
			return nil, fmt.Errorf("queue: %s: %w", filepath.Base(n), err)
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b Envelope) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// tmpPrefix starts the names of the files writeDurable writes before
// renaming them into place.
const tmpPrefix = ".tmp-"

// Sweep removes what interrupted Enqueue calls left behind: temporary
// files and messages without an envelope (never acknowledged). Call it
// only while nothing enqueues, i.e. at start under the data directory's
// lock. It logs each removed file, returns their names, and logs what it
// cannot remove (that stays, and List ignores it).
func (q *Queue) Sweep(log *slog.Logger) []string {
	entries, err := os.ReadDir(q.dir)
	if err != nil {
		log.Warn("queue: cannot look for files left by a crash", "dir", q.dir, "err", err)
		return nil
	}
	have := make(map[string]bool, len(entries))
	for _, e := range entries {
		have[e.Name()] = true
	}
	var removed []string
	for _, e := range entries {
		name := e.Name()
		var why string
		switch {
		case e.IsDir():
			continue
		case strings.HasPrefix(name, tmpPrefix):
			why = "temporary file of an interrupted write"
		case strings.HasSuffix(name, ".eml") && !have[strings.TrimSuffix(name, ".eml")+".json"]:
			why = "message without an envelope: its write was interrupted before it was acknowledged, or its removal after delivery"
		case strings.HasSuffix(name, stateSuffix) && !have[strings.TrimSuffix(name, stateSuffix)+".json"]:
			why = "delivery state of a message already removed"
		case strings.HasSuffix(name, "."+RequestRetry) && !have[strings.TrimSuffix(name, "."+RequestRetry)+".json"],
			strings.HasSuffix(name, "."+RequestBounce) && !have[strings.TrimSuffix(name, "."+RequestBounce)+".json"]:
			why = "a request for a message already removed"
		default:
			continue
		}
		var size int64
		if fi, err := e.Info(); err == nil {
			size = fi.Size()
		}
		if err := os.Remove(filepath.Join(q.dir, name)); err != nil && !os.IsNotExist(err) {
			log.Warn("queue: cannot remove a file left by a crash", "file", name, "err", err)
			continue
		}
		log.Warn("queue: removed a file left by a crash", "file", name, "bytes", size, "why", why)
		removed = append(removed, name)
	}
	return removed
}

// Open returns an item's message.
func (q *Queue) Open(id string) (*os.File, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	return os.Open(filepath.Join(q.dir, id+".eml"))
}

// writeDurable writes a file through a temporary name, fsyncs it, renames
// it into place and fsyncs the directory.
func writeDurable(path string, fill func(io.Writer) (int64, error)) (int64, error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, tmpPrefix+"*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name())
	n, err := fill(tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return 0, err
	}
	d, err := os.Open(dir)
	if err != nil {
		return 0, err
	}
	defer d.Close()
	return n, d.Sync()
}

// Outcome is where one recipient of an item stands.
type Outcome string

const (
	// Pending: not yet tried, or tried and refused for now (4xx, no
	// connection); it will be tried again.
	Pending Outcome = ""
	// Delivered: the remote server accepted it (2xx).
	Delivered Outcome = "delivered"
	// Failed: refused for good (5xx, null MX) or given up after
	// queue.max_days; the sender was sent a delivery status notification.
	Failed Outcome = "failed"
)

// Recipient is one recipient's state.
type Recipient struct {
	Address string  `json:"address"`
	Outcome Outcome `json:"outcome,omitempty"`
	// Host is the server that gave the last reply; Reply that reply
	// ("550 5.1.1 user unknown") or the connection's failure.
	Host  string    `json:"host,omitempty"`
	Reply string    `json:"reply,omitempty"`
	Time  time.Time `json:"time,omitzero"`
}

// State is an item's delivery state, written durably after every
// attempt. An item without one has not been tried.
type State struct {
	Attempts    int         `json:"attempts"`
	NextAttempt time.Time   `json:"next_attempt,omitzero"`
	LastAttempt time.Time   `json:"last_attempt,omitzero"`
	Warned      bool        `json:"warned,omitempty"`
	Recipients  []Recipient `json:"recipients"`
}

// stateSuffix names an item's state file (not ".json": List reads those).
const stateSuffix = ".state"

// validID refuses ids that could name a file outside the queue.
func validID(id string) error {
	if id == "" || strings.ContainsAny(id, `/\.`) {
		return fmt.Errorf("queue: bad id %q", id)
	}
	return nil
}

// Get returns an item's envelope and its state (a fresh state, every
// recipient pending, when it has not been tried).
func (q *Queue) Get(id string) (Envelope, State, error) {
	if err := validID(id); err != nil {
		return Envelope{}, State{}, err
	}
	data, err := os.ReadFile(filepath.Join(q.dir, id+".json"))
	if err != nil {
		return Envelope{}, State{}, fmt.Errorf("queue: no message %s: %w", id, err)
	}
	var env Envelope
	if err := json.Unmarshal(data, &env); err != nil {
		return Envelope{}, State{}, fmt.Errorf("queue: %s: %w", id, err)
	}
	st, err := q.state(env)
	return env, st, err
}

func (q *Queue) state(env Envelope) (State, error) {
	data, err := os.ReadFile(filepath.Join(q.dir, env.ID+stateSuffix))
	if os.IsNotExist(err) {
		st := State{Recipients: make([]Recipient, len(env.To))}
		for i, to := range env.To {
			st.Recipients[i].Address = to
		}
		return st, nil
	}
	if err != nil {
		return State{}, fmt.Errorf("queue: %s: %w", env.ID, err)
	}
	var st State
	if err := json.Unmarshal(data, &st); err != nil {
		return State{}, fmt.Errorf("queue: state of %s: %w", env.ID, err)
	}
	return st, nil
}

// SetState stores an item's state durably.
func (q *Queue) SetState(id string, st State) error {
	if err := validID(id); err != nil {
		return err
	}
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	_, err = writeDurable(filepath.Join(q.dir, id+stateSuffix), func(w io.Writer) (int64, error) {
		k, err := w.Write(data)
		return int64(k), err
	})
	return err
}

// Remove takes an item out of the queue: its envelope first (from then
// on List no longer sees it), then its message and state. A crash in
// between leaves files without an envelope, which Sweep removes.
func (q *Queue) Remove(id string) error {
	if err := validID(id); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(q.dir, id+".json")); err != nil {
		return fmt.Errorf("queue: removing %s: %w", id, err)
	}
	syncDir(q.dir)
	os.Remove(filepath.Join(q.dir, id+".eml"))
	os.Remove(filepath.Join(q.dir, id+stateSuffix))
	os.Remove(filepath.Join(q.dir, id+"."+RequestRetry))
	os.Remove(filepath.Join(q.dir, id+"."+RequestBounce))
	return nil
}

// syncDir makes a rename or removal in dir durable (best effort).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// Requests from `mailsetup queue retry|bounce`, made while serve may be
// running: a marker file per item (ID.retry, ID.bounce), then the kick
// file's time is changed, which the delivery agent watches. Markers of
// items gone are removed by Sweep.
const (
	RequestRetry  = "retry"
	RequestBounce = "bounce"
	kickFile      = ".kick"
)

// Request asks the delivery agent to retry an item now, or to give it up
// and return it to its sender.
func (q *Queue) Request(id, kind string) error {
	if err := validID(id); err != nil {
		return err
	}
	if kind != RequestRetry && kind != RequestBounce {
		return fmt.Errorf("queue: unknown request %q", kind)
	}
	if _, err := os.Stat(filepath.Join(q.dir, id+".json")); err != nil {
		return fmt.Errorf("queue: no message %s", id)
	}
	if _, err := writeDurable(filepath.Join(q.dir, id+"."+kind), func(io.Writer) (int64, error) { return 0, nil }); err != nil {
		return err
	}
	return q.Kick()
}

// Kick tells a running delivery agent to read the queue again.
func (q *Queue) Kick() error {
	now := time.Now()
	p := filepath.Join(q.dir, kickFile)
	if err := os.Chtimes(p, now, now); err != nil {
		return os.WriteFile(p, nil, 0o600)
	}
	return nil
}

// Kicked returns when Kick was last called (zero: never).
func (q *Queue) Kicked() time.Time {
	fi, err := os.Stat(filepath.Join(q.dir, kickFile))
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}

// Requested reports whether a request of kind is pending for an item.
func (q *Queue) Requested(id, kind string) bool {
	_, err := os.Stat(filepath.Join(q.dir, id+"."+kind))
	return err == nil
}

// Done removes an item's request of kind (after the agent acted on it).
func (q *Queue) Done(id, kind string) {
	os.Remove(filepath.Join(q.dir, id+"."+kind))
}
