// Package asynclog is a log/slog handler that never blocks its callers.
//
// Records are formatted in the caller's goroutine (cheap, CPU only) and
// queued; one goroutine writes them to the sink. When the queue is full
// because the sink is slow or stuck, the record is dropped and counted:
// a logging bottleneck must never stop mail handling, which is what
// happened in the incident this product was born from.
package asynclog

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
)

// Options configure a Handler.
type Options struct {
	// Level is the minimum level logged. Default slog.LevelInfo.
	Level slog.Leveler
	// JSON selects slog's JSON format; the default is slog's text format.
	JSON bool
	// Queue is how many formatted records may wait for the sink.
	// Default 8192.
	Queue int
}

// Sink owns the queue and the writer goroutine. Handlers derived with
// WithAttrs/WithGroup share one Sink.
type Sink struct {
	w       io.Writer
	queue   chan []byte
	dropped atomic.Uint64
	written atomic.Uint64

	mu     sync.RWMutex // guards closed against sends on a closed queue
	closed bool
	done   chan struct{}
}

// New returns a handler writing to w through a bounded queue, and its
// sink (for Dropped and Close).
func New(w io.Writer, opts Options) (slog.Handler, *Sink) {
	if opts.Queue <= 0 {
		opts.Queue = 8192
	}
	s := &Sink{w: w, queue: make(chan []byte, opts.Queue), done: make(chan struct{})}
	go s.run()
	ho := &slog.HandlerOptions{Level: opts.Level}
	var h slog.Handler
	if opts.JSON {
		h = slog.NewJSONHandler(queueWriter{s}, ho)
	} else {
		h = slog.NewTextHandler(queueWriter{s}, ho)
	}
	return h, s
}

// queueWriter receives exactly one formatted record per Write (slog's
// built-in handlers write each record with a single call).
type queueWriter struct{ s *Sink }

func (q queueWriter) Write(p []byte) (int, error) {
	line := make([]byte, len(p))
	copy(line, p)
	q.s.mu.RLock()
	defer q.s.mu.RUnlock()
	if q.s.closed {
		q.s.dropped.Add(1)
		return len(p), nil
	}
	select {
	case q.s.queue <- line:
	default:
		q.s.dropped.Add(1)
	}
	return len(p), nil
}

// maxBatch bounds one write to the sink.
const maxBatch = 64 << 10

// run writes queued records, batching whatever is already waiting into one
// write so a busy server makes few system calls.
func (s *Sink) run() {
	defer close(s.done)
	batch := make([]byte, 0, maxBatch)
	for line := range s.queue {
		batch = append(batch[:0], line...)
		n := uint64(1)
	drain:
		for len(batch) < maxBatch {
			select {
			case more, ok := <-s.queue:
				if !ok {
					break drain
				}
				batch = append(batch, more...)
				n++
			default:
				break drain
			}
		}
		// A failing sink loses the entries; nothing else can be done
		// without blocking.
		if _, err := s.w.Write(batch); err == nil {
			s.written.Add(n)
		}
	}
}

// Dropped returns how many records were dropped because the queue was full.
func (s *Sink) Dropped() uint64 { return s.dropped.Load() }

// Written returns how many records reached the sink.
func (s *Sink) Written() uint64 { return s.written.Load() }

// Close stops accepting records and waits until the queue is written out
// or ctx ends. Records logged after Close are dropped.
func (s *Sink) Close(ctx context.Context) error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.queue)
	}
	s.mu.Unlock()
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
