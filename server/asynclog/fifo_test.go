//go:build unix

package asynclog_test

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailsetup/server/asynclog"
)

// openWithin runs OpenFile in a goroutine so that a blocking open fails
// the test instead of hanging it.
func openWithin(t *testing.T, path string, d time.Duration) (*os.File, error) {
	t.Helper()
	type result struct {
		f   *os.File
		err error
	}
	ch := make(chan result, 1)
	go func() {
		f, err := asynclog.OpenFile(path)
		ch <- result{f, err}
	}()
	select {
	case r := <-ch:
		return r.f, r.err
	case <-time.After(d):
		t.Fatalf("OpenFile(%s) still blocked after %v", path, d)
		return nil, nil
	}
}

func TestOpenFIFOWithoutReaderFailsAtOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log.fifo")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	f, err := openWithin(t, path, 5*time.Second)
	if err == nil {
		f.Close()
		t.Fatal("opened a FIFO that nothing reads")
	}
	if !errors.Is(err, syscall.ENXIO) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "no process reads") {
		t.Errorf("error %q does not name the path and say that nothing reads the FIFO", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %v", d)
	}
}

// TestFIFOWithReader: records reach a reader; when the reader stops
// reading, logging goes on at once and drops; when it goes away, the
// broken pipe is counted and reported once.
func TestFIFOWithReader(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log.fifo")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	// Opening the read end without O_NONBLOCK would wait for a writer.
	r, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	f, err := openWithin(t, path, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var errs lockedBuffer
	h, sink := asynclog.New(f, asynclog.Options{Queue: 64, Errors: &errs})
	log := slog.New(h)

	log.Info("hello", "n", 1)
	_ = r.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil || !strings.Contains(line, "msg=hello n=1") {
		t.Fatalf("reader got %q, %v", line, err)
	}

	// The reader stops reading: the pipe fills (64 KiB here), then the
	// queue, then records are dropped; the caller never waits.
	start := time.Now()
	for i := range 100000 {
		log.Info("delivered", "n", i, "pad", strings.Repeat("x", 100))
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("logging 100000 records with a stuck reader took %v", d)
	}
	if sink.Dropped() == 0 {
		t.Error("nothing dropped with a reader that stopped reading")
	}

	// The reader goes away: the blocked write fails with EPIPE, and so do
	// the rest; all counted, reported once.
	r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sink.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := sink.Written() + sink.Dropped(); got != 100001 {
		t.Errorf("written %d + dropped %d = %d, want 100001", sink.Written(), sink.Dropped(), got)
	}
	if sink.Failed() == 0 || strings.Count(errs.b.String(), "\n") != 1 || !strings.Contains(errs.b.String(), "broken pipe") {
		t.Errorf("failed %d, stderr:\n%s", sink.Failed(), errs.b.String())
	}
}
