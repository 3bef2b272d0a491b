package probe

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"mailsetup/autoconfig"
	"mailsetup/finding"
)

// reported says whether the client reports username u.
func reported(c *ClientSettings, u string) bool {
	return strings.TrimSpace(c.Incoming.Username) == u || strings.TrimSpace(c.Outgoing.Username) == u
}

// HeloName is the name the probe gives in EHLO. The embedded server
// leaves the events of such sessions (the probe's deliberate refusals)
// out of its observations.
const HeloName = "mailsetup-probe.invalid"

const heloName = HeloName

// smtpClient connects to a submission endpoint and completes TLS as the
// endpoint's security says. strict verifies the certificate (logins);
// otherwise the handshake completes for inspection only.
func (r *runner) smtpClient(ctx context.Context, e autoconfig.Endpoint, strict bool) (*smtp.Client, error) {
	cfg := r.inspectConfig(e.Host)
	if strict {
		cfg = r.strictConfig(e.Host)
	}
	c, err := r.dial(ctx, e)
	if err != nil {
		return nil, &connectError{err}
	}
	var cl *smtp.Client
	switch e.Security {
	case autoconfig.TLS:
		tc, err := handshake(ctx, c, cfg)
		if err != nil {
			c.Close()
			return nil, err
		}
		cl = smtp.NewClient(tc)
	case autoconfig.STARTTLS:
		cl, err = smtp.NewClientStartTLS(c, cfg)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("TLS handshake (STARTTLS): %w", err)
		}
	default:
		cl = smtp.NewClient(c)
	}
	if dl, ok := ctx.Deadline(); ok {
		cl.CommandTimeout = time.Until(dl)
		cl.SubmissionTimeout = cl.CommandTimeout
	}
	if err := cl.Hello(heloName); err != nil && e.Security != autoconfig.STARTTLS {
		cl.Close()
		return nil, fmt.Errorf("EHLO: %w", err)
	}
	return cl, nil
}

func smtpReply(err error) string {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		code := fmt.Sprintf("%d", se.Code)
		if se.EnhancedCode != (smtp.EnhancedCode{}) && se.EnhancedCode != smtp.NoEnhancedCode {
			code += fmt.Sprintf(" %d.%d.%d", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2])
		}
		return "SMTP " + code + " " + se.Message
	}
	return err.Error()
}

// connectSMTP inspects a submission endpoint: AUTH only after TLS, the
// certificate, and mail without AUTH (MAIL FROM, then RCPT TO) must be
// refused. It never sends DATA.
func (r *runner) connectSMTP(ctx context.Context, e autoconfig.Endpoint, s *stepState) {
	if e.Security == autoconfig.STARTTLS {
		c, err := r.dial(ctx, e)
		if err != nil {
			unreachable(s, e, err)
			return
		}
		cl := smtp.NewClient(c)
		if err := cl.Hello(heloName); err != nil {
			c.Close()
			connFailed(s, e, fmt.Errorf("EHLO: %w", err))
			return
		}
		tlsOK, _ := cl.Extension("STARTTLS")
		authOK, mechs := cl.Extension("AUTH")
		cl.Quit()
		c.Close()
		if !tlsOK {
			tlsFailed(s, e, errors.New("STARTTLS is not advertised"))
			return
		}
		if authOK {
			s.note("AUTH %s advertised before STARTTLS", mechs)
			s.find(finding.New("smtp.auth-before-tls", finding.Vars{"value": fmt.Sprintf("%s:%d", e.Host, e.Port), "expected": "STARTTLS"}, "EHLO before STARTTLS lists AUTH "+mechs))
		} else {
			s.note("no AUTH before STARTTLS")
		}
	}
	cl, err := r.smtpClient(ctx, e, false)
	if err != nil {
		connFailed(s, e, err)
		return
	}
	defer cl.Close()
	if st, ok := cl.TLSConnectionState(); ok {
		r.checkCert(e, st, s)
	}
	if ok, mechs := cl.Extension("AUTH"); ok {
		s.note("AUTH %s", mechs)
	} else {
		s.note("AUTH is not advertised")
	}
	// Servers such as Postfix accept MAIL FROM from anyone and apply
	// their restrictions at RCPT TO (smtpd_delay_reject), so only an
	// accepted recipient shows that mail without a login gets through.
	if err := cl.Mail(r.address, nil); err != nil {
		s.note("MAIL FROM without AUTH refused: %s", smtpReply(err))
		cl.Quit()
		return
	}
	err = cl.Rcpt(r.address, nil)
	switch {
	case err == nil:
		s.note("MAIL FROM and RCPT TO:<%s> without AUTH were accepted", r.address)
		s.find(finding.New("smtp.open-relay", finding.Vars{"value": fmt.Sprintf("%s:%d", e.Host, e.Port)}, fmt.Sprintf("MAIL FROM and RCPT TO:<%s> without AUTH: accepted", r.address)))
	default:
		s.note("RCPT TO without AUTH refused: %s", smtpReply(err))
	}
	cl.Reset()
	cl.Quit()
}

// loginSMTP authenticates with the full address, checks that the sender
// is accepted (MAIL FROM and RCPT TO the own address, then RSET: nothing
// is sent), then, only for a username the customer reports other than
// the full address, whether the server accepts that form too.
func (r *runner) loginSMTP(ctx context.Context, e autoconfig.Endpoint, s *stepState) loginOutcome {
	cl, err := r.smtpClient(ctx, e, true)
	if err != nil {
		connFailed(s, e, err)
		return loginOther
	}
	defer cl.Close()
	s.note("AUTH PLAIN as %s", r.loginName())
	if err := cl.Auth(sasl.NewPlainClient("", r.loginName(), r.password)); err != nil {
		reply := smtpReply(err)
		s.fail(fmt.Errorf("SMTP AUTH: %s", reply))
		var se *smtp.SMTPError
		if !errors.As(err, &se) {
			return loginOther
		}
		switch {
		case se.Code == 454 && strings.Contains(strings.ToLower(se.Message), "too many"):
			s.find(finding.New("login.throttled", finding.Vars{"value": reply}, reply))
			return loginRefused
		case se.Code >= 400 && se.Code < 500:
			s.find(finding.New("server.temporary-failure", finding.Vars{"value": reply}, reply))
			return loginOther
		case se.Code == 538:
			s.find(finding.New("tls.failed", finding.Vars{"value": fmt.Sprintf("%s:%d", e.Host, e.Port), "expected": securityLabel(string(e.Security))}, reply))
			return loginOther
		}
		return r.refused(ctx, e, s, reply)
	}
	s.note("login accepted")
	if err := cl.Mail(r.address, nil); err != nil {
		s.note("MAIL FROM:<%s> after AUTH refused: %s", r.address, smtpReply(err))
	} else if err := cl.Rcpt(r.address, nil); err != nil {
		s.note("RCPT TO:<%s> after AUTH refused: %s", r.address, smtpReply(err))
	} else {
		s.note("MAIL FROM and RCPT TO:<%s> accepted (reset; nothing sent)", r.address)
	}
	cl.Reset()
	cl.Quit()
	if r.loginName() != r.address {
		// Discovered settings with the bare local part as username: the
		// other forms are not the probe's business.
		return loginOK
	}

	// The username forms the customer reports other than the full
	// address: does the server take them too? Only those, and only when
	// reported: a refused form leaves a failed-login line on the server,
	// the pattern fail2ban counts, so a plain probe makes no such login.
	// The password is known to be right, so the reply is about the
	// username alone.
	var forms []string
	if c := r.client; c != nil {
		for _, u := range []string{c.Incoming.Username, c.Outgoing.Username} {
			u = strings.TrimSpace(u)
			if u != "" && !strings.EqualFold(u, r.address) && !slices.Contains(forms, u) {
				forms = append(forms, u)
			}
		}
	}
	for _, form := range forms {
		cl2, err := r.smtpClient(ctx, e, true)
		if err != nil {
			s.note("username %q not checked: %v", form, err)
			break
		}
		extra := fmt.Sprintf("an extra login as %q was made (only because the customer reports that username); a refusal leaves one failed-login line in the server's log", form)
		s.note("%s", extra)
		err = cl2.Auth(sasl.NewPlainClient("", form, r.password))
		cl2.Quit()
		cl2.Close()
		if err == nil {
			s.find(finding.New("login.local-part-accepted", finding.Vars{"value": fmt.Sprintf("%s:%d", e.Host, e.Port), "address": r.address}, fmt.Sprintf("AUTH as %q accepted", form), extra))
			continue
		}
		s.note("username %q refused: %s", form, smtpReply(err))
		if r.client != nil && reported(r.client, form) {
			// Evidence for the comparison's finding of the same id,
			// which already names the field and the fix.
			f := finding.New("username.not-full-address", finding.Vars{"value": form, "address": r.address},
				fmt.Sprintf("the server refuses %q with the right password: %s", form, smtpReply(err)))
			f.Fix, f.Staff = "", ""
			s.find(f)
		}
	}
	return loginOK
}
