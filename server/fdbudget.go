package server

import "log/slog"

// Descriptor budget. The web listeners once took every descriptor the
// process had (20,000 idle keep-alive connections), and the mail
// listeners stopped accepting. So at start the soft RLIMIT_NOFILE is
// raised to the hard limit and divided: each mail connection may need
// two descriptors (its socket and a file of the mailbox or the spool),
// a reserve covers listeners, logs and the stores, and the web listeners
// get what is left, at most http_limits.max_connections each.
const (
	fdReserve     = 256 // listeners, logs, accounts, observations, DNS, the stores' files
	fdPerMailConn = 2
	adminConns    = 64 // the admin listener: metrics scrapes and health checks
	minWebConns   = 32 // even on a tiny limit, the web answers someone
)

// fdBudget is the connection limit of each web listener.
type fdBudget struct {
	limit uint64 // soft RLIMIT_NOFILE (0: unknown)
	mail  int    // descriptors kept for the mail listeners
	web   int    // per web listener (http, https)
	admin int
}

// planDescriptors raises the descriptor limit and divides it. webListeners
// counts http and https.
func planDescriptors(cfg *Config, webListeners int, log *slog.Logger) fdBudget {
	limit, err := raiseNoFile()
	if err != nil {
		log.Warn("reading the descriptor limit", "err", err)
	}
	b := divideDescriptors(limit, cfg, webListeners, log)
	if limit != 0 && webListeners != 0 {
		log.Info("descriptor budget", "limit", limit, "mail", b.mail, "web_per_listener", b.web, "web_listeners", webListeners,
			"admin", b.admin, "reserve", fdReserve)
	}
	return b
}

// divideDescriptors divides limit (the soft RLIMIT_NOFILE, 0 when
// unknown) between cfg's mail listeners, the admin listener, the reserve
// and the web listeners; a reload divides it again with the new limits,
// so that more mail connections leave fewer to the web.
func divideDescriptors(limit uint64, cfg *Config, webListeners int, log *slog.Logger) fdBudget {
	mailListeners := 0
	for _, a := range []string{cfg.Listen.SMTP, cfg.Listen.Submission, cfg.Listen.Submissions, cfg.Listen.IMAP, cfg.Listen.IMAPS, cfg.Listen.POP3, cfg.Listen.POP3S} {
		if a != "" {
			mailListeners++
		}
	}
	b := fdBudget{limit: limit, mail: mailListeners * cfg.Mail.MaxConnections * fdPerMailConn,
		web: cfg.Limits.MaxConnections, admin: adminConns}
	if limit == 0 || webListeners == 0 {
		return b
	}
	left := int(min(limit, 1<<30)) - b.mail - fdReserve - b.admin
	if per := left / webListeners; per < b.web {
		b.web = max(per, minWebConns)
		if per < minWebConns {
			log.Warn("the descriptor limit is too low for mail.max_connections: raise the process's RLIMIT_NOFILE (LimitNOFILE= in systemd) or lower mail.max_connections",
				"limit", limit, "mail_needs", b.mail, "reserve", fdReserve)
		}
	}
	return b
}
