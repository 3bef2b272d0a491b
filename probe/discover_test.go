package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"mailsetup/autoconfig"
	"mailsetup/autoconfig/autodiscover"
	"mailsetup/autoconfig/mozilla"
)

// elsewhere is a domain without a policy whose discovery documents and
// mail servers all run on loopback.
type elsewhere struct {
	pop  *fakePOP3
	smtp *fakeSMTP
	cfg  *tls.Config
	pol  autoconfig.Policy
	opts Options

	mu       sync.Mutex
	requests []string // "METHOD host path", Authorization header, body
}

const elsewhereDomain = "elsewhere.test"

// newElsewhere starts a POP3 and a submission server and an HTTPS
// server answering with serve (nil: 404 for everything). Every name
// resolves to 127.0.0.1.
func newElsewhere(t *testing.T, serve func(e *elsewhere, w http.ResponseWriter, r *http.Request) bool) *elsewhere {
	t.Helper()
	cfg, roots := testCert(t, []string{"autoconfig." + elsewhereDomain, elsewhereDomain, "autodiscover." + elsewhereDomain,
		"pop." + elsewhereDomain, "smtp." + elsewhereDomain, "imap." + elsewhereDomain, "autoconfig.provider.test", "autoconfig.mx.provider.test"}, 90*24*time.Hour)
	e := &elsewhere{cfg: cfg}
	e.pop = startFakePOP3(t, cfg, "+OK welcome", "")
	e.smtp = startFakeSMTP(t, smtpScript{auth: "235 2.7.0 ok"}, cfg)
	e.pol = autoconfig.Policy{
		Domain: elsewhereDomain, DisplayName: "Elsewhere", ShortName: "Elsewhere",
		POP3:       []autoconfig.Endpoint{{Protocol: autoconfig.POP3, Host: "pop." + elsewhereDomain, Port: e.pop.ln.Addr().(*net.TCPAddr).Port, Security: autoconfig.TLS}},
		Submission: []autoconfig.Endpoint{{Protocol: autoconfig.SMTP, Host: "smtp." + elsewhereDomain, Port: e.smtp.ln.Addr().(*net.TCPAddr).Port, Security: autoconfig.STARTTLS}},
		Prefer:     autoconfig.POP3, Username: autoconfig.FullAddress,
		POP: autoconfig.POP3Policy{LeaveOnServer: true, DeleteAfterDays: 3},
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		e.mu.Lock()
		e.requests = append(e.requests, r.Method+" "+r.Host+" "+r.URL.Path+" auth="+r.Header.Get("Authorization")+" "+string(body))
		e.mu.Unlock()
		if serve == nil || !serve(e, w, r) {
			http.NotFound(w, r)
		}
	}))
	srv.TLS = cfg
	srv.StartTLS()
	t.Cleanup(srv.Close)
	e.opts = Options{
		Discover:    true,
		RootCAs:     roots,
		StepTimeout: 5 * time.Second,
		Resolve:     func(string) (string, bool) { return "127.0.0.1", true },
		HTTPSPort:   srv.Listener.Addr().(*net.TCPAddr).Port,
	}
	return e
}

func (e *elsewhere) got() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.requests)
}

func stepNames(r *Report) []string {
	var out []string
	for _, s := range r.Steps {
		out = append(out, s.Name)
	}
	return out
}

// checkEndpoints: the discovered servers were connected to without error.
func checkEndpoints(t *testing.T, e *elsewhere, rep *Report) {
	t.Helper()
	for _, ep := range slices.Concat(e.pol.POP3, e.pol.Submission) {
		i := slices.IndexFunc(rep.Steps, func(s Step) bool { return s.Name == "connect "+ep.String() })
		if i < 0 {
			t.Errorf("no connect step for %s: %v", ep, stepNames(rep))
			continue
		}
		if rep.Steps[i].Error != "" {
			t.Errorf("%s: %s", rep.Steps[i].Name, rep.Steps[i].Error)
		}
	}
	if !slices.Contains(e.pop.got(), "CAPA") {
		t.Errorf("the POP3 server was not checked: %v", e.pop.got())
	}
	for _, n := range stepNames(rep) {
		if n == "dns records" || n == "autoconfig document" {
			t.Errorf("step %q for discovered settings", n)
		}
	}
}

func TestProbeDiscoverAutoconfig(t *testing.T) {
	e := newElsewhere(t, func(e *elsewhere, w http.ResponseWriter, r *http.Request) bool {
		if r.Host == "autoconfig."+elsewhereDomain+":"+portOf(r) && r.URL.Path == "/mail/config-v1.1.xml" {
			w.Header().Set("Content-Type", "text/xml")
			if err := mozilla.Render(w, e.pol, r.URL.Query().Get("emailaddress")); err != nil {
				t.Error(err)
			}
			return true
		}
		return false
	})
	client := &ClientSettings{Incoming: Incoming{Protocol: "pop3", Host: "pop." + elsewhereDomain, Port: e.pol.POP3[0].Port, Security: "ssl",
		LeaveOnServer: ptr(true), DeleteAfterDays: ptr(30)}}
	rep, err := Run(context.Background(), Request{Address: "john@" + elsewhereDomain, Client: client}, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Source != "autoconfig" {
		t.Errorf("source %q, want autoconfig", rep.Source)
	}
	if len(rep.Expected.POP3) != 1 || rep.Expected.POP3[0].Host != "pop."+elsewhereDomain || rep.Expected.POP3DeleteAfterDays != 3 {
		t.Errorf("expected %+v", rep.Expected)
	}
	if !strings.HasPrefix(rep.Steps[0].Name, "discover autoconfig https://autoconfig."+elsewhereDomain) || rep.Steps[0].Error != "" {
		t.Errorf("first step %+v", rep.Steps[0])
	}
	checkEndpoints(t, e, rep)
	// The document's retention (3 days) is compared.
	if !slices.Contains(ids(rep.Findings), "pop3.delete-after-too-long") {
		t.Errorf("findings %v: want pop3.delete-after-too-long", ids(rep.Findings))
	}
	if reqs := e.got(); len(reqs) != 1 {
		t.Errorf("requests %q: want only the autoconfig document", reqs)
	}
}

func TestProbeDiscoverAutodiscover(t *testing.T) {
	e := newElsewhere(t, func(e *elsewhere, w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPost && r.Host == "autodiscover."+elsewhereDomain+":"+portOf(r) && strings.EqualFold(r.URL.Path, "/autodiscover/autodiscover.xml") {
			w.Header().Set("Content-Type", "text/xml")
			if err := autodiscover.WriteResponse(w, e.pol, "john@"+elsewhereDomain); err != nil {
				t.Error(err)
			}
			return true
		}
		return false
	})
	client := &ClientSettings{Incoming: Incoming{Protocol: "pop3", LeaveOnServer: ptr(true), DeleteAfterDays: ptr(0)}}
	rep, err := Run(context.Background(), Request{Address: "john@" + elsewhereDomain, Password: "s3cret-pass", Client: client}, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Source != "autodiscover" || !rep.Expected.POP3RetentionUnknown {
		t.Errorf("source %q, expected %+v", rep.Source, rep.Expected)
	}
	var text strings.Builder
	if err := WriteText(&text, rep); err != nil || !strings.Contains(text.String(), "from the discovered Outlook Autodiscover response") ||
		!strings.Contains(text.String(), "not known (not compared)") || strings.Contains(text.String(), "s3cret-pass") {
		t.Errorf("text %v:\n%s", err, text.String())
	}
	checkEndpoints(t, e, rep)
	// Autodiscover says nothing about POP3 retention: not compared.
	for _, id := range ids(rep.Findings) {
		if strings.HasPrefix(id, "pop3.leave") || strings.HasPrefix(id, "pop3.delete") {
			t.Errorf("finding %s for unknown POP3 retention", id)
		}
	}
	reqs := e.got()
	if len(reqs) != 3 {
		t.Errorf("requests %q: want 2 autoconfig GETs and 1 Autodiscover POST", reqs)
	}
	for _, r := range reqs {
		if strings.Contains(r, "s3cret-pass") || !strings.Contains(r, "auth= ") {
			t.Errorf("request carries credentials: %q", r)
		}
	}
	if !strings.Contains(reqs[len(reqs)-1], "<EMailAddress>john@"+elsewhereDomain+"</EMailAddress>") {
		t.Errorf("POX request %q", reqs[len(reqs)-1])
	}
}

// srvResolver is a loopback DNS server answering queries from recs
// (name -> records of that name, of any type) and NXDOMAIN otherwise.
func srvResolver(t *testing.T, recs map[string][]dns.RR) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, m *dns.Msg) {
		a := new(dns.Msg)
		a.SetReply(m)
		for _, rr := range recs[strings.ToLower(m.Question[0].Name)] {
			if rr.Header().Rrtype == m.Question[0].Qtype {
				a.Answer = append(a.Answer, rr)
			}
		}
		if len(a.Answer) == 0 {
			a.Rcode = dns.RcodeNameError
		}
		w.WriteMsg(a)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String()
}

func srvRR(name string, prio uint16, port int, target string) dns.RR {
	return &dns.SRV{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: 60},
		Priority: prio, Weight: 1, Port: uint16(port), Target: target}
}

func TestProbeDiscoverSRV(t *testing.T) {
	e := newElsewhere(t, nil)
	e.opts.Resolver = srvResolver(t, map[string][]dns.RR{
		"_pop3s._tcp." + elsewhereDomain + ".":      {srvRR("_pop3s._tcp."+elsewhereDomain+".", 10, e.pol.POP3[0].Port, "pop."+elsewhereDomain+".")},
		"_submission._tcp." + elsewhereDomain + ".": {srvRR("_submission._tcp."+elsewhereDomain+".", 10, e.pol.Submission[0].Port, "smtp."+elsewhereDomain+".")},
		"_imap._tcp." + elsewhereDomain + ".":       {srvRR("_imap._tcp."+elsewhereDomain+".", 0, 0, ".")},
	})
	rep, err := Run(context.Background(), Request{Address: "john@" + elsewhereDomain}, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Source != "srv" {
		t.Errorf("source %q, want srv", rep.Source)
	}
	if len(rep.Expected.IMAP) != 0 || rep.Expected.Prefer != "pop3" {
		t.Errorf("expected %+v: the \".\" IMAP record means not offered", rep.Expected)
	}
	checkEndpoints(t, e, rep)
	if n := len(e.got()); n != 4 {
		t.Errorf("%d HTTP requests, want the 4 discovery attempts", n)
	}
}

func TestProbeDiscoverNothing(t *testing.T) {
	e := newElsewhere(t, nil)
	e.opts.Resolver = srvResolver(t, nil)
	closed := closedPort(t)
	e.opts.Port = func(int) int { return closed }
	_, err := Run(context.Background(), Request{Address: "john@" + elsewhereDomain}, e.opts)
	var de *DiscoveryError
	if !errors.Is(err, ErrNotDiscovered) || !errors.As(err, &de) {
		t.Fatalf("error %v: want ErrNotDiscovered", err)
	}
	if len(de.Steps) != 7 || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), "imap."+elsewhereDomain+", mail."+elsewhereDomain) {
		t.Errorf("error %v, steps %+v", err, de.Steps)
	}
	if testing.Verbose() {
		t.Log(err)
	}
	if len(e.pop.got()) != 0 {
		t.Error("a mail server was contacted without discovered settings")
	}

	// Discovery off: still ErrUnknownDomain, nothing fetched.
	e.opts.Discover = false
	before := len(e.got())
	if _, err := Run(context.Background(), Request{Address: "john@" + elsewhereDomain}, e.opts); !errors.Is(err, ErrUnknownDomain) {
		t.Errorf("Discover off: %v, want ErrUnknownDomain", err)
	}
	if len(e.got()) != before {
		t.Error("Discover off fetched something")
	}
}

// TestProbeDiscoverAllowedHost: discovery URLs and discovered hosts refused by
// AllowedHost are not contacted.
func TestProbeDiscoverAllowedHost(t *testing.T) {
	e := newElsewhere(t, func(e *elsewhere, w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/mail/config-v1.1.xml" {
			mozilla.Render(w, e.pol, "john@"+elsewhereDomain)
			return true
		}
		return false
	})
	e.opts.AllowedHost = func(h string) bool { return h == "autoconfig."+elsewhereDomain }
	rep, err := Run(context.Background(), Request{Address: "john@" + elsewhereDomain, Password: "x"}, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Source != "autoconfig" || len(rep.Steps) != 1 || len(e.pop.got()) != 0 || len(e.smtp.got()) != 0 {
		t.Errorf("source %q, steps %v, pop %v, smtp %v", rep.Source, stepNames(rep), e.pop.got(), e.smtp.got())
	}
}

func portOf(r *http.Request) string {
	_, p, _ := net.SplitHostPort(r.Host)
	return p
}

// TestProbeDiscoverLocalPart: a document naming the bare local part as
// username makes it the expected username and the login name, and a
// client reporting it is not told otherwise.
func TestProbeDiscoverLocalPart(t *testing.T) {
	e := newElsewhere(t, func(e *elsewhere, w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/mail/config-v1.1.xml" {
			var b strings.Builder
			if err := mozilla.Render(&b, e.pol, ""); err != nil {
				t.Error(err)
			}
			io.WriteString(w, strings.ReplaceAll(b.String(), autoconfig.Placeholder, "%EMAILLOCALPART%"))
			return true
		}
		return false
	})
	e.pol.Submission = nil
	client := &ClientSettings{Incoming: Incoming{Protocol: "pop3", Username: "john"}}
	rep, err := Run(context.Background(), Request{Address: "john@" + elsewhereDomain, Password: "s3cret-pass", Client: client}, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Expected.Username != "john" || slices.Contains(ids(rep.Findings), "username.not-full-address") {
		t.Errorf("expected username %q, findings %v", rep.Expected.Username, ids(rep.Findings))
	}
	i := slices.IndexFunc(rep.Steps, func(s Step) bool { return strings.HasPrefix(s.Name, "login pop3") })
	if i < 0 || !slices.Contains(rep.Steps[i].Evidence, "AUTH PLAIN as john") {
		t.Errorf("login step: %+v", rep.Steps)
	}
}

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return p
}

// TestProbeDiscoverMX: with no document for the domain itself, the
// autoconfig document of the MX host's domain is used (Thunderbird's
// forMX), https only.
func TestProbeDiscoverMX(t *testing.T) {
	e := newElsewhere(t, func(e *elsewhere, w http.ResponseWriter, r *http.Request) bool {
		if r.Host == "autoconfig.provider.test:"+portOf(r) && r.URL.Path == "/mail/config-v1.1.xml" {
			w.Header().Set("Content-Type", "text/xml")
			if err := mozilla.Render(w, e.pol, r.URL.Query().Get("emailaddress")); err != nil {
				t.Error(err)
			}
			return true
		}
		return false
	})
	mx := func(pref uint16, host string) dns.RR {
		return &dns.MX{Hdr: dns.RR_Header{Name: elsewhereDomain + ".", Rrtype: dns.TypeMX, Class: dns.ClassINET, Ttl: 60}, Preference: pref, Mx: host}
	}
	e.opts.Resolver = srvResolver(t, map[string][]dns.RR{
		elsewhereDomain + ".": {mx(20, "backup.other.test."), mx(10, "mx.provider.test.")},
	})
	rep, err := Run(context.Background(), Request{Address: "john@" + elsewhereDomain}, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Source != "mx-autoconfig" || rep.Expected.POP3RetentionUnknown || rep.Expected.POP3DeleteAfterDays != 3 {
		t.Errorf("source %q, expected %+v", rep.Source, rep.Expected)
	}
	i := slices.IndexFunc(rep.Steps, func(s Step) bool {
		return strings.HasPrefix(s.Name, "discover mx-autoconfig https://autoconfig.provider.test:")
	})
	if i < 0 || rep.Steps[i].Error != "" {
		t.Errorf("steps %v", stepNames(rep))
	}
	checkEndpoints(t, e, rep)
	reqs := e.got()
	if len(reqs) != 6 || !strings.Contains(reqs[4], "autoconfig.mx.provider.test") || !strings.Contains(reqs[5], "autoconfig.provider.test") {
		t.Errorf("requests %q: want the 4 discovery attempts, then the MX host's domain one label longer, then its base domain", reqs)
	}
	for _, r := range reqs {
		if strings.Contains(r, "other.test") {
			t.Errorf("the higher-preference MX was used: %q", r)
		}
	}
}

// fakeIMAP is an implicit-TLS IMAP server that answers CAPABILITY and
// LOGOUT.
func startFakeIMAP(t *testing.T, cfg *tls.Config) int {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				l := newLineConn(c)
				l.writeLine("* OK fake IMAP ready")
				for {
					line, err := l.readLine()
					if err != nil {
						return
					}
					tag, cmd, _ := strings.Cut(line, " ")
					switch strings.ToUpper(cmd) {
					case "CAPABILITY":
						l.writeLine("* CAPABILITY IMAP4rev1 AUTH=PLAIN")
						l.writeLine(tag + " OK done")
					case "LOGOUT":
						l.writeLine("* BYE")
						l.writeLine(tag + " OK done")
						return
					default:
						l.writeLine(tag + " BAD unknown")
					}
				}
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestProbeDiscoverGuess: with nothing published, the working guessed
// hosts (imap.<d> on "993", smtp.<d> on "587") become the settings.
func TestProbeDiscoverGuess(t *testing.T) {
	e := newElsewhere(t, nil)
	e.opts.Resolver = srvResolver(t, nil)
	imapPort, smtpPort, closed := startFakeIMAP(t, e.cfg), e.smtp.ln.Addr().(*net.TCPAddr).Port, closedPort(t)
	e.opts.Port = func(p int) int {
		switch p {
		case 993:
			return imapPort
		case 587:
			return smtpPort
		}
		return closed
	}
	rep, err := Run(context.Background(), Request{Address: "john@" + elsewhereDomain}, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	wantIMAP := []Endpoint{{Protocol: "imap", Host: "imap." + elsewhereDomain, Port: imapPort, Security: "tls"}}
	wantSMTP := []Endpoint{{Protocol: "smtp", Host: "smtp." + elsewhereDomain, Port: smtpPort, Security: "starttls"}}
	if rep.Source != "guess" || !slices.Equal(rep.Expected.IMAP, wantIMAP) || !slices.Equal(rep.Expected.Submission, wantSMTP) ||
		len(rep.Expected.POP3) != 0 || rep.Expected.Prefer != "imap" {
		t.Errorf("source %q, expected %+v", rep.Source, rep.Expected)
	}
	i := slices.IndexFunc(rep.Steps, func(s Step) bool { return s.Name == "discover guess "+elsewhereDomain })
	if i < 0 || len(rep.Steps[i].Evidence) != 1+20+2 {
		t.Fatalf("steps %v", stepNames(rep))
	}
	if ev := rep.Steps[i].Evidence; ev[1] != fmt.Sprintf("imap imap.%s:%d tls: ok", elsewhereDomain, imapPort) ||
		!slices.Contains(ev, fmt.Sprintf("smtp smtp.%s:%d starttls: ok", elsewhereDomain, smtpPort)) {
		t.Errorf("guess evidence %q", ev)
	}
	for _, n := range []string{"connect " + wantIMAP[0].String(), "connect " + wantSMTP[0].String()} {
		j := slices.IndexFunc(rep.Steps, func(s Step) bool { return s.Name == n })
		if j < 0 || rep.Steps[j].Error != "" {
			t.Errorf("step %q missing or failed: %+v", n, rep.Steps)
		}
	}
	if len(e.pop.got()) != 0 {
		t.Error("the POP3 server was contacted")
	}
}
