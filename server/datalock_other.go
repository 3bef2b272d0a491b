//go:build !unix

package server

// lockFile does nothing where flock(2) does not exist: there the operator
// must not run `mailsetup expire` while `mailsetup serve` uses the data.
func lockFile(path string) (unlock func(), err error) {
	return func() {}, nil
}
