package server

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

// LoadBalancerConfig is for web listeners behind a load balancer.
type LoadBalancerConfig struct {
	// ProxyProtocolFrom are the balancers' addresses (an IP or a CIDR
	// range each). A connection from one of them to the HTTP or HTTPS
	// listener must start with a PROXY protocol header (version 1 or 2)
	// naming the client, whose address then counts for the per-address
	// limits, the throttles and the audit log; connections from other
	// addresses are taken as they are. Empty: no PROXY protocol.
	ProxyProtocolFrom []string `toml:"proxy_protocol_from"`
}

// proxyHeaderTimeout bounds the wait for a balancer's PROXY header (it
// sends it with the connection).
const proxyHeaderTimeout = 5 * time.Second

// proxyHeaderReads bounds the connections whose PROXY header is being
// read at once; past it the listener accepts no more until one is read.
const proxyHeaderReads = 256

// validateLoadBalancer checks [load_balancer], naming each bad value.
func (c *Config) validateLoadBalancer(add func(format string, args ...any)) {
	for _, s := range c.LoadBalancer.ProxyProtocolFrom {
		if _, err := parsePrefix(s); err != nil {
			add("load_balancer.proxy_protocol_from: %q is neither an IP address nor a CIDR range (10.0.0.5, 10.0.0.0/24)", s)
		}
	}
}

// parsePrefix parses an IP address (a /32 or /128) or a CIDR range.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		return netip.ParsePrefix(s)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// proxyListener reads the PROXY protocol header of the connections
// from load_balancer.proxy_protocol_from (required from them, not read
// from anyone else); ln itself without the key.
func (c *Config) proxyListener(ln net.Listener) (net.Listener, error) {
	from := c.LoadBalancer.ProxyProtocolFrom
	if len(from) == 0 {
		return ln, nil
	}
	policy, err := proxyproto.PolicyFromRanges(from, proxyproto.REQUIRE, proxyproto.SKIP)
	if err != nil {
		return nil, err
	}
	return headerFirst(&proxyproto.Listener{Listener: ln, ConnPolicy: policy, ReadHeaderTimeout: proxyHeaderTimeout}), nil
}

// headerFirstListener hands out a balancer's connection only once its
// PROXY header is read, each header read in its own goroutine: the
// library reads the header on the first RemoteAddr, and the per-address
// limits above it ask for that in Accept, so one balancer connection
// that stalls before its header would otherwise hold up every
// connection behind it for proxyHeaderTimeout.
type headerFirstListener struct {
	net.Listener
	ready chan accepted
	done  chan struct{}
	once  sync.Once
}

type accepted struct {
	c   net.Conn
	err error
}

func headerFirst(ln net.Listener) *headerFirstListener {
	l := &headerFirstListener{Listener: ln, ready: make(chan accepted), done: make(chan struct{})}
	go l.loop()
	return l
}

func (l *headerFirstListener) loop() {
	reads := make(chan struct{}, proxyHeaderReads)
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if !l.deliver(accepted{err: err}) || errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		pc, ok := c.(*proxyproto.Conn)
		if !ok { // not from a balancer: no header
			if !l.deliver(accepted{c: c}) {
				return
			}
			continue
		}
		select {
		case reads <- struct{}{}:
		case <-l.done:
			c.Close()
			return
		}
		go func() {
			pc.RemoteAddr() // reads the header, within proxyHeaderTimeout
			<-reads
			l.deliver(accepted{c: pc})
		}()
	}
}

// deliver passes one connection or error to Accept; false (and the
// connection closed) once the listener is closed.
func (l *headerFirstListener) deliver(a accepted) bool {
	select {
	case l.ready <- a:
		return true
	case <-l.done:
		if a.c != nil {
			a.c.Close()
		}
		return false
	}
}

func (l *headerFirstListener) Accept() (net.Conn, error) {
	select {
	case a := <-l.ready:
		return a.c, a.err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *headerFirstListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}
