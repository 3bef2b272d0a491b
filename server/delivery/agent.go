// Package delivery is the outbound delivery agent: it sends the messages
// waiting in the queue (server/queue) to other domains' mail servers,
// over MX (RFC 5321 §5.1; null MX, RFC 7505) or a smarthost, with
// STARTTLS whenever offered (RFC 3207), one connection per destination
// domain for all of a message's recipients there.
//
// Each recipient ends delivered (2xx) or failed (5xx, null MX, no such
// domain, or still refused after Options.MaxAge); 4xx replies and
// unreachable servers are retried on Options.Retry's schedule. A failed
// recipient, and a message still waiting after Options.WarnAfter, gets a
// delivery status notification (RFC 3464) into the sender's mailbox.
//
// Nothing is lost: an item's state is written durably after every
// attempt, and the item leaves the queue only when every recipient has a
// final outcome. A crash during an attempt delivers that attempt's
// recipients again (at least once).
//
// Every wait is ours: DNS, connect, every SMTP command and the whole
// session run under Options' timeouts (go-smtp's own defaults are
// minutes).
//
// Imports: queue and events of the project; miekg/dns, go-smtp.
package delivery

import (
	"cmp"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/prometheus/client_golang/prometheus"

	"mailsetup/server/events"
	"mailsetup/server/queue"
)

// DefaultRetry is the wait after each failed attempt: 5 min, 15 min,
// 30 min, 1 h, 2 h, then every 4 h.
var DefaultRetry = []time.Duration{5 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 4 * time.Hour}

// Smarthost sends everything through one server instead of MX.
type Smarthost struct {
	// Addr is host:port.
	Addr string
	// TLS is "starttls" (required, verified), "tls" (implicit TLS,
	// verified) or "none" (only on loopback or a trusted network).
	TLS string
	// Username and Password for AUTH PLAIN; empty: no AUTH.
	Username, Password string
	// RootCAs verify the smarthost's certificate (nil: the system's).
	RootCAs *x509.CertPool
}

// Options configure an Agent. Zero values take the defaults.
type Options struct {
	Queue    *queue.Queue
	Resolver *Resolver // required unless Smarthost is set
	// Hostname is said in EHLO and names this server in notifications.
	Hostname string
	// Port is the remote servers' SMTP port. Default 25.
	Port int
	// ConnectTimeout (default 30 s) and CommandTimeout (per command and
	// reply, default 2 min; a whole session gets a multiple of it).
	ConnectTimeout, CommandTimeout time.Duration
	// MaxConnections in total (default 20) and MaxPerDomain to one
	// destination domain (default 4).
	MaxConnections, MaxPerDomain int
	// MaxAge is how long a recipient is retried (default 5 days);
	// WarnAfter is when the sender is told, once, that the message is
	// delayed (default 4 h).
	MaxAge, WarnAfter time.Duration
	// Retry is the wait after each failed attempt; the last repeats.
	Retry []time.Duration
	// Smarthost, when set, replaces MX lookups.
	Smarthost *Smarthost
	// Sign returns the message as sent (DKIM signatures added); nil:
	// sent as queued.
	Sign func(from string, msg []byte) ([]byte, error)
	// Notify delivers a notification to the local mailbox of sender; it
	// returns an error when sender has none.
	Notify func(sender string, msg []byte) error
	// Account names the local account of a sender for events ("" when
	// none).
	Account func(sender string) string
	Events  events.Sink
	Logger  *slog.Logger
	// Registry receives the queue's metrics; may be nil.
	Registry prometheus.Registerer
	// RootCAs verify the certificates that must be valid (MTA-STS
	// policy hosts and MX hosts in enforce mode); nil: the system's.
	RootCAs *x509.CertPool
	// PolicyPort is where MTA-STS policies are fetched (HTTPS). Default
	// 443; tests use another.
	PolicyPort int
	// Dial opens the SMTP connections (default: a net.Dialer with
	// ConnectTimeout); a test counts them with it.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

func (o *Options) defaults() {
	if o.Port == 0 {
		o.Port = 25
	}
	if o.PolicyPort == 0 {
		o.PolicyPort = 443
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = 30 * time.Second
	}
	if o.CommandTimeout == 0 {
		o.CommandTimeout = 2 * time.Minute
	}
	if o.MaxConnections == 0 {
		o.MaxConnections = 20
	}
	if o.MaxPerDomain == 0 {
		o.MaxPerDomain = 4
	}
	if o.MaxAge == 0 {
		o.MaxAge = 5 * 24 * time.Hour
	}
	if o.WarnAfter == 0 {
		o.WarnAfter = 4 * time.Hour
	}
	if len(o.Retry) == 0 {
		o.Retry = DefaultRetry
	}
	if o.Hostname == "" {
		o.Hostname = "localhost"
	}
	if o.Events == nil {
		o.Events = events.Discard{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Dial == nil {
		d := &net.Dialer{Timeout: o.ConnectTimeout}
		o.Dial = d.DialContext
	}
	if o.Account == nil {
		o.Account = func(string) string { return "" }
	}
}

// Agent delivers the queue.
type Agent struct {
	opts Options
	log  *slog.Logger

	conns  slots                  // one per open connection
	limits atomic.Pointer[Limits] // MaxConnections ... Retry, as SetLimits changes them
	// routing is Port ... Resolver, as SetRouting changes them.
	routing atomic.Pointer[routing]

	mu sync.Mutex
	// Each queued item is in exactly one of: ready (to try now, in
	// order of arrival), due (to try at a later time), inflight.
	ready     []string
	isReady   map[string]bool
	due       map[string]time.Time
	earliest  time.Time            // the earliest time in due (zero: none)
	received  map[string]time.Time // every queued item's arrival (metrics)
	inflight  map[string]bool
	perDomain map[string]*slots
	sts       map[string]*stsPolicy // MTA-STS policies by domain
	idle      map[string][]*conn    // kept sessions by server (session.go)
	closed    bool                  // Run has ended: no session is kept
	wake      chan struct{}

	delivered *prometheus.CounterVec
	done      chan struct{}
}

// New returns an agent; Run starts it.
func New(opts Options) (*Agent, error) {
	opts.defaults()
	if opts.Queue == nil {
		return nil, errors.New("delivery: no queue")
	}
	a := &Agent{opts: opts, log: opts.Logger,
		due: map[string]time.Time{}, isReady: map[string]bool{}, received: map[string]time.Time{}, inflight: map[string]bool{},
		perDomain: map[string]*slots{}, sts: map[string]*stsPolicy{}, idle: map[string][]*conn{}, wake: make(chan struct{}, 1), done: make(chan struct{})}
	a.limits.Store(limitsOf(opts))
	if err := a.SetRouting(routingOf(opts)); err != nil {
		return nil, err
	}
	a.delivered = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mailsetup_outbound_recipients_total",
		Help: "Outbound delivery attempts per recipient, by result: delivered, deferred (tried again later), bounced (given up; the sender was notified).",
	}, []string{"result"})
	if r := opts.Registry; r != nil {
		r.MustRegister(a.delivered)
		r.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "mailsetup_queue_messages", Help: "Messages in the outbound queue.",
		}, func() float64 { a.mu.Lock(); defer a.mu.Unlock(); return float64(len(a.received)) }))
		r.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "mailsetup_queue_oldest_seconds", Help: "Age of the oldest message in the outbound queue (0 when empty).",
		}, a.oldestAge))
	}
	return a, nil
}

func (a *Agent) oldestAge() float64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	var oldest time.Time
	for _, t := range a.received {
		if oldest.IsZero() || t.Before(oldest) {
			oldest = t
		}
	}
	if oldest.IsZero() {
		return 0
	}
	return time.Since(oldest).Seconds()
}

// Queued tells the agent of a new item (or one to try now).
func (a *Agent) Queued(id string) {
	a.mu.Lock()
	a.schedule(id, time.Time{})
	if _, ok := a.received[id]; !ok {
		a.received[id] = time.Now()
	}
	a.mu.Unlock()
	a.poke()
}

// schedule puts an item not in flight in ready (when is not after now)
// or due; an item already ready stays so, and an earlier time wins.
// The caller holds mu.
func (a *Agent) schedule(id string, when time.Time) {
	if a.inflight[id] || a.isReady[id] {
		return
	}
	if t, ok := a.due[id]; ok && !when.Before(t) {
		return
	}
	if !when.After(time.Now()) {
		delete(a.due, id)
		a.isReady[id] = true
		a.ready = append(a.ready, id)
		return
	}
	a.due[id] = when
	if a.earliest.IsZero() || when.Before(a.earliest) {
		a.earliest = when
	}
}

// promote moves the due items whose time has come to ready, oldest
// first, and finds the next earliest. The caller holds mu.
func (a *Agent) promote(now time.Time) {
	if a.earliest.IsZero() || now.Before(a.earliest) {
		return
	}
	type item struct {
		id string
		t  time.Time
	}
	var come []item
	a.earliest = time.Time{}
	for id, t := range a.due {
		if !t.After(now) {
			come = append(come, item{id, t})
			delete(a.due, id)
		} else if a.earliest.IsZero() || t.Before(a.earliest) {
			a.earliest = t
		}
	}
	slices.SortFunc(come, func(x, y item) int { return cmp.Or(x.t.Compare(y.t), strings.Compare(x.id, y.id)) })
	for _, it := range come {
		a.isReady[it.id] = true
		a.ready = append(a.ready, it.id)
	}
}

func (a *Agent) poke() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// rescanEvery is how often the queue directory is read again, for what
// another process changed; kickEvery how often the kick file of
// `mailsetup queue retry|bounce` is looked at.
const (
	rescanEvery = time.Minute
	kickEvery   = 2 * time.Second
)

// scan reads the queue directory: every item not in flight is scheduled
// at its state's next attempt.
func (a *Agent) scan() {
	envs, err := a.opts.Queue.List()
	if err != nil {
		a.log.Error("reading the queue", "err", err)
		return
	}
	type item struct {
		id         string
		next, recv time.Time
	}
	var items []item
	for _, e := range envs {
		_, st, err := a.opts.Queue.Get(e.ID)
		if err != nil {
			a.log.Error("reading a queued message", "id", e.ID, "err", err)
			continue
		}
		next := st.NextAttempt
		if a.opts.Queue.Requested(e.ID, queue.RequestRetry) || a.opts.Queue.Requested(e.ID, queue.RequestBounce) {
			next = time.Time{} // `mailsetup queue retry|bounce`: now
			a.opts.Queue.Done(e.ID, queue.RequestRetry)
		}
		items = append(items, item{e.ID, next, e.Received})
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	seen := map[string]bool{}
	for _, it := range items {
		seen[it.id] = true
		a.received[it.id] = it.recv
		a.schedule(it.id, it.next)
	}
	for id := range a.due {
		if !seen[id] {
			delete(a.due, id)
			delete(a.received, id)
		}
	}
	// Removed items still in ready are dropped when their turn comes
	// (attempt finds no envelope).
}

// Run delivers until ctx ends, then waits for the attempts in flight
// (their sessions end with ctx) and returns.
func (a *Agent) Run(ctx context.Context) {
	defer close(a.done)
	a.scan()
	var wg sync.WaitGroup
	defer a.closeIdle(true)
	defer wg.Wait()
	lastScan := time.Now()
	kicked := a.opts.Queue.Kicked()
	for {
		now := time.Now()
		if k := a.opts.Queue.Kicked(); now.Sub(lastScan) >= rescanEvery || !k.Equal(kicked) {
			a.scan()
			lastScan, kicked = now, k
		}
		next := lastScan.Add(rescanEvery)
		if k := now.Add(kickEvery); k.Before(next) {
			next = k
		}
		a.closeIdle(false)
		a.mu.Lock()
		a.promote(now)
		if !a.earliest.IsZero() && a.earliest.Before(next) {
			next = a.earliest
		}
		for len(a.inflight) < 2*a.lim().MaxConnections && len(a.ready) > 0 {
			id := a.ready[0]
			a.ready = a.ready[1:]
			delete(a.isReady, id)
			a.inflight[id] = true
			wg.Add(1)
			go func() {
				defer wg.Done()
				nextTry, keep := a.attempt(ctx, id)
				a.mu.Lock()
				delete(a.inflight, id)
				if keep {
					a.schedule(id, nextTry)
				} else {
					delete(a.received, id)
				}
				a.mu.Unlock()
				a.poke()
			}()
		}
		a.mu.Unlock()
		timer := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-a.wake:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// Done is closed when Run has returned.
func (a *Agent) Done() <-chan struct{} { return a.done }

// domainSlot takes one of a destination's connection slots, and one of
// the total, waiting for them; release gives both back.
func (a *Agent) domainSlot(ctx context.Context, domain string) (release func(), err error) {
	a.mu.Lock()
	dom := a.perDomain[domain]
	if dom == nil {
		dom = &slots{}
		a.perDomain[domain] = dom
	}
	a.mu.Unlock()
	if err := dom.take(ctx, func() int { return a.lim().MaxPerDomain }); err != nil {
		return nil, err
	}
	if err := a.conns.take(ctx, func() int { return a.lim().MaxConnections }); err != nil {
		dom.give()
		return nil, err
	}
	return func() { a.conns.give(); dom.give() }, nil
}

// attempt tries an item's pending recipients once, records the outcome,
// notifies the sender of failures and delay, and removes the item when
// every recipient is done. It returns when to try again and whether the
// item stays.
func (a *Agent) attempt(ctx context.Context, id string) (time.Time, bool) {
	q := a.opts.Queue
	env, st, err := q.Get(id)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return time.Time{}, false // removed meanwhile (`mailsetup queue remove`)
		}
		a.log.Error("reading a queued message", "id", id, "err", err)
		return time.Now().Add(a.lim().Retry[0]), true
	}
	msg, err := a.readMessage(id)
	if err != nil {
		a.log.Error("reading a queued message", "id", id, "err", err)
		return time.Now().Add(a.lim().Retry[0]), true
	}
	if a.opts.Sign != nil {
		if signed, err := a.opts.Sign(env.From, msg); err != nil {
			a.log.Warn("DKIM signing failed; sending unsigned", "id", id, "err", err)
		} else {
			msg = signed
		}
	}
	bounce := q.Requested(id, queue.RequestBounce)
	byDomain := map[string][]string{}
	for _, r := range st.Recipients {
		if bounce {
			break // nothing is tried: every pending recipient fails below
		}
		if r.Outcome == queue.Pending {
			d := domainOf(r.Address)
			byDomain[d] = append(byDomain[d], r.Address)
		}
	}
	results := make(map[string]result)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for domain, rcpts := range byDomain {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := a.deliverDomain(ctx, domain, env.From, rcpts, msg)
			mu.Lock()
			for k, v := range res {
				results[k] = v
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	now := time.Now().UTC()
	st.Attempts++
	st.LastAttempt = now
	var failed, delayed []queue.Recipient
	pending := 0
	account := a.opts.Account(env.From)
	for i := range st.Recipients {
		r := &st.Recipients[i]
		res, ok := results[r.Address]
		if bounce && r.Outcome == queue.Pending {
			res, ok = result{outcome: queue.Failed, reply: "returned to the sender by the postmaster (mailsetup queue bounce); last: " + r.Reply}, true
		}
		if r.Outcome != queue.Pending || !ok {
			continue
		}
		r.Host, r.Reply, r.Time = res.host, res.reply, now
		r.Outcome = res.outcome
		if r.Outcome == queue.Pending && now.Sub(env.Received) >= a.lim().MaxAge {
			r.Outcome = queue.Failed
			r.Reply = fmt.Sprintf("gave up after %s; last: %s", days(a.lim().MaxAge), res.reply)
		}
		ev := events.Event{Kind: events.Outbound, Proto: events.ProtoSMTP, Account: account, TLS: res.tls}
		switch r.Outcome {
		case queue.Delivered:
			ev.Result = events.ResultOK
			ev.Detail = fmt.Sprintf("to %s: delivered to %s", r.Address, r.Host)
			a.delivered.WithLabelValues("delivered").Inc()
		case queue.Failed:
			failed = append(failed, *r)
			ev.Result = events.ResultBounced
			ev.Detail = fmt.Sprintf("to %s: bounced: %s", r.Address, r.Reply)
			a.delivered.WithLabelValues("bounced").Inc()
		default:
			ev.Result = events.ResultDeferred
			ev.Detail = fmt.Sprintf("to %s: deferred: %s", r.Address, r.Reply)
			a.delivered.WithLabelValues("deferred").Inc()
		}
		a.opts.Events.Emit(ev)
		a.log.Info("outbound", "id", id, "from", env.From, "to", r.Address, "outcome", string(r.Outcome), "host", r.Host, "reply", r.Reply, "tls", res.tls)
	}
	if len(failed) > 0 {
		a.notify(env, failed, false)
	}
	// Counted over every recipient, not only those tried now: the item
	// stays while any is pending.
	for _, r := range st.Recipients {
		if r.Outcome == queue.Pending {
			pending++
			delayed = append(delayed, r)
		}
	}
	if pending > 0 {
		retry := a.lim().Retry
		wait := retry[min(st.Attempts, len(retry))-1]
		st.NextAttempt = now.Add(wait)
		if !st.Warned && now.Sub(env.Received) >= a.lim().WarnAfter {
			a.notify(env, delayed, true)
			st.Warned = true
		}
	}
	if pending == 0 {
		// Every recipient is done: the item goes without writing its
		// state first (a crash before the removal delivers it again,
		// at least once).
		if err := q.Remove(id); err == nil {
			return time.Time{}, false
		} else {
			a.log.Error("removing a delivered message from the queue", "id", id, "err", err)
			st.NextAttempt = now.Add(a.lim().Retry[0])
		}
	}
	if err := q.SetState(id, st); err != nil {
		a.log.Error("saving a queued message's state; it will be tried again", "id", id, "err", err)
		return time.Now().Add(a.lim().Retry[0]), true
	}
	return st.NextAttempt, true
}

// maxMessage bounds what is read of a queue file (the submission limit
// is far smaller).
const maxMessage = 256 << 20

func (a *Agent) readMessage(id string) ([]byte, error) {
	f, err := a.opts.Queue.Open(id)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxMessage))
}

// deliverDomain sends to one destination's recipients.
func (a *Agent) deliverDomain(ctx context.Context, domain, from string, rcpts []string, msg []byte) map[string]result {
	all := func(o queue.Outcome, reply string) map[string]result {
		out := make(map[string]result, len(rcpts))
		for _, r := range rcpts {
			out[r] = result{outcome: o, reply: reply}
		}
		return out
	}
	r := a.routing.Load()
	key := domain
	if r.Smarthost != nil {
		key = "smarthost"
	}
	release, err := a.domainSlot(ctx, key)
	if err != nil {
		return all(queue.Pending, "not tried: the server is shutting down")
	}
	defer release()
	rt, err := a.route(ctx, r, domain)
	if err != nil {
		var perm errPermanent
		if errors.As(err, &perm) {
			return all(queue.Failed, perm.reason)
		}
		return all(queue.Pending, err.Error())
	}
	return a.send(ctx, rt, from, rcpts, msg)
}

// route finds how to reach domain with r: the smarthost, or its MX
// hosts.
func (a *Agent) route(ctx context.Context, r *routing, domain string) (route, error) {
	if sh := r.Smarthost; sh != nil {
		host, port, err := splitHostPort(sh.Addr)
		if err != nil {
			return route{}, err
		}
		rt := route{r: r, hosts: []string{host}, port: port, requireTLS: sh.TLS != "none", implicitTLS: sh.TLS == "tls"}
		if sh.RootCAs != nil {
			rt.tlsConfig = tlsWithRoots(sh.RootCAs)
		}
		if sh.Username != "" {
			rt.auth = sasl.NewPlainClient("", sh.Username, sh.Password)
		}
		return rt, nil
	}
	lctx, cancel := context.WithTimeout(ctx, r.ConnectTimeout)
	defer cancel()
	mxs, null, err := r.Resolver.LookupMX(lctx, domain)
	switch {
	case errors.Is(err, errNoDomain):
		return route{}, errPermanent{fmt.Sprintf("550 5.1.2 the domain %s does not exist (DNS: NXDOMAIN)", domain)}
	case err != nil:
		return route{}, fmt.Errorf("looking up the mail servers of %s: %w", domain, err)
	case null:
		return route{}, errPermanent{fmt.Sprintf("556 5.1.10 the domain %s accepts no mail (null MX, RFC 7505)", domain)}
	}
	rt := route{r: r, port: r.Port}
	for _, m := range mxs {
		rt.hosts = append(rt.hosts, m.Host)
	}
	if p := a.stsPolicy(ctx, r, domain); p != nil && p.mode == "enforce" {
		rt.requireTLS, rt.allowed = true, p.matches
		if a.opts.RootCAs != nil {
			rt.tlsConfig = tlsWithRoots(a.opts.RootCAs)
		}
	}
	return rt, nil
}

func domainOf(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	return strings.ToLower(addr[i+1:])
}

func days(d time.Duration) string {
	if d >= 24*time.Hour && d%(24*time.Hour) == 0 {
		n := int(d / (24 * time.Hour))
		if n == 1 {
			return "1 day"
		}
		return fmt.Sprintf("%d days", n)
	}
	return d.String()
}
