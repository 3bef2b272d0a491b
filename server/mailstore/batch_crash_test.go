package mailstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A batch cut at every step of Commit (as a kill -9 would cut it: the
// files left as they are), then the store opened afresh and the same
// messages imported again, as an import's rerun does: every message is
// there exactly once, whole, with its UIDL, UIDs unique and increasing,
// and the index loads cleanly.
func TestBatchCutAtEachStep(t *testing.T) {
	const n = 12 // more than 9: name order and UID order differ (Q9 < Q10)
	type cut struct {
		step string
		done int
		torn bool // also tear the index's last line (a crash mid-append)
	}
	cuts := []cut{{step: "add"}, {step: "synced"}}
	for k := 1; k <= n; k++ {
		cuts = append(cuts, cut{step: "renamed", done: k})
	}
	cuts = append(cuts, cut{step: "dirsynced", done: n}, cut{step: "done"}, cut{step: "done", torn: true})
	for _, c := range cuts {
		t.Run(fmt.Sprintf("%s-%d-torn=%v", c.step, c.done, c.torn), func(t *testing.T) {
			root := t.TempDir()
			u := openTestUser(t, root)
			// One message there before, delivered singly.
			if _, err := u.Deliver(Inbox, strings.NewReader("before\r\n"), DeliverOptions{UIDL: "old-0"}); err != nil {
				t.Fatal(err)
			}
			b, err := u.NewBatch(Inbox, BatchLimits{})
			if err != nil {
				t.Fatal(err)
			}
			for i := 1; i <= n; i++ {
				if err := b.Add(strings.NewReader(body(i)), batchOpts(i)); err != nil {
					t.Fatal(err)
				}
			}
			switch c.step {
			case "add": // killed before Commit: the files are in tmp/ only
			case "done":
				if _, err := b.Commit(); err != nil {
					t.Fatal(err)
				}
			default:
				crashHook = func(step string, done int) bool { return step == c.step && done == c.done }
				_, err := b.Commit()
				crashHook = nil
				if !errors.Is(err, errCrash) {
					t.Fatalf("Commit: %v, want the simulated crash", err)
				}
			}
			placed := c.done
			if c.step == "done" {
				placed = n
			}
			dir := filepath.Join(root, "example.test", "john.doe", "Maildir")
			if c.torn {
				idx := filepath.Join(dir, indexFile)
				data, err := os.ReadFile(idx)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(idx, data[:len(data)-20], 0o600); err != nil {
					t.Fatal(err)
				}
			}

			// The rerun: a new process, the same messages, each added
			// only when its UIDL is not there yet.
			u2 := openTestUser(t, root)
			m, err := u2.Mailbox(Inbox)
			if err != nil {
				t.Fatal(err)
			}
			msgs, err := m.Messages()
			if err != nil {
				t.Fatal(err)
			}
			present := map[string]bool{}
			for _, msg := range msgs {
				present[msg.UIDL] = true
			}
			b2, err := u2.NewBatch(Inbox, BatchLimits{})
			if err != nil {
				t.Fatal(err)
			}
			for i := 1; i <= n; i++ {
				if present[batchOpts(i).UIDL] {
					continue
				}
				if err := b2.Add(strings.NewReader(body(i)), batchOpts(i)); err != nil {
					t.Fatal(err)
				}
			}
			out, err := b2.Commit()
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range out {
				if d.Duplicate {
					t.Errorf("rerun: %s duplicate", d.UIDL)
				}
			}

			// A third process finds everything exactly once.
			m3, err := openTestUser(t, root).Mailbox(Inbox)
			if err != nil {
				t.Fatal(err)
			}
			msgs, err = m3.Messages()
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) != n+1 {
				t.Fatalf("%d messages, want %d: %+v", len(msgs), n+1, msgs)
			}
			seen := map[string]bool{}
			for k, msg := range msgs {
				if seen[msg.UIDL] {
					t.Errorf("UIDL %s twice", msg.UIDL)
				}
				seen[msg.UIDL] = true
				if k > 0 && msg.UID <= msgs[k-1].UID {
					t.Errorf("UIDs not increasing: %d after %d", msg.UID, msgs[k-1].UID)
				}
				if k == 0 {
					continue
				}
				var i int
				if _, err := fmt.Sscanf(msg.UIDL, "old-%d", &i); err != nil {
					t.Fatalf("UIDL %q", msg.UIDL)
				}
				// Placed before the cut: the UID it was given then.
				if i <= placed && msg.UID != uint32(i+1) {
					t.Errorf("message %s placed before the cut with UID %d has UID %d", msg.UIDL, i+1, msg.UID)
				}
				f, err := m3.Open(msg.UID)
				if err != nil {
					t.Fatal(err)
				}
				data := make([]byte, 100)
				nr, _ := f.Read(data)
				f.Close()
				if string(data[:nr]) != body(i) || msg.Size != int64(len(body(i))) {
					t.Errorf("message %s: %q, size %d", msg.UIDL, data[:nr], msg.Size)
				}
				if !msg.InternalDate.Equal(batchOpts(i).InternalDate) {
					t.Errorf("message %s: date %v", msg.UIDL, msg.InternalDate)
				}
			}
			// What a crash left in tmp/ is not a message, and goes once
			// old: the leftovers are named, not dated, by the delivery.
			for _, sub := range []string{"new", "cur"} {
				names, _ := os.ReadDir(filepath.Join(dir, sub))
				if len(names) > n+1 {
					t.Errorf("%s/ holds %d files", sub, len(names))
				}
			}
			// The index alone (no scan needed) knows all of them now.
			data, err := os.ReadFile(filepath.Join(dir, indexFile))
			if err != nil {
				t.Fatal(err)
			}
			idx, err := parseIndex(data)
			if err != nil || idx.torn || len(idx.recs) != n+1 {
				t.Errorf("index after the rerun: %d records, torn %v, err %v", len(idx.recs), idx.torn, err)
			}
		})
	}
}

func body(i int) string { return fmt.Sprintf("Subject: %d\r\n\r\nmessage %d\r\n", i, i) }

// batchOpts gives message i flags on every other one (so the batch uses
// both new/ and cur/), an old internal date and the UIDL old-i.
func batchOpts(i int) DeliverOptions {
	o := DeliverOptions{UIDL: fmt.Sprintf("old-%d", i), InternalDate: time.Unix(1_000_000_000+int64(i)*3600, 0)}
	if i%2 == 0 {
		o.Flags = []string{`\Seen`}
	}
	return o
}

func openTestUser(t *testing.T, root string) *User {
	t.Helper()
	// A fixed clock: names then differ only in their counter, so that
	// name order is not UID order (Q10 sorts before Q9).
	now := time.Unix(1_800_000_000, 123_000)
	s, err := Open(root, Options{Hostname: "test.example", Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.User("john.doe@example.test")
	if err != nil {
		t.Fatal(err)
	}
	return u
}
