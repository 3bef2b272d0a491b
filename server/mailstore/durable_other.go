//go:build !linux

package mailstore

import (
	"io/fs"
	"os"
	"time"
)

// startWriteback does nothing where sync_file_range(2) is missing: the
// fsync in Batch.Commit writes the data.
func startWriteback(*os.File) {}

// changeTime falls back to the modification time.
func changeTime(fi fs.FileInfo) time.Time { return fi.ModTime() }
