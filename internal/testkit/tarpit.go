package testkit

import (
	"net"
	"sync"
	"testing"
)

// Tarpit listens on a free loopback port, accepts every connection and
// never says a word (a port that speaks the other TLS mode, a stalling
// firewall, a tarpit); the connections close when the test ends. It
// returns the port.
func Tarpit(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var held []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}
