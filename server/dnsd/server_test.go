package dnsd_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"mailsetup/autoconfig"
	"mailsetup/internal/testkit"
	"mailsetup/server/dnsd"
)

// loopback runs a server for policies on 127.0.0.1 and returns its UDP
// and TCP addresses; the server is shut down when the test ends, and
// Serve and Shutdown must both return nil.
func loopback(t *testing.T, policies ...autoconfig.Policy) (udpAddr, tcpAddr string) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		pc.Close()
		t.Fatal(err)
	}
	s := dnsd.New(dnsd.Options{Policies: func() []autoconfig.Policy { return policies }})
	served := make(chan error, 1)
	go func() { served <- s.Serve(pc, ln) }()
	select {
	case <-s.Started():
	case err := <-served:
		t.Fatalf("Serve returned before starting: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("server did not start within 10s")
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("Serve after Shutdown: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Serve did not return after Shutdown")
		}
	})
	return pc.LocalAddr().String(), ln.Addr().String()
}

func exchange(t *testing.T, network, addr string, q *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: 5 * time.Second}
	resp, _, err := c.Exchange(q, addr)
	if err != nil {
		t.Fatalf("%s query %v: %v", network, q.Question, err)
	}
	return resp
}

func TestLoopback(t *testing.T) {
	policies := []autoconfig.Policy{testkit.IMAPFirst(), testkit.POPFirst()}
	udpAddr, tcpAddr := loopback(t, policies...)
	for _, network := range []string{"udp", "tcp"} {
		addr := udpAddr
		if network == "tcp" {
			addr = tcpAddr
		}
		for _, p := range policies {
			for _, label := range append(slices.Clone(autoconfig.SRVServices), "_autodiscover._tcp") {
				name := label + "." + p.Domain + "."
				resp := exchange(t, network, addr, question(name, dns.TypeSRV))
				if resp.Rcode != dns.RcodeSuccess || !resp.Authoritative {
					t.Errorf("%s %s: rcode %s AA %v", network, name, dns.RcodeToString[resp.Rcode], resp.Authoritative)
				}
				if got, want := norms(resp.Answer), want(p, name, "SRV"); !slices.Equal(got, want) {
					t.Errorf("%s %s:\n%s\nwant\n%s", network, name, strings.Join(got, "\n"), strings.Join(want, "\n"))
				}
			}
		}
		resp := exchange(t, network, addr, question("example.org.", dns.TypeA))
		if resp.Rcode != dns.RcodeRefused {
			t.Errorf("%s: outside the zones: rcode %s, want REFUSED", network, dns.RcodeToString[resp.Rcode])
		}
	}
}

func TestLoopbackTruncationThenTCP(t *testing.T) {
	udpAddr, tcpAddr := loopback(t, bigPolicy())
	q := question("autodiscover.example.com.", dns.TypeAAAA)
	udp := exchange(t, "udp", udpAddr, q)
	if !udp.Truncated {
		t.Errorf("UDP answer with %d records not truncated", len(udp.Answer))
	}
	tcp := exchange(t, "tcp", tcpAddr, q)
	if tcp.Truncated || len(tcp.Answer) != 60 {
		t.Errorf("TCP: TC %v with %d answers, want 60", tcp.Truncated, len(tcp.Answer))
	}
}

func TestLoopbackDropsResponses(t *testing.T) {
	udpAddr, _ := loopback(t, testkit.IMAPFirst())
	q := question("example.com.", dns.TypeMX)
	q.Response = true
	c := &dns.Client{Net: "udp", Timeout: 300 * time.Millisecond}
	if resp, _, err := c.Exchange(q, udpAddr); err == nil {
		t.Errorf("a message with QR set was answered: %v", resp)
	}
	// Still serving.
	if resp := exchange(t, "udp", udpAddr, question("example.com.", dns.TypeMX)); len(resp.Answer) != 2 {
		t.Errorf("after a dropped message: answer %v", resp.Answer)
	}
}

func TestShutdownBeforeServe(t *testing.T) {
	s := dnsd.New(dnsd.Options{Policies: func() []autoconfig.Policy { return nil }})
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown before Serve: %v", err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(pc, nil); !errors.Is(err, dnsd.ErrServerClosed) {
		t.Errorf("Serve after Shutdown: %v, want ErrServerClosed", err)
	}
	if _, err := pc.WriteTo([]byte{0}, pc.LocalAddr()); err == nil {
		t.Errorf("Serve after Shutdown left the connection open")
	}
}

func TestServeFailureStopsOther(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pc.Close() // UDP fails at once: Serve must stop TCP and return the error.
	s := dnsd.New(dnsd.Options{Policies: func() []autoconfig.Policy { return nil }})
	done := make(chan error, 1)
	go func() { done <- s.Serve(pc, ln) }()
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("Serve on a closed PacketConn returned nil")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its UDP side failed")
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown after a failed Serve: %v", err)
	}
}

func TestDig(t *testing.T) {
	dig := testkit.Tool(t, "dig", "dnsutils")
	policies := []autoconfig.Policy{testkit.IMAPFirst(), testkit.POPFirst()}
	udpAddr, tcpAddr := loopback(t, policies...)
	for _, p := range policies {
		name := "_submissions._tcp." + p.Domain
		var wantLines []string
		for _, r := range p.Records() {
			if r.Name == name+"." && r.Type == "SRV" {
				wantLines = append(wantLines, fmt.Sprintf("%d %d %d %s", r.Priority, r.Weight, r.Port, r.Target))
			}
		}
		for _, args := range [][]string{{}, {"+tcp"}} {
			addr := udpAddr
			if len(args) > 0 {
				addr = tcpAddr
			}
			host, port, _ := net.SplitHostPort(addr)
			if _, err := strconv.Atoi(port); err != nil {
				t.Fatal(err)
			}
			argv := append([]string{"@" + host, "-p", port, "+short", "+time=3", "+tries=1"}, args...)
			argv = append(argv, "SRV", name)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			out, err := exec.CommandContext(ctx, dig, argv...).CombinedOutput()
			cancel()
			if err != nil {
				t.Fatalf("dig %s: %v\n%s", strings.Join(argv, " "), err, out)
			}
			got := strings.Split(strings.TrimSpace(string(out)), "\n")
			if !slices.Equal(got, wantLines) {
				t.Errorf("dig %s:\n%s\nwant\n%s", strings.Join(argv, " "), strings.Join(got, "\n"), strings.Join(wantLines, "\n"))
			}
		}
	}
}

func TestShutdownRightAfterServe(t *testing.T) {
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s := dnsd.New(dnsd.Options{Policies: func() []autoconfig.Policy { return nil }})
		done := make(chan error, 1)
		go func() { done <- s.Serve(pc, ln) }()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = s.Shutdown(ctx)
		cancel()
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, dnsd.ErrServerClosed) {
				t.Fatalf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Serve did not return")
		}
	}
}
