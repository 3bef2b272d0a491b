package delivery

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Limits are the Options a running agent can change (a config reload):
// MaxConnections, MaxPerDomain, MaxAge, WarnAfter and Retry, with the
// same defaults for zero values.
type Limits struct {
	MaxConnections, MaxPerDomain int
	MaxAge, WarnAfter            time.Duration
	Retry                        []time.Duration
}

// limitsOf is the limits part of opts (defaults applied).
func limitsOf(o Options) *Limits {
	return &Limits{MaxConnections: o.MaxConnections, MaxPerDomain: o.MaxPerDomain, MaxAge: o.MaxAge, WarnAfter: o.WarnAfter, Retry: slices.Clone(o.Retry)}
}

// SetLimits changes the limits: sessions opened from now on count
// against the new connection limits (open ones finish; a lowered limit
// lets no new one start until enough have ended), and every item's next
// attempt, give-up and delay notice use the new times.
func (a *Agent) SetLimits(l Limits) {
	o := Options{MaxConnections: l.MaxConnections, MaxPerDomain: l.MaxPerDomain, MaxAge: l.MaxAge, WarnAfter: l.WarnAfter, Retry: l.Retry}
	o.defaults()
	a.limits.Store(limitsOf(o))
	a.mu.Lock()
	doms := make([]*slots, 0, len(a.perDomain))
	for _, s := range a.perDomain {
		doms = append(doms, s)
	}
	a.mu.Unlock()
	a.conns.wake()
	for _, s := range doms {
		s.wake()
	}
	a.poke()
}

// lim is the limits in force.
func (a *Agent) lim() *Limits { return a.limits.Load() }

// slots is a counting semaphore whose size is asked at each take (the
// limits may change while sessions wait).
type slots struct {
	mu      sync.Mutex
	used    int
	changed chan struct{} // closed when a slot frees or the size changes
}

// take waits for a free slot of max() or for ctx.
func (s *slots) take(ctx context.Context, max func() int) error {
	for {
		s.mu.Lock()
		if s.used < max() {
			s.used++
			s.mu.Unlock()
			return nil
		}
		if s.changed == nil {
			s.changed = make(chan struct{})
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// give frees a slot.
func (s *slots) give() {
	s.mu.Lock()
	s.used--
	s.mu.Unlock()
	s.wake()
}

// wake lets the waiters look again.
func (s *slots) wake() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
}
