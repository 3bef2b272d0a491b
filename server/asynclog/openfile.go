package asynclog

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// OpenFile opens path for appending log records, creating a regular file
// (mode 0640) if there is none. It never blocks: a FIFO that no process
// has open for reading is an error at once (open(2) with O_NONBLOCK gives
// ENXIO), where a plain open would wait for a reader for ever, before any
// listener binds and without a word. A FIFO with a reader works; when the
// reader stops reading, only the Sink's writer waits and records are
// dropped and counted, as for any stuck sink.
func OpenFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|openNonBlock, 0o640)
	if errors.Is(err, syscall.ENXIO) {
		return nil, fmt.Errorf("%s is a FIFO that no process reads: start the program that reads it first, or name a regular file (%w)", path, err)
	}
	return f, err
}
