//go:build unix

package asynclog

import "syscall"

// openNonBlock makes open(2) of a FIFO without a reader fail with ENXIO
// instead of waiting. On Linux, Go then writes to a FIFO through its
// poller, so a full pipe parks the writer goroutine, not a thread; a
// regular file ignores the flag.
const openNonBlock = syscall.O_NONBLOCK
