package server

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"mailsetup/autoconfig"
	"mailsetup/probe"
	"mailsetup/server/database"
	"mailsetup/server/events"
	"mailsetup/server/mailbackend"
	"mailsetup/server/mailstore"
	"mailsetup/server/observe"
	"mailsetup/server/web/console"
)

// openObservations opens the observations store of the mail system and
// subscribes it to the event bus. Its snapshot lives in the data
// directory, which the serving process owns (see lockData).
func (s *Server) openObservations() error {
	path := s.cfg.Observations.File
	if !filepath.IsAbs(path) {
		path = filepath.Join(s.cfg.Path(s.cfg.DataDir), path)
	}
	// The policies in force (a reload may change them).
	deleteAfter := func(domain string) int {
		if p, ok := s.live.Policy(domain); ok && p.POP.LeaveOnServer {
			return p.POP.DeleteAfterDays
		}
		return 0
	}
	expire := func(domain string) int {
		p, _ := s.live.Policy(domain)
		return p.POP.ExpireDays
	}
	opts := observe.Options{
		Path:            path,
		Retention:       time.Duration(s.cfg.Observations.RetentionDays) * 24 * time.Hour,
		MaxAccounts:     s.cfg.Observations.MaxAccounts,
		DeleteAfterDays: deleteAfter,
		ExpireDays:      expire,
		Logger:          s.log.With("component", "observations"),
	}
	obs, err := observe.Open(opts)
	if err != nil {
		// Observations help support; they are not worth refusing mail
		// for. An unreadable snapshot is kept aside for inspection and
		// the store starts empty.
		aside := fmt.Sprintf("%s.unreadable-%s", path, time.Now().UTC().Format("20060102T150405"))
		if rerr := os.Rename(path, aside); rerr != nil {
			return fmt.Errorf("observations.file: %w (and moving it aside failed: %v)", err, rerr)
		}
		s.log.Error("observations snapshot unreadable: moved aside, starting with no observations", "err", err, "moved_to", aside)
		if obs, err = observe.Open(opts); err != nil {
			return fmt.Errorf("observations.file: %w", err)
		}
	}
	if s.db != nil {
		// The observations imported into the database (mailsetup db
		// import) or kept there by the replicas: an account this
		// replica's snapshot holds with a later event keeps its own.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		n, err := obs.Merge(func(add func([]byte) error) error { return s.db.Rows(ctx, database.Observations, add) })
		cancel()
		if err != nil {
			s.log.Warn("observations: reading the database's failed; starting with this replica's", "err", err)
		} else if n > 0 {
			s.log.Info("observations loaded from the database", "accounts", n)
		}
		s.obsMark = obs.Mark() // what was loaded need not be written back
	}
	s.obs = obs
	redownloaded := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mailsetup_pop3_redownloaded_messages_total",
		Help: "Messages POP3 clients retrieved again after retrieving them before, per served domain.",
	}, []string{"domain"})
	for _, p := range s.Policies() {
		redownloaded.WithLabelValues(p.Domain) // every served domain from 0 (a reload adds its new ones)
	}
	s.rl.redownloaded = redownloaded
	feed := s.feed
	if feed != nil {
		feed.FollowObservations(func(e events.Event) { obs.Record(e) })
	}
	s.bus.Subscribe(func(e events.Event) {
		if s.observable(e) {
			if feed != nil {
				feed.Later(database.KindObservation, e)
			}
			if n := obs.Record(e); n > 0 && e.Kind == events.POP3Session {
				if d := domainOf(e.Account); s.served(d) {
					redownloaded.WithLabelValues(d).Add(float64(n))
				}
			}
		}
	})
	s.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "mailsetup_observations_accounts",
		Help: "Accounts the observations store holds.",
	}, func() float64 { return float64(obs.Stats().Accounts) }), redownloaded,
		&redownloadCollector{obs: obs, served: s.Policies})
	return nil
}

// domainOf is the lower-case domain of an address.
func domainOf(address string) string {
	if i := strings.LastIndexByte(address, '@'); i >= 0 {
		return strings.ToLower(address[i+1:])
	}
	return ""
}

// redownloadAccountsDesc is the alarm after a cutover, to alert on.
var redownloadAccountsDesc = prometheus.NewDesc("mailsetup_pop3_redownload_accounts",
	"Accounts whose POP3 clients retrieved messages again in the last hour (counted per UTC hour), per served domain.",
	[]string{"domain"}, nil)

// redownloadCollector reports mailsetup_pop3_redownload_accounts from
// the observations at each scrape: every served domain, 0 when quiet.
type redownloadCollector struct {
	obs    *observe.Store
	served func() []autoconfig.Policy
}

func (c *redownloadCollector) Describe(ch chan<- *prometheus.Desc) { ch <- redownloadAccountsDesc }

func (c *redownloadCollector) Collect(ch chan<- prometheus.Metric) {
	n := map[string]int{}
	for _, d := range c.obs.Redownloads(time.Hour) {
		n[d.Domain] = d.Accounts
	}
	for _, p := range c.served() {
		ch <- prometheus.MustNewConstMetric(redownloadAccountsDesc, prometheus.GaugeValue, float64(n[p.Domain]), p.Domain)
	}
}

// staffCreds are the config's staff members (name -> hash) and API
// tokens (SHA-256 -> name).
func staffCreds(st StaffConfig) (users, tokens map[string]string) {
	users, tokens = map[string]string{}, map[string]string{}
	for _, u := range st.Users {
		users[u.Name] = u.PasswordHash
	}
	for _, t := range st.Tokens {
		tokens[strings.ToLower(t.SHA256)] = t.Name
	}
	return users, tokens
}

// staffOptions builds the console's options from the config. The
// console and the API are always built, and are on while the config has
// staff members or tokens (a reload may add them).
func (s *Server) staffOptions() (*console.Options, error) {
	st := s.cfg.Staff
	opts := &console.Options{IdleTimeout: time.Duration(st.IdleMinutes) * time.Minute}
	opts.Users, opts.Tokens = staffCreds(st)
	path := inDataDir(s.cfg, st.AuditLog)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("staff.audit_log: %w", err)
	}
	if fi, err := f.Stat(); err == nil {
		opts.AuditBefore = console.ReadAuditTail(f, fi.Size(), 500)
	}
	s.audit = f
	opts.Audit = f
	if s.db != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if all, err := s.db.RecentAudit(ctx, 500); err == nil {
			opts.AuditBefore = all // every replica's, not only this file's
		}
		cancel()
		opts.AuditShare = s.feed.AuditShare()
		opts.Sessions = s.db.Sessions()
		opts.SignIns = console.NewSignInThrottle(s.log.With("component", "staff"), nil, s.feed.ThrottleShare())
		s.feed.FollowThrottles(opts.SignIns)
	}
	if s.obs != nil {
		opts.Observations = s.obs.Account
		opts.Recent = s.obs.Recent
		opts.Redownloads = s.obs.Redownloads
	}
	if s.mail != nil {
		m := s.mail
		if s.obs != nil {
			obs := s.obs
			opts.Overview = func(o observe.OverviewOptions) observe.OverviewReport {
				o.LocalPartDomains = localPartDomains(m)
				return obs.Overview(o)
			}
		}
		opts.Account = func(address string) console.AccountInfo { return accountInfo(m, address) }
		opts.Search = m.Search
	} else if s.obs != nil {
		// Beside another mail server: an address its logs showed is an
		// account.
		obs := s.obs
		opts.Account = func(address string) console.AccountInfo {
			_, seen := obs.Account(address)
			return console.AccountInfo{Exists: seen}
		}
		opts.Search = obs.Search
		// Beside another mail server a bare local part is counted in
		// the domains whose addresses of it the logs showed (the
		// store's own guess).
		opts.Overview = obs.Overview
	}
	return opts, nil
}

// localPartDomains returns the overview's lookup of the domains where a
// bare local part is an account or an alias: one pass over the accounts
// at the first lookup (none when no bare local part was seen).
func localPartDomains(m *mailbackend.Backend) func(local string) []string {
	var index map[string][]string
	return func(local string) []string {
		if index == nil {
			index = map[string][]string{}
			_ = m.Accounts().Reload() // a failed reload keeps the last good accounts
			add := func(address string) {
				if i := strings.LastIndexByte(address, '@'); i > 0 {
					l := strings.ToLower(address[:i])
					index[l] = append(index[l], strings.ToLower(address[i+1:]))
				}
			}
			for _, a := range m.Accounts().List() {
				add(a.Address)
				for _, al := range a.Aliases {
					add(al)
				}
			}
		}
		return index[local]
	}
}

// accountInfo is the console's view of an account and its inbox.
func accountInfo(m *mailbackend.Backend, address string) console.AccountInfo {
	a, ok := m.Accounts().Get(address)
	if !ok {
		return console.AccountInfo{}
	}
	info := console.AccountInfo{Exists: true, Aliases: a.Aliases, QuotaBytes: a.QuotaBytes, Created: a.Created, PasswordChanged: a.Changed}
	if has, err := m.Store().HasUser(a.Address); err != nil || !has {
		return info
	}
	u, err := m.Store().User(a.Address)
	if err != nil {
		return info
	}
	box, err := u.Mailbox(mailstore.Inbox)
	if err != nil {
		return info
	}
	msgs, err := box.Messages()
	if err != nil {
		return info
	}
	info.MailboxKnown, info.Messages = true, len(msgs)
	for _, msg := range msgs {
		info.Bytes += msg.Size
		if info.Oldest.IsZero() || msg.InternalDate.Before(info.Oldest) {
			info.Oldest = msg.InternalDate
		}
	}
	return info
}

// runObservations saves the observations periodically until ctx ends,
// then once more; done is closed when the last save is written.
func (s *Server) runObservations(ctx context.Context) (done <-chan struct{}) {
	ch := make(chan struct{})
	var kept chan struct{}
	if s.db != nil {
		kept = make(chan struct{})
		go func() {
			defer close(kept)
			s.keepObservations(ctx)
		}()
	}
	go func() {
		defer close(ch)
		if err := s.obs.Run(ctx, 30*time.Second); err != nil {
			s.log.Error("saving observations", "err", err)
		}
		if kept != nil {
			<-kept
		}
	}()
	return ch
}

// keepObservations writes the observations that changed into the
// database every 30 seconds until ctx ends, then once more (the bus is
// drained by then): a replica starting, and mailsetup db export, find
// them there.
func (s *Server) keepObservations(ctx context.Context) {
	mark := s.obsMark
	retention := time.Duration(s.cfg.Observations.RetentionDays) * 24 * time.Hour
	save := func(ctx context.Context) {
		var batch []database.Row
		flush := func() error {
			err := s.db.SaveObservations(ctx, batch, retention)
			batch = batch[:0]
			return err
		}
		next, err := s.obs.Changed(mark, func(key string, last int64, raw []byte) error {
			batch = append(batch, database.Row{Key: key, Last: last, Body: raw})
			if len(batch) < 500 {
				return nil
			}
			return flush()
		})
		if err == nil && len(batch) > 0 {
			err = flush()
		}
		if err != nil {
			s.log.Warn("observations: writing them to the database failed; retried in 30 seconds", "err", err)
			return
		}
		mark = next
	}
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			save(fctx)
			cancel()
			return
		case <-t.C:
			save(ctx)
		}
	}
}

// observable says whether an event belongs in the observations: with
// the embedded mail server, by its accounts; with only log sources, by
// the configured domains (seenInLogs).
func (s *Server) observable(e events.Event) bool {
	if s.mail != nil {
		return observable(s.mail, e)
	}
	return e.Client != probe.HeloName && s.seenInLogs(e)
}

// observable says whether an event belongs in the observations: only
// events of existing accounts (a password sprayer trying made-up
// addresses must not push real customers out of the bounded store), a
// bare local part only when some served domain has such an account, and
// never the probe's own checks (MAIL without AUTH, the bare local part
// with the right password), which are not the customer's doing.
func observable(m *mailbackend.Backend, e events.Event) bool {
	if e.Client == probe.HeloName {
		return false
	}
	if e.Account != "" {
		return m.Known(e.Account)
	}
	if e.Kind == events.Auth && (e.Form == events.FormLocalPart || e.Form == events.FormUnknownDomain) {
		local := e.Username
		if i := strings.LastIndexByte(local, '@'); i >= 0 {
			local = local[:i] // a domain typo: john@exmaple.com
		}
		for _, d := range m.Domains() {
			if m.Known(local + "@" + d) {
				return true
			}
		}
		return false
	}
	return true // the store decides (a delivery names its recipient in Detail)
}

// Reload re-reads the config file and applies what can change while
// serving, every connection and session left open (reload.go): the
// staff members, the API tokens, the staff idle timeout, the domains
// (added, removed or changed: the documents, DNS answers, the mail
// servers' domains, DKIM keys, ACME names, the POP3 expiry), the
// certificate files, the log level, the connection and login limits
// and the observation sources. It returns the keys of other changes,
// which need a restart. An invalid config changes nothing and is an
// error naming each problem.
func (s *Server) Reload(path string) (needRestart []string, err error) {
	cfg, err := LoadConfig(path)
	if err != nil {
		return nil, err
	}
	// Computed first: an error (a DKIM key that does not load) applies
	// nothing.
	policies, keys, err := PublishedPolicies(cfg)
	if err != nil {
		return nil, err
	}
	applied, needRestart, err := s.reloadRest(cfg, policies, keys)
	if err != nil {
		return nil, err
	}
	users, tokens := staffCreds(cfg.Staff)
	s.web.SetStaff(users, tokens, time.Duration(cfg.Staff.IdleMinutes)*time.Minute)
	applied = append(applied, "staff")
	s.log.Info("config reloaded: staff members and API tokens applied", "staff", len(users), "tokens", len(tokens), "also", strings.Join(applied[:len(applied)-1], ", "))
	for _, k := range changedKeys(s.cfg, cfg) {
		if !slices.Contains(applied, k) && !slices.ContainsFunc(needRestart, func(r string) bool { return strings.HasPrefix(r, k+".") }) {
			// A section a reload applies in part names its keys instead.
			needRestart = append(needRestart, k)
		}
	}
	slices.Sort(needRestart)
	if len(needRestart) > 0 {
		s.log.Warn("config changes that need a restart", "keys", strings.Join(needRestart, ", "))
	}
	return needRestart, nil
}

// changedKeys names the top-level config sections that differ.
func changedKeys(a, b *Config) []string {
	var out []string
	for _, c := range []struct {
		key  string
		same bool
	}{
		{"hostname", a.Hostname == b.Hostname},
		{"data_dir", a.DataDir == b.DataDir},
		{"log", reflect.DeepEqual(a.Log, b.Log)},
		{"tls", reflect.DeepEqual(a.TLS, b.TLS)},
		{"profile_signing", a.ProfileSigning == b.ProfileSigning},
		{"listen", a.Listen == b.Listen},
		{"domain", reflect.DeepEqual(a.Domains, b.Domains)},
		{"http_limits", a.Limits == b.Limits},
		{"mail", a.Mail == b.Mail},
		{"staff", reflect.DeepEqual(a.Staff, b.Staff)},
		{"observations", a.Observations == b.Observations},
		{"observe", reflect.DeepEqual(a.Observe, b.Observe)},
		{"self_help", a.SelfHelp == b.SelfHelp},
		{"branding", a.Branding == b.Branding},
		{"database", a.Database == b.Database},
		{"load_balancer", reflect.DeepEqual(a.LoadBalancer, b.LoadBalancer)},
	} {
		if !c.same {
			out = append(out, c.key)
		}
	}
	return out
}
