package server

import (
	"slices"
	"sync/atomic"
	"time"

	"mailsetup/autoconfig"
)

// policySet is one generation of the domain policies that the web and
// the DNS responder read per request; a reload swaps it whole.
type policySet struct {
	list     []autoconfig.Policy
	byDomain map[string]autoconfig.Policy
	// rollover is list with the PACC digests of the documents served
	// before the last reload (Policy.PACCRetired), published until
	// rolloverUntil so a client holding the old bytes still verifies.
	rollover      []autoconfig.Policy
	rolloverUntil time.Time
}

func newPolicySet(list []autoconfig.Policy) *policySet {
	set := &policySet{list: list, byDomain: make(map[string]autoconfig.Policy, len(list))}
	for _, p := range list {
		set.byDomain[p.Domain] = p
	}
	return set
}

// livePolicies holds the current policySet.
type livePolicies struct {
	cur atomic.Pointer[policySet]
	now func() time.Time
}

// paccDigest returns the digest of the policy's PACC document, "" when
// it has none.
func paccDigest(p autoconfig.Policy) string {
	doc, err := p.PACC()
	if err != nil {
		return ""
	}
	return autoconfig.PACCDigest(doc)
}

// replace installs new policies. A domain whose PACC document changed
// keeps its earlier digests (and those still in an earlier rollover)
// published for autoconfig.PACCTTL.
func (l *livePolicies) replace(list []autoconfig.Policy) {
	now := l.now()
	old := l.cur.Load()
	next := newPolicySet(list)
	if old == nil {
		l.cur.Store(next)
		return
	}
	active := now.Before(old.rolloverUntil)
	var rolled bool
	next.rollover = make([]autoconfig.Policy, len(list))
	for i, p := range list {
		next.rollover[i] = p
		prev, ok := old.byDomain[p.Domain]
		if !ok {
			continue
		}
		cur := paccDigest(p)
		var retired []string
		add := func(d string) {
			if d != "" && d != cur && !slices.Contains(retired, d) {
				retired = append(retired, d)
			}
		}
		add(paccDigest(prev))
		if active {
			for _, rp := range old.rollover {
				if rp.Domain == p.Domain {
					for _, d := range rp.PACCRetired {
						add(d)
					}
				}
			}
		}
		if len(retired) > 0 {
			next.rollover[i].PACCRetired = retired
			rolled = true
		}
	}
	if rolled {
		next.rolloverUntil = now.Add(autoconfig.PACCTTL * time.Second)
	} else {
		next.rollover = nil
	}
	l.cur.Store(next)
}

// Policies returns every policy; during a PACC rollover with the retired
// digests, which only the DNS records use.
func (l *livePolicies) Policies() []autoconfig.Policy {
	set := l.cur.Load()
	if set.rollover != nil && l.now().Before(set.rolloverUntil) {
		return set.rollover
	}
	return set.list
}

// Policy returns the policy of a lower-case domain.
func (l *livePolicies) Policy(domain string) (autoconfig.Policy, bool) {
	p, ok := l.cur.Load().byDomain[domain]
	return p, ok
}
