package server

import (
	"net"
	"testing"
	"time"

	"mailsetup/server/netlimit"
)

// A balancer connection that stalls before its PROXY header does not
// hold up the one behind it: the second connection's header is read and
// the connection handed out (with the client's address, as the
// per-address limits see it) while the first still waits.
func TestProxyHeaderStallDoesNotBlockOthers(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := &Config{LoadBalancer: LoadBalancerConfig{ProxyProtocolFrom: []string{"127.0.0.1"}}}
	pl, err := cfg.proxyListener(raw)
	if err != nil {
		t.Fatal(err)
	}
	ln := netlimit.Wrap(pl, netlimit.Options{MaxConns: 10, MaxPerIP: 2})
	defer ln.Close()

	stalled, err := net.Dial("tcp", raw.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	time.Sleep(50 * time.Millisecond) // accepted first
	good, err := net.Dial("tcp", raw.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	if _, err := good.Write([]byte("PROXY TCP4 192.0.2.7 127.0.0.1 40000 443\r\n")); err != nil {
		t.Fatal(err)
	}

	got := make(chan net.Conn, 1)
	start := time.Now()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			t.Error(err)
		}
		got <- c
	}()
	select {
	case c := <-got:
		if c == nil {
			return
		}
		defer c.Close()
		if host, _, _ := net.SplitHostPort(c.RemoteAddr().String()); host != "192.0.2.7" {
			t.Errorf("first connection handed out is from %s, want the client 192.0.2.7 behind the balancer", c.RemoteAddr())
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("took %v: the stalled header held it up", d)
		}
	case <-time.After(proxyHeaderTimeout - time.Second):
		t.Fatal("the connection with a header waited for the stalled one")
	}

	// Closing the listener ends a waiting Accept.
	done := make(chan error, 1)
	go func() { _, err := ln.Accept(); done <- err }()
	ln.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Accept after Close returned a connection")
		}
	case <-time.After(proxyHeaderTimeout + 2*time.Second):
		t.Fatal("Accept did not return after Close")
	}
}
