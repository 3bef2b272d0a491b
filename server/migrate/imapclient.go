package migrate

import (
	"context"
	"crypto/tls"
	"fmt"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
)

// The read-only IMAP session with the old server (emersion/go-imap's
// client): it sends CAPABILITY, STARTTLS, LOGIN, LIST, EXAMINE (never
// SELECT), FETCH with BODY.PEEK (never setting \Seen) and LOGOUT: nothing
// that changes the source. Every read and write runs under our idle
// deadline (the library's own timeouts are replaced on every read and
// write), and the connection is closed when the context ends.

// IMAPSource is an old IMAP server to import from.
type IMAPSource struct {
	// Addr is HOST:PORT.
	Addr     string
	Security Security
	// TLS is the TLS configuration; nil: the system roots and HOST as
	// the server name.
	TLS *tls.Config
	// Timeout bounds every network step. Zero: DefaultTimeout.
	Timeout time.Duration
	// UIDLFormat is the old server's pop3_uidl_format (Dovecot): the
	// UIDLs its POP3 server served for the INBOX, computed from the IMAP
	// UID (%u) and UIDVALIDITY (%v). A format with %m, %f or %g cannot
	// be computed over IMAP; see AcceptNewUIDLs.
	UIDLFormat UIDLFormat
	// AcceptNewUIDLs imports INBOX messages whose old UIDL cannot be
	// computed with new UIDLs (their POP3 clients download them again);
	// without it they are refused unless already here.
	AcceptNewUIDLs bool
}

// imapSession is a logged-in session with the old IMAP server.
type imapSession struct {
	c    *imapclient.Client
	stop func() bool
}

// dialIMAP connects to src, protects the session as src asks and logs in.
func dialIMAP(ctx context.Context, src IMAPSource, username, password string) (*imapSession, error) {
	dl, err := dialSource(ctx, src.Addr, src.TLS, src.Timeout)
	if err != nil {
		return nil, err
	}
	s := &imapSession{stop: dl.stop}
	fail := func(err error) (*imapSession, error) {
		s.stop()
		dl.raw.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	conn, tlsConf := dl.conn, dl.tls
	opts := &imapclient.Options{TLSConfig: tlsConf}
	switch src.Security {
	case SecurityTLS:
		tc := tls.Client(conn, tlsConf)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fail(fmt.Errorf("TLS with the old server: %w", err))
		}
		s.c = imapclient.New(tc, opts)
	case SecuritySTARTTLS:
		if s.c, err = imapclient.NewStartTLS(conn, opts); err != nil {
			return fail(fmt.Errorf("STARTTLS with the old server: %w", err))
		}
	case SecurityNone:
		s.c = imapclient.New(conn, opts)
	default:
		return fail(fmt.Errorf("security %q: want tls, starttls or none", src.Security))
	}
	if err := s.c.WaitGreeting(); err != nil {
		return fail(fmt.Errorf("the old server's greeting: %w", err))
	}
	if err := s.c.Login(username, password).Wait(); err != nil {
		return fail(fmt.Errorf("login as %s: %w", username, err))
	}
	return s, nil
}

// close logs out (bounded by the idle deadline) and closes.
func (s *imapSession) close() {
	_ = s.c.Logout().Wait()
	s.c.Close()
	s.stop()
}
