package mailstore

import (
	"io/fs"
	"os"
	"syscall"
	"time"
)

// syncFileRangeWrite is SYNC_FILE_RANGE_WRITE (sync_file_range(2)).
const syncFileRangeWrite = 2

// startWriteback asks the kernel to start writing f's data now, without
// waiting. The fsync that follows later (Batch.Commit) is what makes the
// data durable; started early, the data of a whole batch is allocated
// and written before the first of those fsyncs, which then commits the
// file system's journal for all of them at once.
func startWriteback(f *os.File) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_ = syscall.SyncFileRange(int(fd), 0, 0, syncFileRangeWrite)
	})
}

// changeTime is the file's status change time (ctime): when it was
// created or last renamed or touched, whatever its modification time says.
func changeTime(fi fs.FileInfo) time.Time {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return time.Unix(st.Ctim.Unix())
	}
	return fi.ModTime()
}
