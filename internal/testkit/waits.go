package testkit

import "time"

// WorstWait calls f every interval (after each call returns) until the
// returned stop is called; stop returns how long the longest call took.
// The benchmarks use it to see how long a store's recorder waits for a
// lock while something else holds it.
func WorstWait(f func(), interval time.Duration) (stop func() time.Duration) {
	quit, worst := make(chan struct{}), make(chan time.Duration)
	go func() {
		var w time.Duration
		for {
			select {
			case <-quit:
				worst <- w
				return
			default:
			}
			start := time.Now()
			f()
			w = max(w, time.Since(start))
			time.Sleep(interval)
		}
	}()
	return func() time.Duration {
		close(quit)
		return <-worst
	}
}
