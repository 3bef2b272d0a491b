package netlimit_test

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"mailsetup/server/netlimit"
)

func TestLimits(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := netlimit.Wrap(inner, netlimit.Options{MaxConns: 3, MaxPerIP: 2, Reject: func(c net.Conn, reason string) {
		fmt.Fprintf(c, "421 %s\r\n", reason)
	}})
	accepted := serveGreeting(t, ln)
	dial := func() string {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, _ := bufio.NewReader(c).ReadString('\n')
		return line
	}
	if l := dial(); l != "220 hello\r\n" {
		t.Fatalf("first: %q", l)
	}
	if l := dial(); l != "220 hello\r\n" {
		t.Fatalf("second: %q", l)
	}
	if l := dial(); l != "421 "+netlimit.ReasonPerIP+"\r\n" {
		t.Fatalf("third from one address: %q", l)
	}
	// Closing one frees its slot.
	c := <-accepted
	c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for ln.Open() != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if l := dial(); l != "220 hello\r\n" {
		t.Fatalf("after a close: %q", l)
	}
}

// serveGreeting accepts on ln, greets, and hands each connection to got.
func serveGreeting(t *testing.T, ln *netlimit.Listener) chan net.Conn {
	t.Helper()
	got := make(chan net.Conn, 100)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "220 hello\r\n")
			got <- c
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return got
}

func dialFrom(t *testing.T, from, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	if l, err := r.ReadString('\n'); l != "220 hello\r\n" {
		t.Fatalf("greeting %q %v", l, err)
	}
	return c, r
}

// closedByServer reports whether the server closed c within d.
func closedByServer(c net.Conn, r *bufio.Reader, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := r.ReadByte()
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// A connection that does not log in is closed after LoginTimeout, even
// while it trickles bytes; one that logs in stays.
func TestLoginTimeoutCannotBeExtended(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	var mu sync.Mutex
	ln := netlimit.Wrap(inner, netlimit.Options{MaxConns: 10, LoginTimeout: 300 * time.Millisecond,
		OnReject: func(r string) { mu.Lock(); reasons = append(reasons, r); mu.Unlock() }})
	got := serveGreeting(t, ln)
	slow, slowR := dialFrom(t, "127.0.0.1", ln.Addr().String())
	<-got
	customer, customerR := dialFrom(t, "127.0.0.1", ln.Addr().String())
	ln.LoggedIn((<-got).RemoteAddr())
	start := time.Now()
	for time.Since(start) < 600*time.Millisecond {
		slow.Write([]byte("a"))
		time.Sleep(50 * time.Millisecond)
	}
	if !closedByServer(slow, slowR, time.Second) {
		t.Error("the trickling connection is still open after the login timeout")
	}
	if closedByServer(customer, customerR, 100*time.Millisecond) {
		t.Error("the logged-in connection was closed")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reasons) != 1 || reasons[0] != netlimit.ReasonLoginTimeout {
		t.Errorf("reasons %q", reasons)
	}
}

// With the share for connections that have not logged in full, a new
// connection pushes out the oldest waiting one of the address with the
// most of them: the flooder's, not the customer's; the flooder's own new
// connections are refused rather than churn through his old ones.
func TestFloodPushesOutTheFlooder(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := netlimit.Wrap(inner, netlimit.Options{MaxConns: 10, MaxUnauthenticated: 4, Reject: func(c net.Conn, reason string) {
		fmt.Fprintf(c, "421 %s\r\n", reason)
	}})
	got := serveGreeting(t, ln)
	var flood []net.Conn
	var floodR []*bufio.Reader
	for i := 0; i < 3; i++ {
		c, r := dialFrom(t, "127.0.0.2", ln.Addr().String())
		flood, floodR = append(flood, c), append(floodR, r)
		<-got
	}
	customer, customerR := dialFrom(t, "127.0.0.3", ln.Addr().String())
	<-got
	// Full (4 waiting): the flooder's next connection is refused.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	c, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if l, _ := bufio.NewReader(c).ReadString('\n'); l != "421 "+netlimit.ReasonWaiting+"\r\n" {
		t.Errorf("the flooder's fourth connection: %q", l)
	}
	c.Close()
	if closedByServer(flood[0], floodR[0], 100*time.Millisecond) {
		t.Error("the flooder's new connection pushed out his own oldest")
	}
	// A second customer pushes out the flooder's oldest.
	dialFrom(t, "127.0.0.4", ln.Addr().String())
	<-got
	if !closedByServer(flood[0], floodR[0], time.Second) {
		t.Error("the flooder's oldest connection was not pushed out")
	}
	if closedByServer(customer, customerR, 100*time.Millisecond) {
		t.Error("the customer's waiting connection was pushed out")
	}
	if ln.Waiting() != 4 {
		t.Errorf("waiting %d, want 4", ln.Waiting())
	}
	// Logged-in connections are not in the share.
	ln.LoggedIn(customer.LocalAddr())
	if ln.Waiting() != 3 {
		t.Errorf("waiting %d after a login, want 3", ln.Waiting())
	}
}

// TestSetLimits: a lowered limit refuses the next connection while the
// open ones stay; a raised one lets it in again.
func TestSetLimits(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := netlimit.Wrap(inner, netlimit.Options{MaxConns: 10, MaxPerIP: 10, Reject: func(c net.Conn, reason string) {
		fmt.Fprintf(c, "421 %s\r\n", reason)
	}})
	serveGreeting(t, ln)
	var open []*bufio.Reader
	dial := func() string {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(5 * time.Second))
		r := bufio.NewReader(c)
		line, _ := r.ReadString('\n')
		open = append(open, r)
		return line
	}
	for range 2 {
		if l := dial(); l != "220 hello\r\n" {
			t.Fatalf("before: %q", l)
		}
	}
	ln.SetLimits(netlimit.Limits{MaxConns: 10, MaxPerIP: 1})
	if l := dial(); l != "421 "+netlimit.ReasonPerIP+"\r\n" {
		t.Fatalf("after lowering max_per_ip to 1 with 2 open: %q", l)
	}
	if ln.Open() != 2 {
		t.Fatalf("open connections after lowering the limit: %d, want the 2 kept", ln.Open())
	}
	if got := ln.Limits(); got.MaxConns != 10 || got.MaxPerIP != 1 || got.MaxUnauthenticated != 10 {
		t.Fatalf("Limits() = %+v", got)
	}
	ln.SetLimits(netlimit.Limits{MaxConns: 10, MaxPerIP: 3})
	if l := dial(); l != "220 hello\r\n" {
		t.Fatalf("after raising it to 3: %q", l)
	}
}
