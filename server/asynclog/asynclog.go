// Package asynclog is a log/slog handler that never blocks its callers.
//
// Records are formatted in the caller's goroutine (cheap, CPU only) and
// queued; one goroutine writes them to the sink. When the queue is full
// because the sink is slow or stuck, the record is dropped and counted:
// a logging bottleneck must never stop mail handling, which is what
// happened in the incident this product was born from.
//
// A sink that fails (a full disk, a FIFO whose reader went away) loses
// the records it could not write; they are counted as dropped too, and the
// failure is reported once on the Errors writer (stderr), not once per
// record. OpenFile opens a log file without ever blocking, also when it
// names a FIFO.
//
// Imports: the standard library only.
package asynclog

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
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
	// Errors receives one line when writing to the sink starts failing
	// and one when it works again (at most one report a minute), never one
	// per record. Default os.Stderr.
	Errors io.Writer
}

// Sink owns the queue and the writer goroutine. Handlers derived with
// WithAttrs/WithGroup share one Sink.
type Sink struct {
	w       io.Writer
	errs    io.Writer
	queue   chan []byte
	dropped atomic.Uint64 // queue full, after Close, or a failed write
	failed  atomic.Uint64 // the part of dropped lost to failed writes
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
	if opts.Errors == nil {
		opts.Errors = os.Stderr
	}
	s := &Sink{w: w, errs: opts.Errors, queue: make(chan []byte, opts.Queue), done: make(chan struct{})}
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

// reportEvery is the least time between two reports of a failing sink, so
// that a sink that fails and recovers by turns (a disk at its last free
// blocks) cannot flood stderr.
const reportEvery = time.Minute

// run writes queued records, batching whatever is already waiting into one
// write so a busy server makes few system calls.
func (s *Sink) run() {
	defer close(s.done)
	var health sinkHealth
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
		// without blocking. They are counted, and the failure reported.
		if _, err := s.w.Write(batch); err != nil {
			s.failed.Add(n)
			s.dropped.Add(n)
			health.failing(s, err, n)
		} else {
			s.written.Add(n)
			health.working(s)
		}
	}
}

// sinkHealth is the writer goroutine's view of the sink, for the reports.
// A failure is reported once; a failure that begins less than reportEvery
// after the last report is reported once that time has passed, if it
// lasts.
type sinkHealth struct {
	down       bool      // the last write failed
	reported   bool      // this failure was reported (so its end is too)
	lastReport time.Time // zero: never
	lost       uint64    // records lost since this failure began
}

func (h *sinkHealth) failing(s *Sink, err error, n uint64) {
	h.down = true
	h.lost += n
	if h.reported {
		return
	}
	if now := time.Now(); h.lastReport.IsZero() || now.Sub(h.lastReport) >= reportEvery {
		h.reported, h.lastReport = true, now
		fmt.Fprintf(s.errs, "mailsetup: log sink: writing failed: %v; log records are lost (counted in mailsetup_log_dropped_total) until it works again; reported once\n", err)
	}
}

func (h *sinkHealth) working(s *Sink) {
	if !h.down {
		return
	}
	if h.reported {
		h.lastReport = time.Now()
		fmt.Fprintf(s.errs, "mailsetup: log sink: writing again; %d log records were lost while it failed\n", h.lost)
	}
	h.down, h.reported, h.lost = false, false, 0
}

// Dropped returns how many records were lost: dropped because the queue
// was full, logged after Close, or written to a sink that failed.
func (s *Sink) Dropped() uint64 { return s.dropped.Load() }

// Failed returns how many of the dropped records were lost to failed
// writes (a full disk, a FIFO whose reader went away).
func (s *Sink) Failed() uint64 { return s.failed.Load() }

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
