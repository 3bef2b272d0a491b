package mailbackend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"mailsetup/server/accounts"
	"mailsetup/server/mailstore"
)

// POP3 expiry (RFC 2449 §6.7 EXPIRE), opt-in per domain: with
// pop3_policy.expire_days = N > 0, a message in an account's INBOX that
// was first retrieved over POP3 more than N days (N*24 hours) ago is
// deleted by a sweep. Messages never retrieved over POP3 and every other
// mailbox are never touched. It is the safety net behind the clients'
// own "delete from the server after N days" (delete_after_days, which
// expire_days may not undercut): mail that a client left on the server
// forever is what overloaded the POP servers in the incident this
// product comes from.
//
// The running service sweeps once shortly after start and then every
// hour (Expirer.Run); `mailsetup expire` runs one sweep by hand while
// the service is stopped (server.Expire). A mailbox with a POP3 session open is
// skipped until the next sweep, so a session's snapshot of the maildrop
// never loses messages under it; while an account is being swept, a POP3
// login to it gets "-ERR [IN-USE]" for those milliseconds.

// ExpireOptions configure one expiry sweep.
type ExpireOptions struct {
	// DryRun finds, logs and reports the expired messages without
	// deleting them.
	DryRun bool
	// Now is the current time of the sweep; zero is time.Now(). Set it
	// in tests (`mailsetup expire --now`).
	Now time.Time
	// Logger receives one Info line per account with expired messages,
	// one per skipped account, one Error line per failed account and one
	// summary line. Nil discards.
	Logger *slog.Logger
}

// ExpireReport is what one sweep did (or, in a dry run, would do).
type ExpireReport struct {
	DryRun bool
	Now    time.Time
	// Domains counts the domains with expire_days > 0.
	Domains int
	// Checked counts the accounts of those domains that have mail
	// storage.
	Checked int
	// Accounts are the accounts with expired messages, sorted by
	// address: deleted, or in a dry run to be deleted.
	Accounts []AccountExpiry
	// Busy are the accounts skipped because a POP3 session had their
	// INBOX open; the next sweep takes them.
	Busy []string
	// Messages and Bytes total Accounts.
	Messages int
	Bytes    int64
}

// AccountExpiry is one account's share of a sweep.
type AccountExpiry struct {
	Account string
	// Days is the account's domain's expire_days.
	Days int
	// UIDLs are the POP3 UIDLs of the expired messages, in mailbox order.
	UIDLs []string
	// Bytes is their total size.
	Bytes int64
}

// ExpireMetrics are the sweeper's Prometheus metrics.
type ExpireMetrics struct {
	expired    prometheus.Counter
	candidates prometheus.Gauge
	failures   prometheus.Counter
	lastSweep  prometheus.Gauge
}

// NewExpireMetrics registers the sweeper's metrics with reg.
func NewExpireMetrics(reg prometheus.Registerer) *ExpireMetrics {
	m := &ExpireMetrics{
		expired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mailsetup_pop3_expired_total",
			Help: "Messages deleted by the POP3 expiry (pop3_policy.expire_days) because they were retrieved over POP3 longer ago than that.",
		}),
		candidates: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mailsetup_pop3_expire_candidates",
			Help: "Messages the last POP3 expiry sweep found past their expiry: deleted, or with mail.expire_dry_run the ones it would have deleted.",
		}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mailsetup_pop3_expire_errors_total",
			Help: "Accounts the POP3 expiry could not sweep because of a storage error (see the log).",
		}),
		lastSweep: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mailsetup_pop3_expire_last_sweep_timestamp_seconds",
			Help: "When the last POP3 expiry sweep ended, Unix time.",
		}),
	}
	reg.MustRegister(m.expired, m.candidates, m.failures, m.lastSweep)
	return m
}

// Expirer sweeps the INBOXes of the accounts of one data directory.
type Expirer struct {
	accounts *accounts.Store
	store    *mailstore.Store
	// days is each domain's expire_days (0 or absent: never).
	days map[string]int
	// current, when set, gives the days at each sweep instead (the
	// back end's, which a config reload replaces).
	current func() map[string]int
	kick    chan struct{}
	// claim, when set, takes an account's INBOX for the sweep of that
	// account the way a POP3 login does (Backend.ClaimMaildrop); ok
	// is false while a POP3 session has it.
	claim func(account string) (release func(), ok bool)
	// metrics, when set, count the sweeps.
	metrics *ExpireMetrics
}

// NewExpirer returns a sweeper over the accounts and their storage; days
// is each domain's expire_days; claim (may be nil) takes an account's
// INBOX the way a POP3 login does; metrics may be nil.
func NewExpirer(accts *accounts.Store, store *mailstore.Store, days map[string]int, claim func(account string) (release func(), ok bool), metrics *ExpireMetrics) *Expirer {
	return &Expirer{accounts: accts, store: store, days: days, claim: claim, metrics: metrics, kick: make(chan struct{}, 1)}
}

// Expirer returns the sweeper of this back end, which skips the INBOX of
// a POP3 session.
func (m *Backend) Expirer(metrics *ExpireMetrics) *Expirer {
	e := NewExpirer(m.accounts, m.store, nil, m.ClaimMaildrop, metrics)
	e.current = m.ExpireDays
	return e
}

// Sweep expires the retrieved mail of every account in a domain with
// expire_days > 0.
func (e *Expirer) Sweep(ctx context.Context, opts ExpireOptions) (ExpireReport, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	start := time.Now()
	rep := ExpireReport{DryRun: opts.DryRun, Now: now}
	days := e.daysNow()
	for _, d := range days {
		if d > 0 {
			rep.Domains++
		}
	}
	var errs []error
	if rep.Domains > 0 {
		if err := e.accounts.Reload(); err != nil {
			// The last good accounts stay in use, as for logins.
			log.Warn("pop3 expiry: reloading the accounts failed, using the last good ones", "error", err)
		}
		err := e.accounts.Each(ctx, func(a accounts.Account) error {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("pop3 expiry interrupted: %w", err)
			}
			days := days[accountDomain(a.Address)]
			if days <= 0 {
				return nil
			}
			res, checked, busy, err := e.sweepAccount(a.Address, days, now, opts.DryRun)
			switch {
			case err != nil:
				errs = append(errs, fmt.Errorf("pop3 expiry of %s: %w", a.Address, err))
				if e.metrics != nil {
					e.metrics.failures.Inc()
				}
				log.Error("pop3 expiry: sweeping the account failed", "account", a.Address, "error", err)
			case busy:
				rep.Busy = append(rep.Busy, a.Address)
				log.Info("pop3 expiry: a POP3 session has the mailbox open, skipped until the next sweep", "account", a.Address)
			}
			if checked {
				rep.Checked++
			}
			if len(res.UIDLs) == 0 {
				return nil
			}
			rep.Accounts = append(rep.Accounts, res)
			rep.Messages += len(res.UIDLs)
			rep.Bytes += res.Bytes
			msg := "pop3 expiry: deleted messages retrieved over POP3 before the expiry"
			if opts.DryRun {
				msg = "pop3 expiry (dry run): would delete messages retrieved over POP3 before the expiry"
			}
			log.Info(msg, "account", a.Address, "messages", len(res.UIDLs), "bytes", res.Bytes, "expire_days", days)
			return nil
		})
		if err != nil {
			errs = append(errs, err)
		}
	}
	if e.metrics != nil {
		e.metrics.candidates.Set(float64(rep.Messages))
		if !opts.DryRun {
			e.metrics.expired.Add(float64(rep.Messages))
		}
		e.metrics.lastSweep.Set(float64(time.Now().Unix()))
	}
	log.Info("pop3 expiry sweep", "dry_run", opts.DryRun, "domains", rep.Domains, "accounts_checked", rep.Checked,
		"accounts_expired", len(rep.Accounts), "messages", rep.Messages, "bytes", rep.Bytes,
		"busy", len(rep.Busy), "errors", len(errs), "duration", time.Since(start).Round(time.Millisecond))
	return rep, errors.Join(errs...)
}

// sweepAccount expires one account's INBOX. checked is false when the
// account has no mail storage (none is created) or was busy.
func (e *Expirer) sweepAccount(address string, days int, now time.Time, dryRun bool) (res AccountExpiry, checked, busy bool, err error) {
	res = AccountExpiry{Account: address, Days: days}
	has, err := e.store.HasUser(address)
	if err != nil || !has {
		return res, false, false, err
	}
	if e.claim != nil {
		release, ok := e.claim(address)
		if !ok {
			return res, false, true, nil
		}
		defer release()
	}
	u, err := e.store.User(address)
	if err != nil {
		return res, false, false, err
	}
	mb, err := u.Mailbox(mailstore.Inbox)
	if err != nil {
		return res, false, false, err
	}
	msgs, err := mb.Messages()
	if err != nil {
		return res, false, false, err
	}
	cutoff := now.Add(-time.Duration(days) * 24 * time.Hour)
	var uids []uint32
	expired := map[uint32]mailstore.Message{}
	for _, m := range msgs {
		if !m.Retrieved.IsZero() && m.Retrieved.Before(cutoff) {
			uids = append(uids, m.UID)
			expired[m.UID] = m
		}
	}
	if len(uids) == 0 {
		return res, true, false, nil
	}
	if !dryRun {
		uids, err = mb.Expunge(uids)
		if err != nil {
			return res, true, false, fmt.Errorf("deleting %d expired messages: %w", len(expired), err)
		}
	}
	for _, uid := range uids {
		m := expired[uid]
		res.UIDLs = append(res.UIDLs, m.UIDL)
		res.Bytes += m.Size
	}
	return res, true, false, nil
}

// daysNow is each domain's expire_days for this sweep.
func (e *Expirer) daysNow() map[string]int {
	if e.current != nil {
		return e.current()
	}
	return e.days
}

// any reports whether some domain has expire_days > 0.
func (e *Expirer) any() bool {
	for _, d := range e.daysNow() {
		if d > 0 {
			return true
		}
	}
	return false
}

// Kick makes Run sweep now (a reload changed the domains' expire_days)
// rather than at its next turn; it never blocks.
func (e *Expirer) Kick() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// Run sweeps once after first, then every every, until ctx ends, logging
// as component pop3-expire; a turn when no domain has expire_days does
// nothing. dryRun is asked at each sweep (mail.expire_dry_run, which a
// reload may change). Each sweep logs its own results and errors.
func (e *Expirer) Run(ctx context.Context, first, every time.Duration, dryRun func() bool, log *slog.Logger) {
	log = log.With("component", "pop3-expire")
	t := time.NewTimer(first)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-e.kick:
			t.Stop()
		}
		if e.any() {
			// The error is in the log already, per account.
			_, _ = e.Sweep(ctx, ExpireOptions{DryRun: dryRun(), Logger: log})
		}
		t.Reset(every)
	}
}
