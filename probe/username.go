package probe

import (
	"context"
	"fmt"
	"slices"

	"github.com/emersion/go-sasl"

	"mailsetup/autoconfig"
	"mailsetup/finding"
)

// refused handles a login with the full address that the server refused
// (reply): a wrong password, or a server that knows its users only by
// the bare local part. Only then, and once, it logs in again as the bare
// local part (which leaves one more failed-login line on the server when
// the password is wrong, so it is never done otherwise). If that works
// the server is at fault (server.username-form) and the other logins use
// the bare form; else the password or the username was wrong
// (login.failed).
func (r *runner) refused(ctx context.Context, e autoconfig.Endpoint, s *stepState, reply string) loginOutcome {
	where := fmt.Sprintf("%s:%d", e.Host, e.Port)
	if r.loginName() == r.address {
		s.note("%s refused the full address; one extra login as %q tells a wrong password from a server that knows only the bare local part", where, r.local)
		err := r.tryLogin(ctx, e, r.local)
		if err == nil {
			s.err = ""
			s.note("login as %q accepted", r.local)
			r.mu.Lock()
			r.bareOnly = true
			r.mu.Unlock()
			s.find(finding.New("server.username-form", finding.Vars{"value": r.local, "expected": where, "address": r.address},
				fmt.Sprintf("%s refused %s with the right password: %s", where, r.address, reply),
				fmt.Sprintf("an extra login as %q was made (only because the full address was refused) and accepted", r.local)))
			return loginOK
		}
		extra := fmt.Sprintf("an extra login as %q was made (only because the full address was refused) and refused too: %v; it leaves one more failed-login line in the server's log", r.local, err)
		s.note("%s", extra)
		s.find(finding.New("login.failed", finding.Vars{"value": reply, "address": r.address}, reply, extra))
		return loginRefused
	}
	s.find(finding.New("login.failed", finding.Vars{"value": reply, "address": r.address}, reply))
	return loginRefused
}

// tryLogin logs in to e as user with the probe's password on a
// connection of its own, and logs out.
func (r *runner) tryLogin(ctx context.Context, e autoconfig.Endpoint, user string) error {
	switch e.Protocol {
	case autoconfig.IMAP:
		cl, err := r.imapClient(ctx, e)
		if err != nil {
			return err
		}
		defer cl.Close()
		if err := cl.Login(user, r.password).Wait(); err != nil {
			return err
		}
		return cl.Logout().Wait()
	case autoconfig.POP3:
		p, _, _, caps, err := r.dialPOP3(ctx, e, r.strictConfig(e.Host))
		if err != nil {
			return err
		}
		defer p.c.Close()
		if _, err := p.auth(caps, user, r.password); err != nil {
			return err
		}
		p.cmd("QUIT")
		return nil
	}
	cl, err := r.smtpClient(ctx, e, true)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := cl.Auth(sasl.NewPlainClient("", user, r.password)); err != nil {
		return fmt.Errorf("%s", smtpReply(err))
	}
	cl.Quit()
	return nil
}

// usernameForm: where the server accepts only the bare local part
// (server.username-form), a customer who reported it is not told to
// switch to the full address, the form this server refuses.
func (r *runner) usernameForm(fs []finding.Finding) []finding.Finding {
	if !slices.ContainsFunc(fs, func(f finding.Finding) bool { return f.ID == "server.username-form" }) {
		return fs
	}
	n := len(fs)
	fs = slices.DeleteFunc(slices.Clone(fs), func(f finding.Finding) bool {
		return f.ID == "username.not-full-address" && r.client != nil && reported(r.client, r.local)
	})
	if len(fs) < n && !slices.ContainsFunc(fs, func(f finding.Finding) bool { return f.Fault == finding.FaultSettings && f.Severity > finding.OK }) &&
		!slices.ContainsFunc(fs, func(f finding.Finding) bool { return f.ID == "settings.ok" }) {
		fs = append(fs, finding.New("settings.ok", nil, fmt.Sprintf("the reported username %q is the only form this server accepts", r.local)))
	}
	return fs
}
