package server

import (
	"errors"
	"fmt"
	"path/filepath"
)

// errLocked: the data directory's lock is held by another process (or by
// another holder in this one).
var errLocked = errors.New("locked by another process")

// lockData takes the lock of the config's data directory (LockFile). One
// process owns the mail storage (see server/mailstore): `serve` holds the
// lock while its mail servers run, and `expire` takes it for its sweep,
// so that the two never change the same mailboxes at once. The error
// wraps errLocked when another process holds it.
func lockData(cfg *Config) (unlock func(), err error) {
	path := filepath.Join(cfg.Path(cfg.DataDir), LockFile)
	unlock, err = lockFile(path)
	if errors.Is(err, errLocked) {
		return nil, fmt.Errorf("data directory %s: %s is %w", cfg.Path(cfg.DataDir), LockFile, err)
	}
	if err != nil {
		return nil, fmt.Errorf("data directory %s: %w", cfg.Path(cfg.DataDir), err)
	}
	return unlock, nil
}
