//go:build !unix

package listenfd

import "os"

func isStream(*os.File) bool { return true }

func markCloseOnExec(int) {}
