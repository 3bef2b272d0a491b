//go:build !unix

package accounts

// lockExclusive does nothing where flock(2) does not exist: there only
// one process may change the accounts at a time.
func lockExclusive(path string) (unlock func(), err error) {
	return func() {}, nil
}
