//go:build unix

package listenfd

import (
	"os"
	"syscall"
)

// isStream reports whether f is a SOCK_STREAM socket.
func isStream(f *os.File) bool {
	t, err := syscall.GetsockoptInt(int(f.Fd()), syscall.SOL_SOCKET, syscall.SO_TYPE)
	return err == nil && t == syscall.SOCK_STREAM
}

// markCloseOnExec keeps a handed-over descriptor from leaking into
// programs this process starts.
func markCloseOnExec(fd int) { syscall.CloseOnExec(fd) }
