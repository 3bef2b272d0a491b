package server

import (
	"path/filepath"

	"mailsetup/autoconfig"
	"mailsetup/server/dkim"
)

// DKIMPath is the directory of the local domains' DKIM keys.
func DKIMPath(cfg *Config) string {
	return filepath.Join(cfg.Path(cfg.DataDir), "dkim")
}

// PublishedPolicies are the config's policies with, when the config runs
// the mail server, what each domain publishes about the mail it sends:
// its DKIM keys (under data_dir/dkim, generated on first use), SPF,
// DMARC, MTA-STS (queue.mta_sts_mode) and TLS-RPT. `mailsetup records`
// prints them, the DNS responder answers them, the web listener serves
// the MTA-STS policy.
func PublishedPolicies(cfg *Config) ([]autoconfig.Policy, *dkim.Keys, error) {
	policies := cfg.Policies()
	if !cfg.hasMailListeners() {
		return policies, nil, nil
	}
	domains := make([]string, len(policies))
	for i, p := range policies {
		domains[i] = p.Domain
	}
	keys, err := dkim.Open(DKIMPath(cfg), domains)
	if err != nil {
		return nil, nil, err
	}
	for i := range policies {
		p := &policies[i]
		s := &autoconfig.Sending{Hostname: cfg.Hostname, MTASTSMode: cfg.Queue.MTASTSMode}
		for _, r := range keys.Records(p.Domain) {
			s.DKIM = append(s.DKIM, autoconfig.DKIMKey{Selector: r.Selector, Value: r.Value})
		}
		p.Sending = s
	}
	return policies, keys, nil
}
