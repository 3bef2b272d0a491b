package logwatch

import (
	"log/slog"
	"strings"
	"sync"
	"time"

	"mailsetup/server/events"
)

// Options configures a Watcher.
type Options struct {
	// Name is the source's name: the source label of the counts and the
	// logs.
	Name   string
	Kind   Kind
	Parser ParserOptions
	// Sink receives the events; it must not block (the event bus).
	Sink events.Sink
	// Count is called once per line with its result (the metric).
	Count func(source string, r Result)
	// Logger gets a sample of the bad lines at debug level (at most one
	// per result and minute) and the sources' troubles.
	Logger *slog.Logger
}

// Watcher parses the lines of one source and emits their events. Its
// methods may be called from several goroutines (syslog connections).
type Watcher struct {
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	parser  *Parser
	sampled map[Result]time.Time
}

// New returns a watcher.
func New(opts Options) *Watcher {
	if opts.Sink == nil {
		opts.Sink = events.Discard{}
	}
	if opts.Count == nil {
		opts.Count = func(string, Result) {}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Watcher{opts: opts, log: log.With("source", opts.Name, "kind", string(opts.Kind)),
		parser: NewParser(opts.Kind, opts.Parser), sampled: map[Result]time.Time{}}
}

// Line handles one line of a log file (or a syslog message in the
// traditional form).
func (w *Watcher) Line(line string) Result {
	w.mu.Lock()
	ev, r := w.parser.Line(line)
	times := w.parser.Times()
	w.mu.Unlock()
	w.done(ev, r, line, times)
	return r
}

// Message handles a syslog message with a known time and tag.
func (w *Watcher) Message(t time.Time, tag, msg string) Result {
	w.mu.Lock()
	ev, r := w.parser.Message(t, tag, msg)
	times := w.parser.Times()
	w.mu.Unlock()
	w.done(ev, r, msg, times)
	return r
}

// Bad counts input that never became a line (a too-long line skipped
// by the reader, a broken syslog frame).
func (w *Watcher) Bad(r Result, sample string) { w.done(events.Event{}, r, sample, 1) }

// done counts the line and emits its event, once per attempt it
// stands for.
func (w *Watcher) done(ev events.Event, r Result, line string, times int) {
	w.opts.Count(w.opts.Name, r)
	switch r {
	case ResultEvent:
		for range times {
			w.opts.Sink.Emit(ev)
		}
	case ResultUnknown, ResultTooLong, ResultBinary, ResultBadTime:
		w.sample(r, line)
	}
}

// sample logs one bad line per result and minute at debug level.
func (w *Watcher) sample(r Result, line string) {
	now := time.Now()
	w.mu.Lock()
	last := w.sampled[r]
	ok := now.Sub(last) >= time.Minute
	if ok {
		w.sampled[r] = now
	}
	w.mu.Unlock()
	if ok {
		w.log.Debug("log line not used", "result", string(r), "line", strings.ToValidUTF8(line[:min(len(line), 200)], "?"))
	}
}
