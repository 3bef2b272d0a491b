package server

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"mailsetup/server/accounts"
	"mailsetup/server/mailbackend"
	"mailsetup/server/mailstore"
)

// POP3 expiry: the sweeper is mailbackend.Expirer; the service runs it
// (startMaintenance) and `mailsetup expire` runs one sweep (Expire).

// Expiry schedule of the running service.
const (
	expireFirstDelay = time.Minute
	expireInterval   = time.Hour
)

// The sweep's options and report, for the command.
type (
	ExpireOptions = mailbackend.ExpireOptions
	ExpireReport  = mailbackend.ExpireReport
	AccountExpiry = mailbackend.AccountExpiry
)

// Expire runs one POP3 expiry sweep over the data of cfg: the command
// `mailsetup expire`. It takes the data directory's lock, so it refuses
// to run while `mailsetup serve` owns the mail storage (the service
// sweeps by itself). The report is valid also with an error: the sweep
// goes on past an account it cannot sweep and returns the errors joined.
func Expire(ctx context.Context, cfg *Config, opts ExpireOptions) (ExpireReport, error) {
	unlock, err := lockData(cfg)
	if errors.Is(err, errLocked) {
		return ExpireReport{}, fmt.Errorf("%w: a running `mailsetup serve` owns this mail storage and expires mail itself every hour (with mail.expire_dry_run = true it only logs what it would delete); stop it to run expire by hand", err)
	}
	if err != nil {
		return ExpireReport{}, err
	}
	defer unlock()
	accts, err := accounts.Open(AccountsPath(cfg))
	if err != nil {
		return ExpireReport{}, err
	}
	store, err := mailstore.Open(mailRoot(cfg), mailstore.Options{Logger: opts.Logger, Hostname: cfg.Hostname})
	if err != nil {
		return ExpireReport{}, fmt.Errorf("mail storage: %w", err)
	}
	return mailbackend.NewExpirer(accts, store, expireDaysByDomain(cfg), nil, nil).Sweep(ctx, opts)
}

// expireDaysByDomain maps each configured domain to its expire_days.
func expireDaysByDomain(cfg *Config) map[string]int {
	m := make(map[string]int, len(cfg.Domains))
	for _, p := range cfg.Policies() {
		m[p.Domain] = p.POP.ExpireDays
	}
	return m
}

// mailRoot is the mail storage directory of a config.
func mailRoot(cfg *Config) string {
	return filepath.Join(cfg.Path(cfg.DataDir), "mail")
}
