package dnsd_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"mailsetup/autoconfig"
	"mailsetup/internal/testkit"
	"mailsetup/server/dnsd"
)

// recorder is a dns.ResponseWriter that keeps what the handler writes,
// after a round trip through the wire format.
type recorder struct {
	tcp  bool
	msgs []*dns.Msg
	errs []error
}

func (r *recorder) LocalAddr() net.Addr {
	if r.tcp {
		return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}
	}
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}
}

func (r *recorder) RemoteAddr() net.Addr {
	if r.tcp {
		return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
	}
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
}

func (r *recorder) WriteMsg(m *dns.Msg) error {
	b, err := m.Pack()
	if err != nil {
		r.errs = append(r.errs, err)
		return err
	}
	_, err = r.Write(b)
	return err
}

func (r *recorder) Write(b []byte) (int, error) {
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		r.errs = append(r.errs, err)
		return 0, err
	}
	r.msgs = append(r.msgs, m)
	return len(b), nil
}

func (r *recorder) Close() error        { return nil }
func (r *recorder) TsigStatus() error   { return nil }
func (r *recorder) TsigTimersOnly(bool) {}
func (r *recorder) Hijack()             {}

// only returns the single response written, failing otherwise.
func (r *recorder) only(t *testing.T) *dns.Msg {
	t.Helper()
	if len(r.errs) > 0 || len(r.msgs) != 1 {
		t.Fatalf("handler wrote %d messages (errors %v), want exactly 1", len(r.msgs), r.errs)
	}
	return r.msgs[0]
}

func handlerFor(policies ...autoconfig.Policy) *dnsd.Handler {
	return dnsd.NewHandler(dnsd.Options{Policies: func() []autoconfig.Policy { return policies }})
}

func question(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	return m
}

func serve(t *testing.T, h *dnsd.Handler, q *dns.Msg, tcp bool) *dns.Msg {
	t.Helper()
	rec := &recorder{tcp: tcp}
	h.ServeDNS(rec, q)
	resp := rec.only(t)
	if resp.Id != q.Id || !resp.Response {
		t.Fatalf("response id %d response=%v, want id %d and QR set", resp.Id, resp.Response, q.Id)
	}
	return resp
}

// norm renders an RR the way autoconfig.Record.String does.
func norm(rr dns.RR) string { return strings.Join(strings.Fields(rr.String()), " ") }

func norms(rrs []dns.RR) []string {
	out := make([]string, len(rrs))
	for i, rr := range rrs {
		out[i] = norm(rr)
	}
	return out
}

// want returns the policy's records with the given owner and type (any
// type when typ is ""), as zone-file lines.
func want(p autoconfig.Policy, name, typ string) []string {
	var out []string
	for _, r := range p.Records() {
		if strings.EqualFold(r.Name, name) && (typ == "" || r.Type == typ) {
			out = append(out, r.String())
		}
	}
	return out
}

// expectation of one query.
type expect struct {
	name   string
	qtype  uint16
	rcode  int
	answer []string // zone-file lines, in order
	aa     bool
	soa    bool // SOA of zone in the authority section
}

func check(t *testing.T, h *dnsd.Handler, zone string, e expect) {
	t.Helper()
	resp := serve(t, h, question(e.name, e.qtype), false)
	if resp.Rcode != e.rcode {
		t.Errorf("rcode %s, want %s", dns.RcodeToString[resp.Rcode], dns.RcodeToString[e.rcode])
	}
	if resp.Authoritative != e.aa {
		t.Errorf("AA = %v, want %v", resp.Authoritative, e.aa)
	}
	if resp.RecursionAvailable || resp.Truncated {
		t.Errorf("RA = %v, TC = %v, want both false", resp.RecursionAvailable, resp.Truncated)
	}
	if len(resp.Question) != 1 || resp.Question[0].Name != e.name || resp.Question[0].Qtype != e.qtype {
		t.Errorf("question section %v, want the query's", resp.Question)
	}
	if got := norms(resp.Answer); !slices.Equal(got, e.answer) {
		t.Errorf("answer\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(e.answer, "\n"))
	}
	if len(resp.Answer) > 0 && resp.Answer[0].Header().Name != e.name {
		t.Errorf("answer owner %q, want the question's spelling %q", resp.Answer[0].Header().Name, e.name)
	}
	switch {
	case e.soa:
		if len(resp.Ns) != 1 {
			t.Fatalf("authority %v, want one SOA", resp.Ns)
		}
		soa, ok := resp.Ns[0].(*dns.SOA)
		if !ok || soa.Hdr.Name != zone {
			t.Fatalf("authority %v, want the SOA of %s", resp.Ns[0], zone)
		}
		if soa.Hdr.Ttl != 300 || soa.Minttl != 300 {
			t.Errorf("negative SOA TTL %d minimum %d, want 300 and 300", soa.Hdr.Ttl, soa.Minttl)
		}
	case len(resp.Ns) != 0:
		t.Errorf("authority %v, want none", resp.Ns)
	}
}

func soaLine(p autoconfig.Policy) string {
	return norm(dnsd.SOA(p))
}

func TestPolicies(t *testing.T) {
	for _, p := range []autoconfig.Policy{testkit.IMAPFirst(), testkit.POPFirst()} {
		t.Run(p.Domain, func(t *testing.T) {
			d := p.Domain + "."
			h := handlerFor(testkit.IMAPFirst(), testkit.POPFirst())
			var cases []expect
			for _, label := range autoconfig.SRVServices {
				name := label + "." + d
				cases = append(cases, expect{name: name, qtype: dns.TypeSRV, answer: want(p, name, "SRV"), aa: true})
			}
			ad := "_autodiscover._tcp." + d
			cases = append(cases,
				expect{name: ad, qtype: dns.TypeSRV, answer: want(p, ad, "SRV"), aa: true},
				expect{name: d, qtype: dns.TypeMX, answer: want(p, d, "MX"), aa: true},
				expect{name: d, qtype: dns.TypeSOA, answer: []string{soaLine(p)}, aa: true},
				expect{name: d, qtype: dns.TypeANY, answer: append([]string{soaLine(p)}, want(p, d, "")...), aa: true},
				// NODATA: the name exists with other types.
				expect{name: d, qtype: dns.TypeTXT, aa: true, soa: true},
				expect{name: d, qtype: dns.TypeNS, aa: true, soa: true},
				expect{name: "_imaps._tcp." + d, qtype: dns.TypeA, aa: true, soa: true},
				// NODATA: an empty non-terminal.
				expect{name: "_tcp." + d, qtype: dns.TypeSRV, aa: true, soa: true},
				// NXDOMAIN.
				expect{name: "nosuch." + d, qtype: dns.TypeA, rcode: dns.RcodeNameError, aa: true, soa: true},
				expect{name: "_imaps._udp." + d, qtype: dns.TypeSRV, rcode: dns.RcodeNameError, aa: true, soa: true},
				expect{name: "x._imaps._tcp." + d, qtype: dns.TypeSRV, rcode: dns.RcodeNameError, aa: true, soa: true},
				// Outside every configured domain.
				expect{name: "example.org.", qtype: dns.TypeSRV, rcode: dns.RcodeRefused},
				expect{name: "com.", qtype: dns.TypeSOA, rcode: dns.RcodeRefused},
				expect{name: "x" + d, qtype: dns.TypeA, rcode: dns.RcodeRefused},
				expect{name: ".", qtype: dns.TypeNS, rcode: dns.RcodeRefused},
				// Zone transfers are not offered.
				expect{name: d, qtype: dns.TypeAXFR, rcode: dns.RcodeRefused, aa: true},
			)
			// Mixed case: answered with the question's spelling.
			mixed := "_SubMissionS._TCP." + strings.ToUpper(d[:1]) + d[1:]
			cases = append(cases, expect{name: mixed, qtype: dns.TypeSRV, answer: respell(want(p, "_submissions._tcp."+d, "SRV"), mixed), aa: true})

			for _, host := range []string{"autoconfig." + d, "autodiscover." + d} {
				if len(p.Web.Addresses) > 0 {
					cases = append(cases,
						expect{name: host, qtype: dns.TypeA, answer: want(p, host, "A"), aa: true},
						expect{name: host, qtype: dns.TypeAAAA, answer: want(p, host, "AAAA"), aa: true},
						expect{name: host, qtype: dns.TypeANY, answer: want(p, host, ""), aa: true},
						expect{name: host, qtype: dns.TypeCNAME, aa: true, soa: true},
					)
					continue
				}
				cname := want(p, host, "CNAME")
				if len(cname) != 1 {
					t.Fatalf("%s: want exactly one CNAME in Records, got %v", host, cname)
				}
				cases = append(cases,
					expect{name: host, qtype: dns.TypeCNAME, answer: cname, aa: true},
					expect{name: host, qtype: dns.TypeANY, answer: cname, aa: true},
					// The target is in the zone but owns nothing: the
					// rcode is that of the target (RFC 6604).
					expect{name: host, qtype: dns.TypeA, answer: cname, rcode: dns.RcodeNameError, aa: true, soa: true},
				)
			}
			for _, e := range cases {
				t.Run(fmt.Sprintf("%s_%s", e.name, dns.Type(e.qtype)), func(t *testing.T) {
					check(t, h, d, e)
				})
			}
		})
	}
}

// respell replaces the owner of zone-file lines.
func respell(lines []string, owner string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		_, rest, _ := strings.Cut(l, " ")
		out[i] = owner + " " + rest
	}
	return out
}

func TestNotOfferedServiceHasRootTarget(t *testing.T) {
	// POPFirst offers no implicit-TLS submission and no STARTTLS IMAP.
	h := handlerFor(testkit.POPFirst())
	for _, name := range []string{"_submissions._tcp.pop-first.test.", "_imap._tcp.pop-first.test."} {
		resp := serve(t, h, question(name, dns.TypeSRV), false)
		if len(resp.Answer) != 1 {
			t.Fatalf("%s: answer %v, want one SRV", name, resp.Answer)
		}
		if srv := resp.Answer[0].(*dns.SRV); srv.Target != "." || srv.Port != 0 {
			t.Errorf("%s: %v, want target \".\" port 0", name, srv)
		}
	}
}

func TestMalformedQueries(t *testing.T) {
	h := handlerFor(testkit.IMAPFirst())
	two := question("example.com.", dns.TypeMX)
	two.Question = append(two.Question, dns.Question{Name: "example.com.", Qtype: dns.TypeA, Qclass: dns.ClassINET})
	none := question("example.com.", dns.TypeMX)
	none.Question = nil
	update := question("example.com.", dns.TypeSOA)
	update.Opcode = dns.OpcodeUpdate
	notify := question("example.com.", dns.TypeSOA)
	notify.Opcode = dns.OpcodeNotify
	status := question("example.com.", dns.TypeSOA)
	status.Opcode = dns.OpcodeStatus
	chaos := question("example.com.", dns.TypeTXT)
	chaos.Question[0].Qclass = dns.ClassCHAOS
	resp := question("example.com.", dns.TypeMX)
	resp.Response = true
	twoOPT := question("example.com.", dns.TypeMX)
	twoOPT.SetEdns0(1232, false)
	twoOPT.SetEdns0(4096, false)
	anyClass := question("example.com.", dns.TypeMX)
	anyClass.Question[0].Qclass = dns.ClassANY

	for _, tc := range []struct {
		name  string
		q     *dns.Msg
		rcode int
		n     int // answers
	}{
		{"two questions", two, dns.RcodeFormatError, 0},
		{"no question", none, dns.RcodeFormatError, 0},
		{"QR set", resp, dns.RcodeFormatError, 0},
		{"two OPT", twoOPT, dns.RcodeFormatError, 0},
		{"UPDATE", update, dns.RcodeNotImplemented, 0},
		{"NOTIFY", notify, dns.RcodeNotImplemented, 0},
		{"STATUS", status, dns.RcodeNotImplemented, 0},
		{"class CH", chaos, dns.RcodeRefused, 0},
		{"class ANY", anyClass, dns.RcodeSuccess, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := serve(t, h, tc.q, false)
			if got.Rcode != tc.rcode || len(got.Answer) != tc.n {
				t.Errorf("rcode %s with %d answers, want %s with %d", dns.RcodeToString[got.Rcode], len(got.Answer), dns.RcodeToString[tc.rcode], tc.n)
			}
			if got.Opcode != tc.q.Opcode {
				t.Errorf("opcode %d, want the query's %d", got.Opcode, tc.q.Opcode)
			}
		})
	}
}

func TestHeaderBits(t *testing.T) {
	h := handlerFor(testkit.IMAPFirst())
	q := question("example.com.", dns.TypeMX)
	q.Id = 4242
	q.RecursionDesired = true
	q.CheckingDisabled = true
	resp := serve(t, h, q, false)
	if !resp.RecursionDesired || !resp.CheckingDisabled || resp.RecursionAvailable || resp.AuthenticatedData {
		t.Errorf("RD %v CD %v RA %v AD %v, want RD and CD copied, RA and AD clear", resp.RecursionDesired, resp.CheckingDisabled, resp.RecursionAvailable, resp.AuthenticatedData)
	}
	if resp.IsEdns0() != nil {
		t.Errorf("OPT in the answer to a query without EDNS")
	}
}

func TestSOA(t *testing.T) {
	p := testkit.IMAPFirst()
	soa := dnsd.SOA(p)
	if soa.Hdr.Name != "example.com." || soa.Ns != "ns.example.com." || soa.Mbox != "hostmaster.example.com." || soa.Minttl != 300 {
		t.Errorf("SOA %v, want ns.example.com. hostmaster.example.com. ... 300", soa)
	}
	if again := dnsd.SOA(testkit.IMAPFirst()); again.Serial != soa.Serial {
		t.Errorf("serial changed between calls: %d, %d", soa.Serial, again.Serial)
	}
	p.MX = p.MX[:1]
	if changed := dnsd.SOA(p); changed.Serial == soa.Serial {
		t.Errorf("serial %d did not change with the records", soa.Serial)
	}
	if dnsd.SOA(autoconfig.Policy{}) != nil {
		t.Errorf("SOA of a policy without a domain is not nil")
	}
}

func TestEDNS(t *testing.T) {
	h := handlerFor(testkit.IMAPFirst())
	q := question("_imaps._tcp.example.com.", dns.TypeSRV)
	q.SetEdns0(4096, true)
	resp := serve(t, h, q, false)
	opt := resp.IsEdns0()
	if opt == nil {
		t.Fatalf("no OPT in the answer to an EDNS query")
	}
	if opt.UDPSize() != dnsd.EDNSUDPSize || opt.Version() != 0 || opt.Do() {
		t.Errorf("OPT size %d version %d DO %v, want %d, 0, false", opt.UDPSize(), opt.Version(), opt.Do(), dnsd.EDNSUDPSize)
	}
	if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 1 {
		t.Errorf("rcode %d answer %v", resp.Rcode, resp.Answer)
	}

	bad := question("example.com.", dns.TypeMX)
	bad.SetEdns0(4096, false)
	bad.IsEdns0().SetVersion(1)
	resp = serve(t, h, bad, false)
	if resp.Rcode != dns.RcodeBadVers || resp.IsEdns0() == nil || len(resp.Answer) != 0 {
		t.Errorf("EDNS version 1: rcode %d OPT %v answer %v, want BADVERS with an OPT and no answer", resp.Rcode, resp.IsEdns0(), resp.Answer)
	}
}

// bigPolicy has more addresses than fit in 512 bytes.
func bigPolicy() autoconfig.Policy {
	p := testkit.IMAPFirst()
	p.Web.Addresses = nil
	for i := range 60 {
		p.Web.Addresses = append(p.Web.Addresses, netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i + 1)}))
	}
	return p
}

func TestTruncation(t *testing.T) {
	h := handlerFor(bigPolicy())
	name := "autoconfig.example.com."
	plain := serve(t, h, question(name, dns.TypeAAAA), false)
	if !plain.Truncated || len(plain.Answer) >= 60 {
		t.Errorf("UDP without EDNS: TC %v with %d answers, want TC and fewer than 60", plain.Truncated, len(plain.Answer))
	}
	plain.Compress = true
	if b, _ := plain.Pack(); len(b) > dns.MinMsgSize {
		t.Errorf("UDP answer of %d bytes, want at most %d", len(b), dns.MinMsgSize)
	}
	q := question(name, dns.TypeAAAA)
	q.SetEdns0(4096, false)
	edns := serve(t, h, q, false)
	edns.Compress = true
	if b, _ := edns.Pack(); len(b) > dnsd.EDNSUDPSize || edns.IsEdns0() == nil {
		t.Errorf("EDNS answer of %d bytes (OPT %v), want at most %d with an OPT", len(b), edns.IsEdns0(), dnsd.EDNSUDPSize)
	}
	if edns.Truncated != (len(edns.Answer) < 60) {
		t.Errorf("EDNS answer: TC %v with %d answers", edns.Truncated, len(edns.Answer))
	}
	tcp := serve(t, h, question(name, dns.TypeAAAA), true)
	if tcp.Truncated || len(tcp.Answer) != 60 {
		t.Errorf("TCP: TC %v with %d answers, want all 60 without TC", tcp.Truncated, len(tcp.Answer))
	}
}

func TestLongestDomainWins(t *testing.T) {
	sub := testkit.IMAPFirst()
	sub.Domain = "eu.example.com"
	sub.Web = autoconfig.Web{BaseURL: "https://autoconfig.eu.example.com", Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.99")}}
	h := handlerFor(testkit.IMAPFirst(), sub)
	check(t, h, "eu.example.com.", expect{name: "autoconfig.eu.example.com.", qtype: dns.TypeA, answer: want(sub, "autoconfig.eu.example.com.", "A"), aa: true})
	check(t, h, "eu.example.com.", expect{name: "nosuch.eu.example.com.", qtype: dns.TypeA, rcode: dns.RcodeNameError, aa: true, soa: true})
	check(t, h, "example.com.", expect{name: "autoconfig.example.com.", qtype: dns.TypeA, answer: want(testkit.IMAPFirst(), "autoconfig.example.com.", "A"), aa: true})
}

func TestCNAMEChain(t *testing.T) {
	a := testkit.POPFirst()
	a.Domain = "a.test"
	a.Web = autoconfig.Web{BaseURL: "https://autoconfig.b.test"}
	b := testkit.POPFirst()
	b.Domain = "b.test"
	b.Web = autoconfig.Web{BaseURL: "https://autoconfig.b.test", Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.7")}}
	h := handlerFor(a, b)
	cname := "autoconfig.a.test. 3600 IN CNAME autoconfig.b.test."
	check(t, h, "", expect{name: "autoconfig.a.test.", qtype: dns.TypeA, answer: []string{cname, "autoconfig.b.test. 3600 IN A 192.0.2.7"}, aa: true})
	check(t, h, "b.test.", expect{name: "autoconfig.a.test.", qtype: dns.TypeAAAA, answer: []string{cname}, aa: true, soa: true})

	// A loop between two zones ends.
	b.Web = autoconfig.Web{BaseURL: "https://autoconfig.a.test"}
	h = handlerFor(a, b)
	check(t, h, "", expect{name: "autoconfig.a.test.", qtype: dns.TypeA, answer: []string{cname, "autoconfig.b.test. 3600 IN CNAME autoconfig.a.test."}, aa: true})

	// A target outside the configured domains is left to the client.
	a.Web = autoconfig.Web{BaseURL: "https://web.example.org"}
	h = handlerFor(a)
	check(t, h, "", expect{name: "autodiscover.a.test.", qtype: dns.TypeA, answer: []string{"autodiscover.a.test. 3600 IN CNAME web.example.org."}, aa: true})
}

func TestPoliciesReloaded(t *testing.T) {
	current := []autoconfig.Policy{testkit.IMAPFirst()}
	h := dnsd.NewHandler(dnsd.Options{Policies: func() []autoconfig.Policy { return current }})
	if resp := serve(t, h, question("pop-first.test.", dns.TypeMX), false); resp.Rcode != dns.RcodeRefused {
		t.Fatalf("before reload: rcode %d, want REFUSED", resp.Rcode)
	}
	current = append(current, testkit.POPFirst())
	if resp := serve(t, h, question("pop-first.test.", dns.TypeMX), false); resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 1 {
		t.Fatalf("after reload: rcode %d answer %v, want the MX", resp.Rcode, resp.Answer)
	}
}

func TestPanicAnswersServfail(t *testing.T) {
	var logs bytes.Buffer
	h := dnsd.NewHandler(dnsd.Options{
		Policies: func() []autoconfig.Policy { panic("config exploded") },
		Logger:   slog.New(slog.NewTextHandler(&logs, nil)),
	})
	resp := serve(t, h, question("example.com.", dns.TypeMX), false)
	if resp.Rcode != dns.RcodeServerFailure {
		t.Errorf("rcode %s, want SERVFAIL", dns.RcodeToString[resp.Rcode])
	}
	if !strings.Contains(logs.String(), "config exploded") {
		t.Errorf("panic not logged: %q", logs.String())
	}
}

func TestUnencodableDataAnswersServfail(t *testing.T) {
	p := testkit.IMAPFirst()
	p.MX = []autoconfig.MX{{Host: strings.Repeat("x", 70) + ".example.com", Preference: 10}}
	resp := serve(t, handlerFor(p), question("example.com.", dns.TypeMX), false)
	if resp.Rcode != dns.RcodeServerFailure {
		t.Errorf("rcode %s, want SERVFAIL", dns.RcodeToString[resp.Rcode])
	}
}

func TestNilPoliciesPanicsEarly(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Errorf("NewHandler without Policies did not panic")
		}
	}()
	dnsd.NewHandler(dnsd.Options{})
}

func TestLogsOneLinePerQuery(t *testing.T) {
	var logs bytes.Buffer
	h := dnsd.NewHandler(dnsd.Options{
		Policies: func() []autoconfig.Policy { return []autoconfig.Policy{testkit.IMAPFirst()} },
		Logger:   slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	serve(t, h, question("nosuch.Example.com.", dns.TypeSRV), false)
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("%d log lines, want 1:\n%s", len(lines), logs.String())
	}
	for _, s := range []string{"level=DEBUG", "name=nosuch.Example.com.", "type=SRV", "rcode=NXDOMAIN", "duration=", "transport=udp"} {
		if !strings.Contains(lines[0], s) {
			t.Errorf("log line %q lacks %q", lines[0], s)
		}
	}
}
