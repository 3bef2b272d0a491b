package asynclog_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
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
