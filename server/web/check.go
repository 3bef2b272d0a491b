package web

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"mailsetup/finding"
	"mailsetup/probe"
	"mailsetup/server/auth"
)

// checkRequest is one settings check from the self-help page, the staff
// console or the API.
type checkRequest struct {
	Address  string
	Password string
	Client   *probe.ClientSettings
	// Remote is who asks: the customer, or the staff member.
	Remote netip.Addr
	TLS    bool
	// Source is self-help, staff or api (for the metrics).
	Source string
}

// errChecksBusy: every check slot stayed taken while the request waited.
var errChecksBusy = echo.NewHTTPError(http.StatusServiceUnavailable,
	"too many settings checks are running right now: try again in a minute")

const (
	// maxConcurrentChecks bounds the checks running at once.
	maxConcurrentChecks = 8
	// checkQueueWait is how long a check waits for a slot.
	checkQueueWait = 3 * time.Second
)

// checkResult is a check's report and what became of the password.
type checkResult struct {
	Report *probe.Report
	// PasswordChecked: the password was right and the probe logged in
	// with it.
	PasswordChecked bool
	// Throttled > 0: the shared login throttle blocks the address or
	// the account; the password was not tried (login.throttled).
	Throttled time.Duration
	// NoAuth: a password was given, but this server has no mail
	// accounts to check it against; it was not used.
	NoAuth bool
	// AuthFailed: checking the password failed for an internal reason
	// (logged); it was not used.
	AuthFailed bool
	// Insecure: a password came over plain HTTP from another machine;
	// it was not used.
	Insecure bool
}

// checkSettings runs the probe for a configured domain only, against its
// own servers only (the policies' hosts; never a host the form names,
// never discovery). A password is first checked with the mail server's
// authenticator on behalf of the person asking: their address takes the
// shared throttle's count, and the probe's own logins, which come from
// this machine, never fail and never lock anybody out. A wrong password
// becomes login.failed without any login by the probe. The password is
// never logged, stored or put into the report.
func (a *App) checkSettings(ctx context.Context, req checkRequest) (checkResult, error) {
	var res checkResult
	// Checks are bounded machine-wide: each one may hash a password
	// (argon2id, 19 MiB) and opens about ten connections.
	select {
	case a.checkSlots <- struct{}{}:
		defer func() { <-a.checkSlots }()
	case <-time.After(checkQueueWait):
		return res, errChecksBusy
	case <-ctx.Done():
		return res, ctx.Err()
	}
	var extra []finding.Finding
	password := ""
	switch {
	case req.Password == "":
	case !req.TLS && !req.Remote.IsLoopback():
		res.Insecure = true
	case a.auth == nil:
		res.NoAuth = true
	default:
		_, err := a.auth.Authenticate(ctx, auth.Attempt{Proto: "web", Remote: req.Remote, TLS: req.TLS, Username: req.Address, Password: req.Password})
		var throttled *auth.ThrottledError
		switch {
		case err == nil:
			password, res.PasswordChecked = req.Password, true
		case errors.As(err, &throttled):
			res.Throttled = throttled.RetryAfter
			extra = append(extra, finding.New("login.throttled", map[string]string{"value": throttled.Error()},
				"the password was not tried: "+throttled.Error()))
		case errors.Is(err, auth.ErrBadCredentials):
			extra = append(extra, finding.New("login.failed", map[string]string{"address": req.Address, "value": "the password was refused"},
				fmt.Sprintf("the password given for %s was checked by the mail server and refused", req.Address)))
		default:
			res.AuthFailed = true
			a.log.Error("settings check: password check failed", "address", req.Address, "err", err)
		}
	}
	opts := a.probe
	opts.Discover = false
	prev := opts.AllowedHost
	opts.AllowedHost = func(host string) bool {
		return a.policyHosts[strings.ToLower(host)] && (prev == nil || prev(host))
	}
	// The answer must be written within the HTTP write timeout.
	if opts.Timeout <= 0 || opts.Timeout > checkTimeout {
		opts.Timeout = checkTimeout
	}
	if opts.StepTimeout <= 0 || opts.StepTimeout > checkStepTimeout {
		opts.StepTimeout = checkStepTimeout
	}
	rep, err := probe.Run(ctx, probe.Request{Address: req.Address, Password: password, Client: req.Client}, opts)
	if err != nil {
		a.checksRun.WithLabelValues(req.Source, "error").Inc()
		return res, err
	}
	defer func() { a.checksRun.WithLabelValues(req.Source, rep.Worst.String()).Inc() }()
	if len(extra) > 0 {
		// settings.ok no longer holds with a refused or untried password.
		rep.Findings = slices.DeleteFunc(append(extra, rep.Findings...), func(f finding.Finding) bool { return f.ID == "settings.ok" })
		slices.SortStableFunc(rep.Findings, func(x, y finding.Finding) int { return cmp.Compare(y.Severity, x.Severity) })
		for _, f := range rep.Findings {
			rep.Worst = max(rep.Worst, f.Severity)
		}
	}
	res.Report = rep
	return res, nil
}
