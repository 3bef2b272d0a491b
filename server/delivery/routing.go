package delivery

import (
	"errors"
	"time"
)

// Routing is where and how the agent reaches the remote servers: what a
// config reload may change (SetRouting). Each delivery takes the
// routing in force when it starts and keeps it to its end.
type Routing struct {
	// Port, ConnectTimeout, CommandTimeout, Smarthost and Resolver are
	// as in Options.
	Port                           int
	ConnectTimeout, CommandTimeout time.Duration
	Smarthost                      *Smarthost
	Resolver                       *Resolver
}

// routing is one Routing in force; gen tells kept sessions of an
// earlier one apart (they are not reused: another smarthost login, other
// timeouts).
type routing struct {
	Routing
	gen uint64
}

func routingOf(o Options) Routing {
	return Routing{Port: o.Port, ConnectTimeout: o.ConnectTimeout, CommandTimeout: o.CommandTimeout, Smarthost: o.Smarthost, Resolver: o.Resolver}
}

// SetRouting changes the remote servers' port, the timeouts, the
// smarthost and the resolver for the deliveries that start from now on;
// those under way finish with theirs. Zero values take the defaults;
// neither a resolver nor a smarthost is an error and changes nothing.
func (a *Agent) SetRouting(r Routing) error {
	if r.Resolver == nil && r.Smarthost == nil {
		return errors.New("delivery: neither a resolver nor a smarthost")
	}
	o := Options{Port: r.Port, ConnectTimeout: r.ConnectTimeout, CommandTimeout: r.CommandTimeout}
	o.defaults()
	r.Port, r.ConnectTimeout, r.CommandTimeout = o.Port, o.ConnectTimeout, o.CommandTimeout
	a.mu.Lock()
	defer a.mu.Unlock()
	var gen uint64
	if cur := a.routing.Load(); cur != nil {
		gen = cur.gen + 1
	}
	a.routing.Store(&routing{Routing: r, gen: gen})
	return nil
}
