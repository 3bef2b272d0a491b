package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, "; ") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// runDNS answers the given records (zone-file lines) over UDP and TCP on
// loopback, as a recursive resolver would, for the outbound benchmark's
// MX lookups; names without records are NXDOMAIN. It stops after
// -duration.
func runDNS(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("dns", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:20053", "listen address (loopback)")
	duration := fs.Duration("duration", 30*time.Minute, "stop after")
	var records stringList
	fs.Var(&records, "rr", "a record to answer, zone-file syntax (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if host, _, err := net.SplitHostPort(*addr); err != nil || !net.ParseIP(host).IsLoopback() {
		return errors.New("dns: -addr must be a loopback host:port")
	}
	var rrs []dns.RR
	for _, line := range records {
		rr, err := dns.NewRR(line)
		if err != nil {
			return fmt.Errorf("dns: -rr %q: %w", line, err)
		}
		rrs = append(rrs, rr)
	}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.RecursionAvailable = true
		if len(r.Question) == 1 {
			q, known := r.Question[0], false
			for _, rr := range rrs {
				if strings.EqualFold(rr.Header().Name, q.Name) {
					known = true
					if rr.Header().Rrtype == q.Qtype {
						m.Answer = append(m.Answer, rr)
					}
				}
			}
			if !known {
				m.Rcode = dns.RcodeNameError
			}
		}
		w.WriteMsg(m)
	})
	udp := &dns.Server{Addr: *addr, Net: "udp", Handler: h}
	tcp := &dns.Server{Addr: *addr, Net: "tcp", Handler: h}
	errs := make(chan error, 2)
	go func() { errs <- udp.ListenAndServe() }()
	go func() { errs <- tcp.ListenAndServe() }()
	fmt.Fprintf(out, "dns on %s: %d records\n", *addr, len(rrs))
	ctx, cancel := context.WithTimeout(ctx, *duration)
	defer cancel()
	select {
	case <-ctx.Done():
	case err := <-errs:
		return err
	}
	udp.Shutdown()
	tcp.Shutdown()
	return nil
}
