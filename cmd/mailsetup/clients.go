package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"mailsetup/autoconfig"
	"mailsetup/probe/clients"
	"mailsetup/server"
)

// runClients runs `probe --domain` or `probe EMAIL --clients` and
// returns the exit status.
func (a *probeArgs) runClients(ctx context.Context, stdout io.Writer) (int, error) {
	if a.resolver == "" {
		return 0, usageError{"probe", "--clients and --domain need --resolver HOST:PORT: every lookup goes through it"}
	}
	for _, p := range []struct {
		name string
		v    int
	}{{"https-port", a.httpsPort}, {"http-port", a.httpPort}} {
		if p.v < 0 || p.v > 65535 {
			return 0, usageError{"probe", fmt.Sprintf("--%s %d: want a port 1..65535", p.name, p.v)}
		}
	}
	cfg, err := loadPolicyConfig(a.common)
	if err != nil {
		return 0, err
	}
	var extra []string
	if a.caFile != "" {
		extra = append(extra, a.caFile)
	}
	roots, err := server.ProbeRoots(cfg, extra...)
	if err != nil {
		return 0, fmt.Errorf("--ca: %w", err)
	}
	domain := strings.ToLower(strings.TrimSuffix(a.domain, "."))
	if a.clients {
		addr, err := autoconfig.ParseAddress(a.email)
		if err != nil {
			return 0, fmt.Errorf("%q: %w", a.email, err)
		}
		domain = addr.Domain
	}
	policies := cfg.Policies()
	i := slices.IndexFunc(policies, func(p autoconfig.Policy) bool { return p.Domain == domain })
	if i < 0 {
		return 0, fmt.Errorf("%s: domain not configured", domain)
	}
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	opts := clients.Options{Resolver: a.resolver, RootCAs: roots, HTTPSPort: a.httpsPort, HTTPPort: a.httpPort}
	var (
		rep   any
		sev   func() int
		write func() error
	)
	if a.clients {
		r, err := clients.Simulate(ctx, a.email, policies[i], opts)
		if err != nil {
			return 0, err
		}
		rep, sev, write = r, func() int { return clients.ExitCode(r.Severity()) }, func() error { return clients.WriteClientsText(stdout, r) }
	} else {
		r, err := clients.CheckDomain(ctx, policies[i], opts)
		if err != nil {
			return 0, err
		}
		rep, sev, write = r, func() int { return clients.ExitCode(r.Severity()) }, func() error { return clients.WriteDomainText(stdout, r) }
	}
	if a.asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		write = func() error { return enc.Encode(rep) }
	}
	if err := write(); err != nil {
		return 0, fmt.Errorf("writing the report: %w", err)
	}
	return sev(), nil
}
