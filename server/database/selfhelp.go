package database

import (
	"context"
	"encoding/json"
	"net/netip"
	"time"

	"mailsetup/server/web/selfhelp"
)

// kindSelfHelpCheck: a self-help settings check taken by a replica.
const kindSelfHelpCheck = "self-help-check"

type selfHelpCheck struct {
	IP      netip.Addr `json:"ip"`
	Address string     `json:"address"`
	At      time.Time  `json:"at"`
}

// selfHelpShare carries the self-help checks taken on the feed (with
// the next batch: the limits hold across replicas within about a
// second, and the pages never wait for the database).
type selfHelpShare struct{ f *Feed }

func (s selfHelpShare) Taken(ip netip.Addr, address string, at time.Time) {
	s.f.Later(kindSelfHelpCheck, selfHelpCheck{IP: ip, Address: address, At: at})
}

func (s selfHelpShare) Follow(apply func(ip netip.Addr, address string, at time.Time)) {
	s.f.Handle(kindSelfHelpCheck, func(_ context.Context, body []byte) {
		var c selfHelpCheck
		if json.Unmarshal(body, &c) == nil {
			apply(c.IP, c.Address, c.At)
		}
	})
}

// SelfHelpShare is the self-help pages' selfhelp.LimitShare.
func (f *Feed) SelfHelpShare() selfhelp.LimitShare { return selfHelpShare{f} }
