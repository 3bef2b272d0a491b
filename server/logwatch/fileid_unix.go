//go:build unix

package logwatch

import (
	"os"
	"syscall"
)

func fileID(fi os.FileInfo) (ino, dev uint64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino), uint64(st.Dev)
	}
	return 0, 0
}

func sameFile(fi os.FileInfo, ino, dev uint64) bool {
	i, d := fileID(fi)
	return i == ino && d == dev
}
