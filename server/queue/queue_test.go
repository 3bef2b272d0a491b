package queue_test

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"mailsetup/server/queue"
)

func TestEnqueueListOpen(t *testing.T) {
	q, err := queue.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	id, err := q.Enqueue("john@johndoe.com", []string{"x@elsewhere.example"}, strings.NewReader("Subject: hi\r\n\r\nbody\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	list, err := q.List()
	if err != nil || len(list) != 1 || list[0].ID != id || list[0].Size != 21 || list[0].To[0] != "x@elsewhere.example" {
		t.Fatalf("%+v %v", list, err)
	}
	f, err := q.Open(id)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, _ := io.ReadAll(f)
	if string(b) != "Subject: hi\r\n\r\nbody\r\n" {
		t.Errorf("%q", b)
	}
	if _, err := q.Open("../x"); err == nil {
		t.Error("path escape accepted")
	}
}

// TestSweepRemovesWhatACrashLeft: after kill -9 during Enqueue, the queue
// holds a temporary file (message or envelope half written) or a message
// whose envelope was never written. Sweep removes those, logs each, and
// keeps every complete item.
func TestSweepRemovesWhatACrashLeft(t *testing.T) {
	dir := t.TempDir()
	q, err := queue.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	id, err := q.Enqueue("john@johndoe.com", []string{"x@elsewhere.example"}, strings.NewReader("Subject: kept\r\n\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	// An Enqueue killed while its message streamed in: the temporary file
	// exists (a reader that stops mid-message keeps it there).
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := q.Enqueue("john@johndoe.com", []string{"y@elsewhere.example"}, pr)
		done <- err
	}()
	if _, err := pw.Write([]byte("Subject: interrupted\r\n")); err != nil {
		t.Fatal(err)
	}
	tmps, _ := filepath.Glob(filepath.Join(dir, ".tmp-*"))
	if len(tmps) != 1 {
		t.Fatalf("temporary files %v", tmps)
	}
	// Keep the file as a crash would: a copy under the name, then end
	// the write (which removes the original).
	data, _ := os.ReadFile(tmps[0])
	pw.CloseWithError(io.ErrUnexpectedEOF)
	if err := <-done; err == nil {
		t.Fatal("interrupted Enqueue succeeded")
	}
	crashed := []string{filepath.Base(tmps[0]), "20260101T000000-0123456789abcdef01234567.eml"}
	if err := os.WriteFile(tmps[0], data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, crashed[1]), []byte("Subject: no envelope\r\n\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	var logs bytes.Buffer
	removed := q.Sweep(slog.New(slog.NewTextHandler(&logs, nil)))
	slices.Sort(removed)
	slices.Sort(crashed)
	if !slices.Equal(removed, crashed) {
		t.Errorf("removed %v, want %v", removed, crashed)
	}
	for _, name := range crashed {
		if _, err := os.Stat(filepath.Join(dir, name)); !os.IsNotExist(err) {
			t.Errorf("%s still there (%v)", name, err)
		}
		if !strings.Contains(logs.String(), "file="+name) {
			t.Errorf("removal of %s not logged:\n%s", name, logs.String())
		}
	}
	list, err := q.List()
	if err != nil || len(list) != 1 || list[0].ID != id {
		t.Fatalf("complete items after the sweep: %+v %v", list, err)
	}
	if f, err := q.Open(id); err != nil {
		t.Errorf("complete item's message: %v", err)
	} else {
		f.Close()
	}
	if again := q.Sweep(slog.New(slog.NewTextHandler(&logs, nil))); len(again) != 0 {
		t.Errorf("second sweep removed %v", again)
	}
}

// TestStateRequestsRemove: an item's delivery state is kept beside it;
// requests mark it for the agent and touch the kick file; Remove takes
// the envelope first and everything else with it; what a crash leaves
// of a removed item (state, request) is swept at the next start.
func TestStateRequestsRemove(t *testing.T) {
	dir := t.TempDir()
	q, err := queue.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	id, err := q.Enqueue("a@example.test", []string{"x@remote.test", "y@remote.test"}, strings.NewReader("Subject: s\r\n\r\nb\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, st, err := q.Get(id)
	if err != nil || len(st.Recipients) != 2 || st.Recipients[1].Address != "y@remote.test" || st.Recipients[1].Outcome != queue.Pending || st.Attempts != 0 {
		t.Fatalf("a fresh item's state: %+v %v", st, err)
	}
	st.Attempts = 1
	st.Recipients[0].Outcome, st.Recipients[0].Reply = queue.Delivered, "250 ok"
	if err := q.SetState(id, st); err != nil {
		t.Fatal(err)
	}
	if _, got, err := q.Get(id); err != nil || got.Attempts != 1 || got.Recipients[0].Outcome != queue.Delivered || got.Recipients[0].Reply != "250 ok" {
		t.Fatalf("state read back: %+v %v", got, err)
	}
	before := q.Kicked()
	if err := q.Request(id, queue.RequestBounce); err != nil || !q.Requested(id, queue.RequestBounce) || !q.Kicked().After(before) {
		t.Fatalf("bounce request: %v, requested %v, kicked %v", err, q.Requested(id, queue.RequestBounce), q.Kicked())
	}
	for _, bad := range [][2]string{{"../x", queue.RequestRetry}, {id, "explode"}, {"20260101T000000-00", queue.RequestRetry}} {
		if err := q.Request(bad[0], bad[1]); err == nil {
			t.Errorf("request %q %q accepted", bad[0], bad[1])
		}
	}
	if err := q.Remove(id); err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, id+"*")); len(left) != 0 {
		t.Errorf("left after Remove: %v", left)
	}
	// A crash inside Remove, after the envelope went: the rest is swept.
	for _, ext := range []string{".eml", ".state", ".retry"} {
		if err := os.WriteFile(filepath.Join(dir, id+ext), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	removed := q.Sweep(slog.New(slog.DiscardHandler))
	slices.Sort(removed)
	if want := []string{id + ".eml", id + ".retry", id + ".state"}; !slices.Equal(removed, want) {
		t.Errorf("swept %v, want %v", removed, want)
	}
}
