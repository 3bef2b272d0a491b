package clients_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"mailsetup/autoconfig"
	"mailsetup/autoconfig/autodiscover"
	"mailsetup/autoconfig/mobileconfig"
	"mailsetup/autoconfig/mozilla"
	"mailsetup/finding"
	"mailsetup/internal/testkit"
	"mailsetup/probe/clients"
)

// world is a test internet on loopback: an authoritative DNS server
// answering from zone lines, and one HTTPS and one HTTP listener that
// serve each host's documents (rendered from that host's policy), with a
// certificate per host name from a test CA (expired for the names in
// expired).
type world struct {
	mu      sync.Mutex
	zone    map[string][]dns.RR // canonical owner name -> records
	docs    map[string]autoconfig.Policy
	httpOK  map[string]bool // hosts that answer over plain HTTP too
	noHTTPS map[string]bool // hosts whose HTTPS answers 404
	expired map[string]bool

	roots            *x509.CertPool
	caCert           *x509.Certificate
	caKey            *ecdsa.PrivateKey
	resolver         string
	httpsPort, httpP int
}

func newWorld(t *testing.T) *world {
	t.Helper()
	return newWorldAt(t, "127.0.0.1", false)
}

// newWorldAt is newWorld on ip; with standard, on the standard ports (53,
// 443, 80) so that a real client using the system's resolver and URLs
// without ports can be pointed at it.
func newWorldAt(t *testing.T, ip string, standard bool) *world {
	t.Helper()
	port := func(std string) string {
		if standard {
			return net.JoinHostPort(ip, std)
		}
		return net.JoinHostPort(ip, "0")
	}
	w := &world{zone: map[string][]dns.RR{}, docs: map[string]autoconfig.Policy{}, httpOK: map[string]bool{}, noHTTPS: map[string]bool{}, expired: map[string]bool{}}
	w.caKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(48 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &w.caKey.PublicKey, w.caKey)
	if err != nil {
		t.Fatal(err)
	}
	w.caCert, _ = x509.ParseCertificate(der)
	w.roots = x509.NewCertPool()
	w.roots.AddCert(w.caCert)

	// DNS.
	pc, err := net.ListenPacket("udp", port("53"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(w.serveDNS)}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	w.resolver = pc.LocalAddr().String()

	// HTTPS and HTTP.
	ln, err := net.Listen("tcp", port("443"))
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(w.serveHTTP), TLSConfig: &tls.Config{GetCertificate: w.certificate}, ReadHeaderTimeout: 5 * time.Second,
		ErrorLog: log.New(io.Discard, "", 0)} // rejected handshakes are what the tests cause
	go hs.ServeTLS(ln, "", "")
	t.Cleanup(func() { hs.Close() })
	w.httpsPort = ln.Addr().(*net.TCPAddr).Port
	pln, err := net.Listen("tcp", port("80"))
	if err != nil {
		t.Fatal(err)
	}
	ps := &http.Server{Handler: http.HandlerFunc(w.serveHTTP), ReadHeaderTimeout: 5 * time.Second}
	go ps.Serve(pln)
	t.Cleanup(func() { ps.Close() })
	w.httpP = pln.Addr().(*net.TCPAddr).Port
	return w
}

func (w *world) opts() clients.Options {
	return clients.Options{Resolver: w.resolver, RootCAs: w.roots, Timeout: 3 * time.Second, HTTPSPort: w.httpsPort, HTTPPort: w.httpP}
}

// add puts zone-file lines into the zone.
func (w *world) add(t *testing.T, lines ...string) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, l := range lines {
		rr, err := dns.NewRR(l)
		if err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		name := dns.CanonicalName(rr.Header().Name)
		w.zone[name] = append(w.zone[name], rr)
	}
}

// drop removes every record of name and type.
func (w *world) drop(name string, typ uint16) {
	w.mu.Lock()
	defer w.mu.Unlock()
	name = dns.CanonicalName(name)
	var keep []dns.RR
	for _, rr := range w.zone[name] {
		if rr.Header().Rrtype != typ {
			keep = append(keep, rr)
		}
	}
	w.zone[name] = keep
}

// publish puts the policy's own records into the zone.
func (w *world) publish(t *testing.T, p autoconfig.Policy) {
	t.Helper()
	for _, r := range p.Records() {
		w.add(t, r.String())
	}
}

func (w *world) serveDNS(rw dns.ResponseWriter, r *dns.Msg) {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	q := r.Question[0]
	name := dns.CanonicalName(q.Name)
	for range 8 {
		var cname *dns.CNAME
		for _, rr := range w.zone[name] {
			if rr.Header().Rrtype == q.Qtype {
				m.Answer = append(m.Answer, rr)
			} else if c, ok := rr.(*dns.CNAME); ok {
				cname = c
			}
		}
		if len(m.Answer) > 0 || cname == nil {
			break
		}
		m.Answer = append(m.Answer, cname)
		name = dns.CanonicalName(cname.Target)
	}
	rw.WriteMsg(m)
}

func (w *world) certificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	w.mu.Lock()
	expired := w.expired[hello.ServerName]
	w.mu.Unlock()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	notAfter := time.Now().Add(24 * time.Hour)
	if expired {
		notAfter = time.Now().Add(-24 * time.Hour)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: hello.ServerName},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: notAfter, DNSNames: []string{hello.ServerName},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, w.caCert, &key.PublicKey, w.caKey)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// serveHTTP serves the documents of the policy that owns the Host.
func (w *world) serveHTTP(rw http.ResponseWriter, r *http.Request) {
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host // no port: a client on the standard ports
	}
	w.mu.Lock()
	p, ok := w.docs[host]
	if r.TLS == nil && !w.httpOK[host] || r.TLS != nil && w.noHTTPS[host] {
		ok = false
	}
	w.mu.Unlock()
	if !ok {
		http.NotFound(rw, r)
		return
	}
	var buf bytes.Buffer
	switch {
	case strings.HasSuffix(r.URL.Path, "/config-v1.1.xml"):
		addr := r.URL.Query().Get("emailaddress")
		err = mozilla.Render(&buf, p, addr)
	case strings.EqualFold(r.URL.Path, "/autodiscover/autodiscover.xml") && r.Method == http.MethodPost:
		err = autodiscover.WriteResponse(&buf, p, "john@"+p.Domain)
	case r.URL.Path == autoconfig.PACCPath:
		var doc []byte
		doc, err = p.PACC()
		buf.Write(doc)
	case r.URL.Path == "/apple/mail.mobileconfig":
		var doc []byte
		doc, err = mobileconfig.Render(p, r.URL.Query().Get("email"))
		buf.Write(doc)
	default:
		http.NotFound(rw, r)
		return
	}
	if err != nil {
		http.Error(rw, err.Error(), 500)
		return
	}
	rw.Write(buf.Bytes())
}

// loopPolicy is testkit's IMAP-first policy with its web names on
// loopback.
func loopPolicy() autoconfig.Policy {
	p := testkit.IMAPFirst()
	p.Web = autoconfig.Web{BaseURL: "https://autoconfig.example.com", Addresses: []netip.Addr{netip.MustParseAddr("127.0.0.1")}}
	return p
}

// healthy is a world where example.com publishes exactly its policy.
func healthy(t *testing.T) (*world, autoconfig.Policy) {
	w := newWorld(t)
	p := loopPolicy()
	w.publish(t, p)
	w.add(t, "example.com. 300 IN A 127.0.0.1")
	for _, h := range []string{"autoconfig.example.com", "autodiscover.example.com", "ua-auto-config.example.com", "example.com"} {
		w.docs[h] = p
	}
	return w, p
}

func ids(fs []finding.Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.ID)
	}
	return out
}

func TestCheckDomainHealthy(t *testing.T) {
	w, p := healthy(t)
	rep, err := clients.CheckDomain(context.Background(), p, w.opts())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Records {
		if r.Status != clients.RecordOK {
			t.Errorf("record %s %s: %s (want %q, got %q)", r.Name, r.Type, r.Status, r.Want, r.Got)
		}
	}
	if len(rep.Hosts) != 3 {
		t.Errorf("hosts: %+v", rep.Hosts)
	}
	for _, h := range rep.Hosts {
		if h.Outcome != "ok" {
			t.Errorf("host %s: %s %s", h.Host, h.Outcome, h.Detail)
		}
	}
	if len(rep.Findings) != 0 || len(rep.Documents) != 3 {
		t.Errorf("findings %v, documents %q", ids(rep.Findings), rep.Documents)
	}
}

// TestCheckDomainFaults: a missing record, a differing one, an expired
// certificate on the autodiscover host, a PACC digest that does not
// match, and a Thunderbird document that differs from the policy.
func TestCheckDomainFaults(t *testing.T) {
	w, p := healthy(t)
	w.drop("_imaps._tcp.example.com.", dns.TypeSRV)
	w.drop("example.com.", dns.TypeMX)
	w.add(t, "example.com. 300 IN MX 10 mx.old-provider.test.")
	w.drop("_ua-auto-config.example.com.", dns.TypeTXT)
	w.add(t, `_ua-auto-config.example.com. 300 IN TXT "v=UAAC1; a=sha256; d=b2xkIGRpZ2VzdA=="`)
	w.expired["autodiscover.example.com"] = true
	old := p
	old.IMAP = []autoconfig.Endpoint{{Protocol: autoconfig.IMAP, Host: "imap.old-provider.test", Port: 993, Security: autoconfig.TLS}}
	w.docs["autoconfig.example.com"] = old

	rep, err := clients.CheckDomain(context.Background(), p, w.opts())
	if err != nil {
		t.Fatal(err)
	}
	status := map[string]string{}
	for _, r := range rep.Records {
		status[r.Name+" "+r.Type] = r.Status
	}
	for k, want := range map[string]string{
		"_imaps._tcp.example.com. SRV":     clients.RecordMissing,
		"example.com. MX":                  clients.RecordDiffers,
		"_ua-auto-config.example.com. TXT": clients.RecordDiffers,
		"_pop3s._tcp.example.com. SRV":     clients.RecordOK,
	} {
		if status[k] != want {
			t.Errorf("%s: %s, want %s", k, status[k], want)
		}
	}
	got := strings.Join(ids(rep.Findings), " ")
	for _, id := range []string{"domain.record-missing", "domain.record-differs", "domain.host-certificate", "domain.documents-disagree", "pacc.digest-mismatch"} {
		if !strings.Contains(got, id) {
			t.Errorf("findings %s lack %s", got, id)
		}
	}
	if !strings.Contains(strings.Join(rep.Documents, "\n"), "imap server imap imap.old-provider.test:993 tls") {
		t.Errorf("documents: %q", rep.Documents)
	}
}
