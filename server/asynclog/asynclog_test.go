package asynclog_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"mailsetup/server/asynclog"
)

// stuckWriter blocks every Write until release is closed: a log sink that
// hangs (a full pipe, a stalled disk, a dead syslog).
type stuckWriter struct{ release chan struct{} }

func (w stuckWriter) Write(p []byte) (int, error) {
	<-w.release
	return len(p), nil
}

func TestStuckSinkNeverBlocksAndCountsDrops(t *testing.T) {
	w := stuckWriter{release: make(chan struct{})}
	h, sink := asynclog.New(w, asynclog.Options{Queue: 16})
	log := slog.New(h)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 10000; i++ {
			log.Info("delivered", "n", i)
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("logging blocked on a stuck sink")
	}
	// The writer goroutine holds one batch and the queue holds 16; every
	// other record was dropped at once.
	if d := sink.Dropped(); d < 10000/2 {
		t.Errorf("dropped = %d, want most of 10000", d)
	}
	close(w.release)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := sink.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := sink.Written() + sink.Dropped(); got != 10000 {
		t.Errorf("written %d + dropped %d = %d, want 10000", sink.Written(), sink.Dropped(), got)
	}
	log.Info("after close") // must not panic
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func TestRecordsArriveWhole(t *testing.T) {
	var buf lockedBuffer
	h, sink := asynclog.New(&buf, asynclog.Options{JSON: true})
	log := slog.New(h).With("proto", "pop3")
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				log.Info("retr", "msg", i)
			}
		}()
	}
	wg.Wait()
	if err := sink.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.b.String()), "\n")
	if len(lines) != 400 || sink.Written() != 400 || sink.Dropped() != 0 {
		t.Fatalf("lines = %d written = %d dropped = %d", len(lines), sink.Written(), sink.Dropped())
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "{") || !strings.Contains(l, `"proto":"pop3"`) {
			t.Fatalf("bad line %q", l)
		}
	}
}

// TestFullDiskIsCountedAndReportedOnce writes to /dev/full, where every
// write fails with ENOSPC as on a full disk: each lost record is counted
// as dropped, and stderr gets one line, not one per record.
func TestFullDiskIsCountedAndReportedOnce(t *testing.T) {
	f, err := asynclog.OpenFile("/dev/full")
	if err != nil {
		t.Skipf("no /dev/full here: %v", err)
	}
	defer f.Close()
	var errs lockedBuffer
	h, sink := asynclog.New(f, asynclog.Options{Errors: &errs})
	log := slog.New(h)
	const records = 3202
	for i := range records {
		log.Info("delivered", "n", i)
		if i%100 == 0 {
			time.Sleep(time.Millisecond) // many batches, many failed writes
		}
	}
	if err := sink.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if sink.Dropped() != records || sink.Failed() != records || sink.Written() != 0 {
		t.Errorf("dropped %d failed %d written %d, want %d lost to failed writes", sink.Dropped(), sink.Failed(), sink.Written(), records)
	}
	lines := strings.Split(strings.TrimSpace(errs.b.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "no space left on device") || !strings.Contains(lines[0], "mailsetup_log_dropped_total") {
		t.Errorf("stderr got %d lines, want one naming the error and the counter:\n%s", len(lines), errs.b.String())
	}
}

// flakyWriter fails while fail is set.
type flakyWriter struct {
	fail atomic.Bool
	buf  lockedBuffer
}

func (w *flakyWriter) Write(p []byte) (int, error) {
	if w.fail.Load() {
		return 0, syscall.EPIPE
	}
	return w.buf.Write(p)
}

// TestFailingSinkReportsFailureAndRecovery: a sink that fails, works,
// and fails again by turns reports one failure and its end, with the
// number of records lost, and nothing more within reportEvery.
func TestFailingSinkReportsFailureAndRecovery(t *testing.T) {
	var w flakyWriter
	var errs lockedBuffer
	h, sink := asynclog.New(&w, asynclog.Options{Errors: &errs})
	log := slog.New(h)
	// logOne logs one record and waits until the sink has handled it, so
	// each record is one write.
	logOne := func() {
		before := sink.Written() + sink.Dropped()
		log.Info("x")
		for deadline := time.Now().Add(5 * time.Second); sink.Written()+sink.Dropped() == before; {
			if time.Now().After(deadline) {
				t.Fatal("record not handled")
			}
			time.Sleep(time.Millisecond)
		}
	}
	for round := range 5 {
		w.fail.Store(true)
		for range 3 + round {
			logOne()
		}
		w.fail.Store(false)
		logOne()
	}
	if err := sink.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if sink.Failed() != 3+4+5+6+7 || sink.Written() != 5 {
		t.Errorf("failed %d written %d", sink.Failed(), sink.Written())
	}
	lines := strings.Split(strings.TrimSpace(errs.b.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "broken pipe") || !strings.Contains(lines[1], "writing again; 3 log records were lost") {
		t.Errorf("stderr:\n%s", errs.b.String())
	}
}
