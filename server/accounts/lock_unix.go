//go:build unix

package accounts

import (
	"os"
	"syscall"
)

// lockExclusive waits for an exclusive flock(2) on path (created 0600).
// The kernel releases it when the process ends, also on SIGKILL.
func lockExclusive(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}
