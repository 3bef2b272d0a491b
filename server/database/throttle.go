package database

import (
	"context"
	"encoding/json"

	"mailsetup/server/auth"
)

// kindThrottle: a throttle's failure, success or clear (auth.ThrottleEvent).
const kindThrottle = "throttle"

// throttleShare publishes a throttle's changes on the feed.
type throttleShare struct{ f *Feed }

// Publish writes a failure or a clear at once (a lockout through one
// replica holds on the others at once); a success (a new known address)
// goes with the next batch.
func (s throttleShare) Publish(ev auth.ThrottleEvent) {
	if ev.Op == "succeed" {
		s.f.Later(kindThrottle, ev)
		return
	}
	s.f.Now(kindThrottle, ev)
}

// Sync reads the other replicas' changes now (auth calls it before an
// uncached password check).
func (s throttleShare) Sync(ctx context.Context) { s.f.Sync(ctx) }

// ThrottleShare is the auth.ThrottleShare of every throttle on this feed.
func (f *Feed) ThrottleShare() auth.ThrottleShare { return throttleShare{f} }

// FollowThrottles applies the other replicas' throttle changes to the
// local throttles, by their What; the last keepChanges of them are
// replayed at start (Run's replay: KindThrottle).
func (f *Feed) FollowThrottles(throttles ...*auth.Throttle) {
	if f.throttles == nil {
		f.throttles = map[string]*auth.Throttle{}
	}
	byWhat := f.throttles
	for _, t := range throttles {
		byWhat[t.Options().What] = t
	}
	f.Handle(kindThrottle, func(_ context.Context, body []byte) {
		var ev auth.ThrottleEvent
		if json.Unmarshal(body, &ev) != nil {
			return
		}
		if t := byWhat[ev.What]; t != nil {
			t.Apply(ev)
		}
	})
}

// KindThrottle is the kind to replay at start for the throttles.
const KindThrottle = kindThrottle
