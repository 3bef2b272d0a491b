package database

// SetEachPage sets how many accounts Each reads per statement and
// returns the function that puts it back.
func SetEachPage(n int) (restore func()) {
	old := eachPage
	eachPage = n
	return func() { eachPage = old }
}
