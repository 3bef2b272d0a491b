package probe

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"mailsetup/autoconfig"
	"mailsetup/finding"
)

// greetingWait is how long the mode check waits for a server greeting
// before it tries a TLS handshake instead: SMTP, IMAP and POP3 servers
// greet at once on a plain port and stay silent on an implicit-TLS port.
const greetingWait = 2 * time.Second

// speaks says which connection security a port actually answers with.
type speaks int

const (
	speaksUnknown speaks = iota
	speaksPlain          // a plaintext greeting: STARTTLS/STLS (or none)
	speaksTLS            // silent, then a TLS handshake: SSL/TLS
)

// detectMode connects to host:port and finds out which mode the server
// speaks: a plaintext greeting means STARTTLS (or none), silence and then
// a TLS handshake means implicit TLS. It sends no credentials and, on a
// plain port, only QUIT/LOGOUT. The certificate is not checked here: the
// connect steps do that; this only tells the modes apart.
func (r *runner) detectMode(ctx context.Context, host string, port int) (speaks, string) {
	hostport := net.JoinHostPort(host, strconv.Itoa(port))
	c, err := r.dialAddr(ctx, hostport)
	if err != nil {
		return speaksUnknown, fmt.Sprintf("%s: %v", hostport, err)
	}
	c.SetReadDeadline(time.Now().Add(greetingWait))
	line, err := bufio.NewReaderSize(c, 512).ReadString('\n')
	c.Close()
	if err == nil || len(line) > 0 {
		greeting := strings.TrimSpace(line)
		if len(greeting) > 60 {
			greeting = greeting[:60] + "..."
		}
		return speaksPlain, fmt.Sprintf("%s sends a plaintext greeting (%q): it speaks STARTTLS (or no encryption), not SSL/TLS", hostport, greeting)
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return speaksUnknown, fmt.Sprintf("%s: closed without a greeting: %v", hostport, err)
	}
	c, err = r.dialAddr(ctx, hostport)
	if err != nil {
		return speaksUnknown, fmt.Sprintf("%s: %v", hostport, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	// Only the mode is in question here; the connect steps verify the
	// certificate with the configured roots.
	tc := tls.Client(c, &tls.Config{ServerName: host, InsecureSkipVerify: true, MinVersion: tls.VersionTLS10})
	if err := tc.HandshakeContext(ctx); err != nil {
		return speaksUnknown, fmt.Sprintf("%s: no greeting within %v and no TLS handshake: %v", hostport, greetingWait, err)
	}
	return speaksTLS, fmt.Sprintf("%s stays silent and answers a TLS handshake: it speaks SSL/TLS, not STARTTLS", hostport)
}

// checkReportedMode: for a port the customer reported with a
// connection security that differs from the policy's for that port, find
// out live which mode the server speaks there (RFC 8314 ports and the
// policy's own). Only hosts the policy names are contacted.
// It returns the mode the port speaks ("" when unknown).
func (r *runner) checkReportedMode(ctx context.Context, s *stepState, proto autoconfig.Protocol, host string, port int, reported string) autoconfig.Security {
	want := autoconfig.Security("")
	for _, e := range r.pol.Endpoints(proto) {
		if e.Port == port && strings.EqualFold(e.Host, host) {
			want = e.Security
		}
	}
	got, evidence := r.detectMode(ctx, host, port)
	s.note("%s", evidence)
	if got == speaksUnknown {
		s.fail(errors.New(evidence))
	}
	s.note("the client is set to %s on this port", securityLabel(reported))
	if want != "" {
		s.note("the policy says %s for port %d", securityLabel(string(want)), port)
	}
	if want == "" {
		want = autoconfig.Security(wellKnownSecurity(port))
	}
	return got.security(want)
}

// modeInDoubt reports whether a reported connection security differs
// from what the policy (or, for a port the policy does not list, RFC 8314)
// says for that port: then the live mode is worth checking. A port that
// is neither the policy's nor a standard mail port is never dialled: the
// probe must not become a port scanner of the policy's hosts.
func (r *runner) modeInDoubt(proto autoconfig.Protocol, host string, port int, reported string) bool {
	if host == "" || port == 0 || reported == "" || !r.allowed(host) {
		return false
	}
	for _, e := range r.pol.Endpoints(proto) {
		if e.Port == port && strings.EqualFold(e.Host, host) {
			return string(e.Security) != reported
		}
	}
	wk := wellKnownSecurity(port)
	return wk != "" && wk != reported
}

// security is the connection security a port that speaks m has, given
// what the policy says for it (a plaintext greeting is STARTTLS, or no
// encryption where the policy says so); "" when unknown.
func (m speaks) security(policy autoconfig.Security) autoconfig.Security {
	switch m {
	case speaksTLS:
		return autoconfig.TLS
	case speaksPlain:
		if policy == autoconfig.None {
			return autoconfig.None
		}
		return autoconfig.STARTTLS
	}
	return ""
}

// connFailure: the step's attempt could not talk to the port at all
// (no connection, no greeting, no TLS), as opposed to a refused login.
func connFailure(s *stepState) bool {
	for _, f := range s.findings {
		switch f.ID {
		case "tls.failed", "server.unreachable", "server.temporary-failure", "server.starttls-missing":
			return true
		}
	}
	return s.err != "" && len(s.findings) == 0
}

// withModeCheck runs fn, the connect or login step of e. When fn fails to
// talk to the port, or has not finished within greetingWait (a client
// waiting for the greeting of a port that waits for a TLS handshake), it
// finds out live which mode the port speaks (detectMode). A port that
// speaks the other mode than the policy says is server.tls-mode-mismatch,
// instead of what the attempt made of it: a timeout waiting for the
// greeting, or a record that "does not look like a TLS handshake".
func (r *runner) withModeCheck(ctx context.Context, e autoconfig.Endpoint, s *stepState, fn func(context.Context, *stepState)) {
	if e.Security != autoconfig.TLS && e.Security != autoconfig.STARTTLS {
		fn(ctx, s)
		return
	}
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	var as stepState
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(actx, &as)
	}()
	wait := time.NewTimer(greetingWait)
	defer wait.Stop()
	select {
	case <-done:
		if !connFailure(&as) {
			*s = as
			return
		}
	case <-wait.C:
	}
	got, evidence := r.detectMode(ctx, e.Host, e.Port)
	live := got.security(e.Security)
	if live == "" || live == e.Security {
		<-done
		*s = as
		return
	}
	cancel()
	<-done
	where := fmt.Sprintf("%s:%d", e.Host, e.Port)
	s.evidence = append(as.evidence, evidence)
	s.err = fmt.Sprintf("%s speaks %s; the policy says %s", where, securityLabel(string(live)), securityLabel(string(e.Security)))
	if as.err != "" {
		s.note("the attempt with %s failed: %s", securityLabel(string(e.Security)), as.err)
	}
	s.find(finding.New("server.tls-mode-mismatch", finding.Vars{"value": where, "port": strconv.Itoa(e.Port),
		"speaks": securityLabel(string(live)), "expected": securityLabel(string(e.Security))}, evidence))
}
