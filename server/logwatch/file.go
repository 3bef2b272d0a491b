package logwatch

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"time"
)

// DefaultPoll is how often a followed file is checked for new lines and
// rotation.
const DefaultPoll = 250 * time.Millisecond

// chunk is how much of a file one read takes.
const chunk = 64 << 10

// File follows the log file at path until ctx ends, as `tail -F` does:
// from its end at start, across a rotation by rename (the old file is
// read to its end, then the new one from its start) and by copytruncate
// (a file that shrank is read again from its start); a missing file is
// waited for. It only reads, so the daemon writing the file never waits
// for it. Memory: one chunk and one line of at most MaxLine bytes.
func (w *Watcher) File(ctx context.Context, path string, poll time.Duration) error {
	if poll <= 0 {
		poll = DefaultPoll
	}
	f := &follower{w: w, path: path, buf: make([]byte, chunk)}
	defer f.close()
	f.open(true)
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		f.step()
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

type follower struct {
	w    *Watcher
	path string
	file *os.File
	// ino and dev name the open file; off is how far it was read.
	ino, dev uint64
	off      int64
	buf      []byte
	// line holds a line's start until its end arrives; skipping: the
	// current line went over MaxLine and is dropped up to its end.
	line     []byte
	skipping bool
	missing  bool
}

func (f *follower) close() {
	if f.file != nil {
		f.file.Close()
		f.file = nil
	}
}

// open opens the path; atEnd starts at its end (the history before mailsetup started is not replayed).
func (f *follower) open(atEnd bool) bool {
	file, err := os.Open(f.path)
	if err != nil {
		if !f.missing {
			f.w.log.Info("log file not readable; waiting for it", "path", f.path, "err", err)
			f.missing = true
		}
		return false
	}
	fi, err := file.Stat()
	if err != nil {
		file.Close()
		return false
	}
	f.close()
	f.file, f.off, f.line, f.skipping, f.missing = file, 0, f.line[:0], false, false
	f.ino, f.dev = fileID(fi)
	if atEnd {
		f.off = fi.Size()
	}
	return true
}

// step reads what was added, then checks for a rotation.
func (f *follower) step() {
	if f.file == nil {
		if !f.open(false) {
			return
		}
	}
	f.drain()
	fi, err := os.Stat(f.path)
	switch {
	case err != nil:
		// Renamed away and not yet recreated: the old file was read to
		// its end above; wait.
		return
	case !sameFile(fi, f.ino, f.dev):
		// Rotated by rename: finish the old file, then the new one from
		// its start.
		f.drain()
		f.flushPartial()
		f.open(false)
		f.drain()
	default:
		if fi.Size() < f.off {
			// Truncated (copytruncate): read again from the start.
			f.flushPartial()
			f.off = 0
			f.drain()
		}
	}
}

// drain reads the open file from off to its end.
func (f *follower) drain() {
	for f.file != nil {
		n, err := f.file.ReadAt(f.buf, f.off)
		if n > 0 {
			f.off += int64(n)
			f.lines(f.buf[:n])
		}
		if err != nil || n < len(f.buf) {
			if err != nil && !errors.Is(err, io.EOF) {
				f.w.log.Info("reading log file", "path", f.path, "err", err)
			}
			return
		}
	}
}

// lines splits data into lines, keeping an unfinished one for later.
func (f *follower) lines(data []byte) {
	for len(data) > 0 {
		nl := bytes.IndexByte(data, '\n')
		if nl < 0 {
			if !f.skipping {
				if len(f.line)+len(data) > MaxLine {
					f.w.Bad(ResultTooLong, string(append(f.line[:min(len(f.line), 200):min(len(f.line), 200)], data[:min(len(data), 200)]...)))
					f.line, f.skipping = f.line[:0], true
				} else {
					f.line = append(f.line, data...)
				}
			}
			return
		}
		part := data[:nl]
		data = data[nl+1:]
		if f.skipping {
			f.skipping = false
			continue
		}
		if len(f.line) > 0 {
			if len(f.line)+len(part) > MaxLine {
				f.w.Bad(ResultTooLong, string(f.line[:min(len(f.line), 200)]))
				f.line = f.line[:0]
				continue
			}
			f.line = append(f.line, part...)
			part = f.line
		}
		f.w.Line(string(bytes.TrimSuffix(part, []byte{'\r'})))
		f.line = f.line[:0]
		if cap(f.line) > 2*chunk {
			f.line = nil // a long line's buffer is not kept
		}
	}
}

// flushPartial handles an unfinished last line of a file left behind.
func (f *follower) flushPartial() {
	if len(f.line) > 0 && !f.skipping {
		f.w.Line(string(f.line))
	}
	f.line, f.skipping = f.line[:0], false
}
