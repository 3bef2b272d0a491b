package netlimit_test

import (
	"bufio"
	"fmt"
	"net"
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
	defer ln.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "220 hello\r\n")
			accepted <- c
		}
	}()
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
