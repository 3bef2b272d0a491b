package dnsd_test

import (
	"testing"

	"github.com/miekg/dns"

	"mailsetup/autoconfig"
	"mailsetup/internal/testkit"
	"mailsetup/server/dnsd"
)

// FuzzServeDNS feeds arbitrary messages to the handler: it must never
// panic and must always write exactly one response with the query's id.
// Odd-length inputs are answered as over TCP, even ones as over UDP.
func FuzzServeDNS(f *testing.F) {
	seed := func(m *dns.Msg) {
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, name := range []string{"_imaps._tcp.example.com.", "AutoConfig.pop-first.test.", "nosuch.example.com.", "example.org.", "_tcp.example.com."} {
		for _, qtype := range []uint16{dns.TypeSRV, dns.TypeA, dns.TypeANY, dns.TypeSOA, dns.TypeCNAME, dns.TypeAXFR} {
			seed(question(name, qtype))
		}
	}
	e := question("example.com.", dns.TypeANY)
	e.SetEdns0(600, true)
	seed(e)
	u := question("example.com.", dns.TypeSOA)
	u.Opcode = dns.OpcodeUpdate
	seed(u)
	f.Add([]byte{})
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11})

	h := dnsd.NewHandler(dnsd.Options{Policies: func() []autoconfig.Policy {
		return []autoconfig.Policy{testkit.IMAPFirst(), testkit.POPFirst(), bigPolicy()}
	}})
	f.Fuzz(func(t *testing.T, data []byte) {
		q := new(dns.Msg)
		if err := q.Unpack(data); err != nil {
			return // the dns library answers these itself (FORMERR) or drops them
		}
		rec := &recorder{tcp: len(data)%2 == 1}
		h.ServeDNS(rec, q)
		resp := rec.only(t)
		if resp.Id != q.Id || !resp.Response {
			t.Fatalf("response id %d QR %v to query id %d", resp.Id, resp.Response, q.Id)
		}
		if !rec.tcp {
			limit := dns.MinMsgSize
			if opt := q.IsEdns0(); opt != nil {
				limit = max(limit, min(int(opt.UDPSize()), dnsd.EDNSUDPSize))
			}
			resp.Compress = true
			if b, _ := resp.Pack(); len(b) > limit {
				t.Fatalf("UDP response of %d bytes, limit %d", len(b), limit)
			}
		}
	})
}
