package dnsd

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"strings"
	"time"

	"github.com/miekg/dns"

	"mailsetup/autoconfig"
)

// Options configure a Handler and a Server.
type Options struct {
	// Policies returns the current policies (called per query; the config
	// may be reloaded). Required.
	Policies func() []autoconfig.Policy
	// Logger receives one debug line per query and an error line per
	// recovered panic. nil: discard.
	Logger *slog.Logger
	// ReadTimeout bounds the wait for a query (the first one on a TCP
	// connection); WriteTimeout bounds each response write on TCP.
	// 0: DefaultTimeout.
	ReadTimeout, WriteTimeout time.Duration
}

// DefaultTimeout is the read and write timeout used when Options leave
// them 0.
const DefaultTimeout = 2 * time.Second

// EDNSUDPSize is the UDP payload size the responder advertises in its OPT
// record and the most it sends over UDP (the DNS flag day 2020 value,
// which avoids IP fragmentation).
const EDNSUDPSize = 1232

// maxCNAMEChain is how many CNAME links are followed within the configured
// domains before the answer is returned as it is.
const maxCNAMEChain = 8

// Handler answers queries; it implements dns.Handler and can be tested
// without sockets. It is safe for concurrent use.
type Handler struct {
	policies func() []autoconfig.Policy
	log      *slog.Logger
}

// NewHandler returns a handler for opts. It panics when opts.Policies is
// nil: a responder without a source of policies is a programming error.
func NewHandler(opts Options) *Handler {
	if opts.Policies == nil {
		panic("dnsd: Options.Policies is required")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{policies: opts.Policies, log: log}
}

// onceWriter remembers whether a response was written, so that a panic
// after the write does not produce a second one.
type onceWriter struct {
	dns.ResponseWriter
	written bool
}

func (w *onceWriter) WriteMsg(m *dns.Msg) error {
	w.written = true
	return w.ResponseWriter.WriteMsg(m)
}

// ServeDNS answers r on w. It always writes exactly one response (unless
// the writer itself fails) and never lets a panic escape: a panic is
// logged and answered with SERVFAIL.
func (h *Handler) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	start := time.Now()
	ow := &onceWriter{ResponseWriter: w}
	rcode := dns.RcodeServerFailure
	tcp, remote := false, ""
	defer func() {
		if v := recover(); v != nil {
			h.log.LogAttrs(context.Background(), slog.LevelError, "dnsd: panic while answering a query",
				slog.String("panic", fmt.Sprint(v)), slog.String("stack", string(debug.Stack())))
			rcode = dns.RcodeServerFailure
			if !ow.written {
				h.writeServfail(ow, r)
			}
		}
		h.logQuery(r, rcode, tcp, remote, time.Since(start))
	}()
	tcp, remote = isTCP(w), addrString(w.RemoteAddr())
	resp := h.answer(r, tcp)
	if _, err := resp.Pack(); err != nil {
		// Data that cannot be encoded (an invalid name in a policy).
		h.log.LogAttrs(context.Background(), slog.LevelError, "dnsd: cannot encode the answer",
			slog.String("name", questionName(r)), slog.String("error", err.Error()))
		resp = failure(r, dns.RcodeServerFailure)
	}
	rcode = resp.Rcode
	ow.WriteMsg(resp)
}

// writeServfail writes a SERVFAIL, itself guarded against panics (a
// broken writer must not crash the server either).
func (h *Handler) writeServfail(w dns.ResponseWriter, r *dns.Msg) {
	defer func() {
		if v := recover(); v != nil {
			h.log.LogAttrs(context.Background(), slog.LevelError, "dnsd: panic while writing SERVFAIL",
				slog.String("panic", fmt.Sprint(v)))
		}
	}()
	w.WriteMsg(failure(r, dns.RcodeServerFailure))
}

func (h *Handler) logQuery(r *dns.Msg, rcode int, tcp bool, remote string, d time.Duration) {
	ctx := context.Background()
	if !h.log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	name, typ := "", ""
	if r != nil && len(r.Question) > 0 {
		name, typ = r.Question[0].Name, dns.Type(r.Question[0].Qtype).String()
	}
	transport := "udp"
	if tcp {
		transport = "tcp"
	}
	h.log.LogAttrs(ctx, slog.LevelDebug, "dns query",
		slog.String("name", name), slog.String("type", typ),
		slog.String("rcode", rcodeString(rcode)), slog.Duration("duration", d),
		slog.String("transport", transport), slog.String("remote", remote))
}

func rcodeString(rcode int) string {
	if s, ok := dns.RcodeToString[rcode]; ok {
		return s
	}
	return fmt.Sprintf("RCODE%d", rcode)
}

func questionName(r *dns.Msg) string {
	if r == nil || len(r.Question) == 0 {
		return ""
	}
	return r.Question[0].Name
}

// isTCP reports whether w answers over a stream transport; anything else
// (including a writer without an address) gets the UDP size limits.
func isTCP(w dns.ResponseWriter) bool {
	a := w.RemoteAddr()
	if a == nil {
		return false
	}
	return strings.HasPrefix(a.Network(), "tcp")
}

// reply starts a response to r.
func reply(r *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	if r == nil {
		m.Response = true
		return m
	}
	m.Id = r.Id
	m.Response = true
	m.Opcode = r.Opcode
	if r.Opcode == dns.OpcodeQuery {
		m.RecursionDesired = r.RecursionDesired
		m.CheckingDisabled = r.CheckingDisabled
	}
	if len(r.Question) == 1 {
		m.Question = []dns.Question{r.Question[0]}
	}
	return m
}

// failure is a response with rcode and no records (beyond an OPT record
// when the query had exactly one).
func failure(r *dns.Msg, rcode int) *dns.Msg {
	m := reply(r)
	m.Rcode = rcode
	if r != nil {
		if opt, n := findOPT(r); n == 1 && opt != nil {
			m.SetEdns0(EDNSUDPSize, false)
		}
	}
	return m
}

// findOPT returns the (last) OPT record of r and how many r has.
func findOPT(r *dns.Msg) (*dns.OPT, int) {
	var opt *dns.OPT
	n := 0
	for _, rr := range r.Extra {
		if o, ok := rr.(*dns.OPT); ok {
			opt = o
			n++
		}
	}
	return opt, n
}

// answer builds the response to r; tcp selects the size limit.
func (h *Handler) answer(r *dns.Msg, tcp bool) *dns.Msg {
	if r == nil {
		return failure(nil, dns.RcodeFormatError)
	}
	opt, nopt := findOPT(r)
	switch {
	case r.Response:
		// A response is no query; the Server drops these unanswered.
		return failure(r, dns.RcodeFormatError)
	case r.Opcode != dns.OpcodeQuery:
		return failure(r, dns.RcodeNotImplemented)
	case len(r.Question) != 1:
		return failure(r, dns.RcodeFormatError)
	case nopt > 1 || (opt != nil && opt.Hdr.Name != "."):
		// RFC 6891 §6.1.1: more than one OPT, or one not owned by the root.
		m := failure(r, dns.RcodeFormatError)
		m.Extra = nil
		return m
	case opt != nil && opt.Version() != 0:
		return failure(r, dns.RcodeBadVers)
	}
	q := r.Question[0]
	m := reply(r)
	if opt != nil {
		m.SetEdns0(EDNSUDPSize, false)
	}
	limit := dns.MinMsgSize
	switch {
	case tcp:
		limit = dns.MaxMsgSize
	case opt != nil:
		limit = min(max(int(opt.UDPSize()), dns.MinMsgSize), EDNSUDPSize)
	}
	defer func() {
		m.Compress = true
		m.Truncate(limit)
	}()

	if q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY {
		m.Rcode = dns.RcodeRefused
		return m
	}
	policies := h.policies()
	zones := map[string]*zone{}
	z := lookupZone(policies, zones, dns.CanonicalName(q.Name))
	if z == nil {
		m.Rcode = dns.RcodeRefused
		return m
	}
	m.Authoritative = true
	if q.Qtype == dns.TypeAXFR || q.Qtype == dns.TypeIXFR {
		m.Rcode = dns.RcodeRefused
		return m
	}
	h.resolve(m, policies, zones, z, q)
	return m
}

// lookupZone returns the zone of the longest configured domain at or above
// name (canonical), building it from its policy once per query.
func lookupZone(policies []autoconfig.Policy, zones map[string]*zone, name string) *zone {
	best, bestLabels := -1, -1
	for i, p := range policies {
		apex := apexOf(p)
		if apex == "" || !dns.IsSubDomain(apex, name) {
			continue
		}
		if n := dns.CountLabel(apex); n > bestLabels {
			best, bestLabels = i, n
		}
	}
	if best < 0 {
		return nil
	}
	apex := apexOf(policies[best])
	if z, ok := zones[apex]; ok {
		return z
	}
	z := buildZone(policies[best])
	zones[apex] = z
	return z
}

// resolve fills m's answer (and authority) for q within zone z, following
// CNAMEs while their targets are in configured zones (RFC 1034 §4.3.2,
// RFC 6604: the rcode is that of the last name).
func (h *Handler) resolve(m *dns.Msg, policies []autoconfig.Policy, zones map[string]*zone, z *zone, q dns.Question) {
	owner := dns.Fqdn(q.Name) // spelled as asked
	name := dns.CanonicalName(q.Name)
	visited := map[string]bool{}
	for hops := 0; ; hops++ {
		visited[name] = true
		rrs := z.rrs[name]
		if cname := findCNAME(rrs); cname != nil && q.Qtype != dns.TypeCNAME && q.Qtype != dns.TypeANY {
			m.Answer = append(m.Answer, withOwner(cname, owner))
			target := dns.CanonicalName(cname.Target)
			if hops+1 >= maxCNAMEChain || visited[target] {
				return
			}
			next := lookupZone(policies, zones, target)
			if next == nil {
				return // outside our data: the client resolves the target
			}
			z, owner, name = next, cname.Target, target
			continue
		}
		var found bool
		for _, rr := range rrs {
			if q.Qtype == dns.TypeANY || rr.Header().Rrtype == q.Qtype {
				m.Answer = append(m.Answer, withOwner(rr, owner))
				found = true
			}
		}
		switch {
		case found:
		case z.exists(name):
			m.Ns = append(m.Ns, z.negativeSOA())
		default:
			m.Rcode = dns.RcodeNameError
			m.Ns = append(m.Ns, z.negativeSOA())
		}
		return
	}
}

func findCNAME(rrs []dns.RR) *dns.CNAME {
	for _, rr := range rrs {
		if c, ok := rr.(*dns.CNAME); ok {
			return c
		}
	}
	return nil
}

// withOwner returns a copy of rr owned by name.
func withOwner(rr dns.RR, name string) dns.RR {
	c := dns.Copy(rr)
	c.Header().Name = name
	return c
}

// Compile-time check that Handler is a dns.Handler.
var _ dns.Handler = (*Handler)(nil)

// addrString renders an address for logs.
func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}
