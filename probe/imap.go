package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"mailsetup/autoconfig"
	"mailsetup/finding"
)

// imapTagged sends "tag cmd" and reads up to the tagged reply, returning
// the untagged lines.
func imapTagged(l *lineConn, tag, cmd string) ([]string, error) {
	if err := l.writeLine(tag + " " + cmd); err != nil {
		return nil, err
	}
	var untagged []string
	for range 1000 {
		line, err := l.readLine()
		if err != nil {
			return nil, err
		}
		if rest, ok := strings.CutPrefix(line, tag+" "); ok {
			if strings.HasPrefix(strings.ToUpper(rest), "OK") {
				return untagged, nil
			}
			return untagged, fmt.Errorf("IMAP %s: %s", cmd, rest)
		}
		untagged = append(untagged, line)
	}
	return nil, fmt.Errorf("IMAP %s: too many untagged replies", cmd)
}

func imapCaps(untagged []string) string {
	for _, u := range untagged {
		if rest, ok := strings.CutPrefix(u, "* CAPABILITY "); ok {
			return rest
		}
	}
	return ""
}

// connectIMAP inspects an IMAP endpoint without logging in: greeting,
// CAPABILITY, STARTTLS when needed, the certificate.
func (r *runner) connectIMAP(ctx context.Context, e autoconfig.Endpoint, s *stepState) {
	c, err := r.dial(ctx, e)
	if err != nil {
		unreachable(s, e, err)
		return
	}
	defer func() { c.Close() }()
	var st tls.ConnectionState
	if e.Security == autoconfig.TLS {
		tc, err := handshake(ctx, c, r.inspectConfig(e.Host))
		if err != nil {
			tlsFailed(s, e, err)
			return
		}
		c, st = tc, tc.ConnectionState()
	}
	l := newLineConn(c)
	greeting, err := l.readLine()
	if err != nil || !strings.HasPrefix(greeting, "* OK") {
		connFailed(s, e, fmt.Errorf("IMAP greeting %q: %v", greeting, err))
		return
	}
	if e.Security == autoconfig.STARTTLS {
		u, err := imapTagged(l, "a1", "CAPABILITY")
		if err != nil {
			connFailed(s, e, err)
			return
		}
		caps := imapCaps(u)
		s.note("CAPABILITY before STARTTLS: %s", caps)
		upper := " " + strings.ToUpper(caps) + " "
		if !strings.Contains(upper, " LOGINDISABLED ") {
			s.note("LOGINDISABLED is not advertised before TLS")
			if strings.Contains(upper, " AUTH=PLAIN ") || strings.Contains(upper, " AUTH=LOGIN ") {
				s.find(finding.New("imap.auth-before-tls", finding.Vars{"value": fmt.Sprintf("%s:%d", e.Host, e.Port), "expected": "STARTTLS"},
					"CAPABILITY before STARTTLS: "+caps))
			}
		}
		if _, err := imapTagged(l, "a2", "STARTTLS"); err != nil {
			tlsFailed(s, e, err)
			return
		}
		tc, err := handshake(ctx, c, r.inspectConfig(e.Host))
		if err != nil {
			tlsFailed(s, e, err)
			return
		}
		c, st = tc, tc.ConnectionState()
		l = newLineConn(c)
	}
	r.checkCert(e, st, s)
	u, err := imapTagged(l, "a3", "CAPABILITY")
	if err != nil {
		connFailed(s, e, err)
		return
	}
	s.note("CAPABILITY: %s", imapCaps(u))
	imapTagged(l, "a4", "LOGOUT")
}

// loginIMAP logs in with the full address (go-imap's client) and reads
// the INBOX message count.
func (r *runner) loginIMAP(ctx context.Context, e autoconfig.Endpoint, s *stepState) loginOutcome {
	cl, err := r.imapClient(ctx, e)
	if err != nil {
		connFailed(s, e, err)
		return loginOther
	}
	defer cl.Close()
	s.note("LOGIN as %s", r.loginName())
	if err := cl.Login(r.loginName(), r.password).Wait(); err != nil {
		s.fail(fmt.Errorf("IMAP login: %w", err))
		var ie *imap.Error
		if !errors.As(err, &ie) {
			return loginOther
		}
		reply := fmt.Sprintf("IMAP NO [%s] %s", ie.Code, ie.Text)
		switch ie.Code {
		case imap.ResponseCodeUnavailable:
			if strings.Contains(strings.ToLower(ie.Text), "too many") {
				s.find(finding.New("login.throttled", finding.Vars{"value": reply}, reply))
				return loginRefused
			}
			s.find(finding.New("server.temporary-failure", finding.Vars{"value": reply}, reply))
			return loginOther
		}
		return r.refused(ctx, e, s, reply)
	}
	s.note("login accepted")
	if data, err := cl.Status("INBOX", &imap.StatusOptions{NumMessages: true}).Wait(); err == nil && data.NumMessages != nil {
		s.note("INBOX: %d messages", *data.NumMessages)
	}
	cl.Logout().Wait()
	return loginOK
}

// imapClient connects to e with a verified certificate (TLS or
// STARTTLS as e says), ready to log in.
func (r *runner) imapClient(ctx context.Context, e autoconfig.Endpoint) (*imapclient.Client, error) {
	c, err := r.dial(ctx, e)
	if err != nil {
		return nil, &connectError{err}
	}
	switch e.Security {
	case autoconfig.TLS:
		tc, err := handshake(ctx, c, r.strictConfig(e.Host))
		if err != nil {
			c.Close()
			return nil, err
		}
		return imapclient.New(tc, nil), nil
	case autoconfig.STARTTLS:
		cl, err := imapclient.NewStartTLS(c, &imapclient.Options{TLSConfig: r.strictConfig(e.Host)})
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("TLS handshake (STARTTLS): %w", err)
		}
		return cl, nil
	}
	return imapclient.New(c, nil), nil
}
