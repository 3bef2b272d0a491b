package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"mailsetup/autoconfig"
	"mailsetup/finding"
)

// inspectConfig completes any handshake so that the certificate can be
// examined and reported; nothing secret is ever sent over such a
// connection.
func (r *runner) inspectConfig(host string) *tls.Config {
	return &tls.Config{ServerName: host, InsecureSkipVerify: true, MinVersion: tls.VersionTLS10}
}

// strictConfig verifies the server as a mail client would; logins use it.
func (r *runner) strictConfig(host string) *tls.Config {
	return &tls.Config{ServerName: host, RootCAs: r.opts.RootCAs, MinVersion: tls.VersionTLS12, Time: r.opts.Now}
}

// handshake runs a TLS client handshake on c bounded by ctx.
func handshake(ctx context.Context, c net.Conn, cfg *tls.Config) (*tls.Conn, error) {
	tc := tls.Client(c, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, fmt.Errorf("TLS handshake: %w", err)
	}
	return tc, nil
}

// checkCert reports the negotiated TLS and the certificate of e: name,
// chain, expiry, version.
func (r *runner) checkCert(e autoconfig.Endpoint, st tls.ConnectionState, s *stepState) {
	if e.Security == autoconfig.None {
		s.note("no TLS: the policy says security none")
		return
	}
	where := fmt.Sprintf("%s:%d", e.Host, e.Port)
	s.note("%s, %s", tlsVersion(st.Version), tls.CipherSuiteName(st.CipherSuite))
	if st.Version < tls.VersionTLS12 {
		s.find(finding.New("tls.old-version", finding.Vars{"value": where, "expected": tlsVersion(st.Version)}, "negotiated "+tlsVersion(st.Version)))
	}
	if len(st.PeerCertificates) == 0 {
		s.find(finding.New("tls.untrusted", finding.Vars{"value": where}, "no certificate"))
		return
	}
	leaf := st.PeerCertificates[0]
	now := r.opts.Now()
	left := leaf.NotAfter.Sub(now)
	s.note("certificate %q for %s, issued by %q, valid until %s (%d days)", leaf.Subject.CommonName, strings.Join(leaf.DNSNames, ", "),
		leaf.Issuer.CommonName, leaf.NotAfter.UTC().Format(time.DateOnly), int(left.Hours()/24))
	if err := leaf.VerifyHostname(e.Host); err != nil {
		s.find(finding.New("tls.name-mismatch", finding.Vars{"value": where, "expected": e.Host}, err.Error()))
	}
	// An expired (or not yet valid) certificate is reported as that
	// alone, with its real dates: the chain is checked only for an
	// issuer that is not trusted, never at a made-up moment whose
	// "current time" would read as if it were now.
	valid := fmt.Sprintf("valid from %s until %s; now %s", leaf.NotBefore.UTC().Format(time.RFC3339),
		leaf.NotAfter.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	outside := now.After(leaf.NotAfter) || now.Before(leaf.NotBefore)
	switch {
	case now.After(leaf.NotAfter):
		s.find(finding.New("tls.expired", finding.Vars{"value": where}, "expired on "+leaf.NotAfter.UTC().Format(time.RFC3339)+" ("+valid+")"))
	case now.Before(leaf.NotBefore):
		s.find(finding.New("tls.expired", finding.Vars{"value": where}, "not valid before "+leaf.NotBefore.UTC().Format(time.RFC3339)+" ("+valid+")"))
	case left < ExpiryWarning:
		f := finding.New("tls.expires-soon", finding.Vars{"value": where, "days": fmt.Sprint(int(left.Hours() / 24))}, "expires "+leaf.NotAfter.UTC().Format(time.RFC3339))
		s.find(f)
	}
	inter := x509.NewCertPool()
	for _, c := range st.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	opts := x509.VerifyOptions{Roots: r.opts.RootCAs, Intermediates: inter, CurrentTime: now}
	if outside {
		opts.CurrentTime = leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) / 2)
	}
	if _, err := leaf.Verify(opts); err != nil {
		var ua x509.UnknownAuthorityError
		var ci x509.CertificateInvalidError
		switch {
		case errors.As(err, &ua):
			s.find(finding.New("tls.untrusted", finding.Vars{"value": where}, "issuer not trusted: "+err.Error()))
		case outside && errors.As(err, &ci) && ci.Reason == x509.Expired:
			// An issuer outside its validity at the moment the leaf
			// was checked: part of the expiry already reported.
		default:
			s.find(finding.New("tls.untrusted", finding.Vars{"value": where}, err.Error()))
		}
	}
}

func tlsVersion(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "TLS 1.0"
	case tls.VersionTLS11:
		return "TLS 1.1"
	case tls.VersionTLS12:
		return "TLS 1.2"
	case tls.VersionTLS13:
		return "TLS 1.3"
	}
	return fmt.Sprintf("TLS 0x%04x", v)
}

// tlsFailed records a failed handshake.
func tlsFailed(s *stepState, e autoconfig.Endpoint, err error) {
	s.fail(err)
	s.find(finding.New("tls.failed", finding.Vars{"value": fmt.Sprintf("%s:%d", e.Host, e.Port), "expected": securityLabel(string(e.Security))}, err.Error()))
}
