package database

import (
	"context"
	"encoding/json"

	"mailsetup/server/events"
)

// KindObservation: one observed event (events.Event), written in the
// batch of the second it was seen, so that every replica's console shows
// what the others' mail listeners and log sources saw.
const KindObservation = "observation"

// FollowObservations hands the other replicas' observations to record.
func (f *Feed) FollowObservations(record func(events.Event)) {
	f.Handle(KindObservation, func(_ context.Context, body []byte) {
		var e events.Event
		if json.Unmarshal(body, &e) == nil {
			record(e)
		}
	})
}
