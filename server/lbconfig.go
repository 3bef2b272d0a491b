package server

import (
	"net"
	"net/netip"
	"strings"
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
	return &proxyproto.Listener{Listener: ln, ConnPolicy: policy, ReadHeaderTimeout: proxyHeaderTimeout}, nil
}
