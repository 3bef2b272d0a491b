package delivery

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"mailsetup/internal/bound"
	"mailsetup/server/queue"
)

// result is one recipient's outcome of one attempt.
type result struct {
	outcome queue.Outcome
	host    string // the server that answered
	reply   string // its reply, or why there was none
	tls     bool   // the message went over TLS
}

// route is how to reach one destination: the hosts in order, the port,
// the TLS rules.
type route struct {
	r     *routing // the routing in force when the delivery started
	hosts []string
	port  int
	// requireTLS: only a TLS connection whose certificate is valid for
	// the host may carry the mail (MTA-STS enforce, a smarthost).
	requireTLS bool
	// implicitTLS: TLS from the first byte (a smarthost on 465).
	implicitTLS bool
	// allowed, when set, limits the hosts a connection may go to (the
	// MTA-STS policy's mx patterns).
	allowed   func(host string) bool
	tlsConfig *tls.Config // roots for verification (nil: the system's)
	auth      sasl.Client
}

// errPermanent marks a route that can never work (null MX, NXDOMAIN).
type errPermanent struct{ reason string }

func (e errPermanent) Error() string { return e.reason }

// send delivers msg to rcpts over rt: one connection carries all of them.
// Every recipient gets a result; those that stay Pending carry the reason.
func (a *Agent) send(ctx context.Context, rt route, from string, rcpts []string, msg []byte) map[string]result {
	out := make(map[string]result, len(rcpts))
	fail := func(o queue.Outcome, host, reply string) {
		for _, r := range rcpts {
			if _, done := out[r]; !done {
				out[r] = result{outcome: o, host: host, reply: reply}
			}
		}
	}
	var lastErr error
	var lastHost string
	for _, host := range rt.hosts {
		if rt.allowed != nil && !rt.allowed(host) {
			lastErr, lastHost = fmt.Errorf("MX %s is not listed in the domain's MTA-STS policy", host), host
			continue
		}
		ips, err := a.lookupIP(ctx, rt.r, host)
		if err != nil {
			lastErr, lastHost = err, host
			continue
		}
		for _, ip := range ips {
			res, err := a.sendHost(ctx, rt, host, net.JoinHostPort(ip.String(), strconv.Itoa(rt.port)), from, rcpts, msg)
			if err == nil {
				return res
			}
			lastErr, lastHost = err, host
			var se *smtp.SMTPError
			if errors.As(err, &se) && se.Code >= 500 {
				// A permanent refusal of the sender or the session
				// (RFC 5321 §4.2.1): every recipient fails.
				fail(queue.Failed, host, replyText(se))
				return out
			}
		}
	}
	reason := "no mail server found"
	if lastErr != nil {
		reason = lastErr.Error()
		var se *smtp.SMTPError
		if errors.As(lastErr, &se) {
			reason = replyText(se)
		}
	}
	fail(queue.Pending, lastHost, reason)
	return out
}

// lookupIP resolves host through the configured resolver, or the
// system's when there is none (a smarthost), under r's ConnectTimeout.
func (a *Agent) lookupIP(ctx context.Context, r *routing, host string) ([]net.IP, error) {
	ctx, cancel := context.WithTimeout(ctx, r.ConnectTimeout)
	defer cancel()
	if r.Resolver != nil {
		return r.Resolver.LookupIP(ctx, host)
	}
	if ip := net.ParseIP(host); ip != nil {
		return []net.IP{ip}, nil
	}
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return nil, err
	}
	ips := make([]net.IP, len(addrs))
	for i, a := range addrs {
		ips[i] = a.IP
	}
	return ips, nil
}

// replyText is an SMTP reply as a person reads it: "550 5.1.1 text".
func replyText(se *smtp.SMTPError) string {
	s := strconv.Itoa(se.Code)
	if se.EnhancedCode != smtp.NoEnhancedCode && se.EnhancedCode != (smtp.EnhancedCode{}) {
		s += fmt.Sprintf(" %d.%d.%d", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2])
	}
	return s + " " + strings.ReplaceAll(se.Message, "\n", " ")
}

// conn is an open SMTP session, greeted (and in TLS when it could be),
// ready for a transaction.
type conn struct {
	c *smtp.Client
	// commandTimeout is the routing's when the session opened.
	commandTimeout time.Duration
	raw            net.Conn // under the client, held to the agent's context
	key            string   // the pool it returns to
	usedTLS        bool
	idle           time.Time // when it was put back
	uses           int
}

// Sessions are kept open between messages to one server (as Postfix's
// connection cache does): a session is reused within maxIdle of its last
// message, for at most maxUses messages, and at most MaxPerDomain are
// kept per server.
const (
	maxIdle = 5 * time.Second
	maxUses = 100
)

// sendHost delivers one message to rcpts at one address of host, over a
// kept session when there is one. An error means no recipient got a
// reply of its own (connection, greeting, TLS, MAIL).
func (a *Agent) sendHost(ctx context.Context, rt route, host, addr, from string, rcpts []string, msg []byte) (map[string]result, error) {
	key := fmt.Sprintf("%s|%s|%v|%v|%v|%d", addr, host, rt.requireTLS, rt.implicitTLS, rt.auth != nil, rt.r.gen)
	if s := a.takeIdle(key); s != nil {
		res, err, reusable := a.transact(ctx, s, host, from, rcpts, msg)
		var se *smtp.SMTPError
		if err == nil || errors.As(err, &se) {
			a.release(s, reusable && err == nil)
			return res, err
		}
		// The server closed the kept session meanwhile: a new one.
		s.c.Close()
	}
	s, err := a.open(ctx, rt, host, addr)
	if err != nil {
		return nil, err
	}
	s.key = key
	res, err, reusable := a.transact(ctx, s, host, from, rcpts, msg)
	a.release(s, reusable && err == nil)
	return res, err
}

// open connects to addr and greets host: STARTTLS when offered (or
// implicit TLS), EHLO with our name, AUTH for a smarthost. Every step is
// bounded by the commands' timeout; the connection is held to ctx.
func (a *Agent) open(ctx context.Context, rt route, host, addr string) (*conn, error) {
	octx, cancel := context.WithTimeout(ctx, rt.r.ConnectTimeout+4*rt.r.CommandTimeout)
	defer cancel()
	raw, err := a.opts.Dial(octx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s (%s): %w", host, addr, err)
	}
	held := bound.Conn(ctx, raw)
	stop := context.AfterFunc(octx, func() { _ = raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	var nc net.Conn = held
	tlsConf := a.tlsConfig(rt, host)
	if rt.implicitTLS {
		tc := tls.Client(nc, tlsConf)
		if err := tc.HandshakeContext(octx); err != nil {
			held.Close()
			return nil, fmt.Errorf("TLS with %s: %w", host, err)
		}
		nc = tc
	}
	usedTLS := rt.implicitTLS
	if !usedTLS {
		nc, usedTLS, err = a.greetStartTLS(held, host, tlsConf, rt.r.CommandTimeout)
		if err != nil {
			held.Close()
			return nil, err
		}
		if !usedTLS && rt.requireTLS {
			held.Close()
			return nil, fmt.Errorf("%s does not offer STARTTLS, and this destination requires TLS", host)
		}
	}
	// go-smtp reads a greeting first: after our own exchange there is
	// none on the wire, so it is given one.
	c := smtp.NewClient(greeted{Conn: nc, r: io.MultiReader(strings.NewReader("220 "+host+"\r\n"), nc)})
	c.CommandTimeout = rt.r.CommandTimeout
	c.SubmissionTimeout = rt.r.CommandTimeout * 2
	if err := c.Hello(a.opts.Hostname); err != nil {
		c.Close()
		return nil, fmt.Errorf("EHLO at %s: %w", host, err)
	}
	if rt.auth != nil {
		if err := c.Auth(rt.auth); err != nil {
			c.Close()
			// Our credentials are wrong, not the recipients: deferred
			// (%v, not %w: even a 535 must not bounce the mail).
			return nil, fmt.Errorf("AUTH at %s refused our login (check queue.smarthost_username and its password file): %v", host, err)
		}
	}
	return &conn{c: c, raw: raw, usedTLS: usedTLS, commandTimeout: rt.r.CommandTimeout}, nil
}

// transact sends one message: MAIL, RCPT for each recipient, DATA. Each
// command has CommandTimeout (go-smtp sets it on our connection); when
// the transaction's whole limit passes (a generous time per command, and
// the data's transfer at no less than 10 KB/s) the read or write in
// progress is cut. reusable says the session is in a clean state for the
// next message.
func (a *Agent) transact(ctx context.Context, s *conn, host, from string, rcpts []string, msg []byte) (out map[string]result, err error, reusable bool) {
	limit := s.commandTimeout*time.Duration(4+len(rcpts)) + time.Duration(len(msg)/10240)*time.Second
	tctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	stop := context.AfterFunc(tctx, func() { _ = s.raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	c := s.c
	s.uses++
	opts := &smtp.MailOptions{}
	if max, ok := c.MaxMessageSize(); ok && max > 0 {
		opts.Size = int64(len(msg))
	}
	if ok, _ := c.Extension("8BITMIME"); ok && !isASCII(msg) {
		opts.Body = smtp.Body8BitMIME
	}
	if ok, _ := c.Extension("SMTPUTF8"); ok && !isASCII([]byte(from+strings.Join(rcpts, ""))) {
		opts.UTF8 = true
	}
	if err := c.Mail(from, opts); err != nil {
		return nil, err, false
	}
	out = make(map[string]result, len(rcpts))
	var accepted []string
	for _, r := range rcpts {
		if err := c.Rcpt(r, nil); err != nil {
			var se *smtp.SMTPError
			if !errors.As(err, &se) {
				return nil, fmt.Errorf("RCPT at %s: %w", host, err), false
			}
			o := queue.Pending
			if se.Code >= 500 {
				o = queue.Failed
			}
			out[r] = result{outcome: o, host: host, reply: replyText(se), tls: s.usedTLS}
			continue
		}
		accepted = append(accepted, r)
	}
	if len(accepted) == 0 {
		_ = c.Reset()
		return out, nil, false
	}
	setAll := func(o queue.Outcome, reply string) {
		for _, r := range accepted {
			out[r] = result{outcome: o, host: host, reply: reply, tls: s.usedTLS}
		}
	}
	w, err := c.Data()
	if err == nil {
		if _, err = w.Write(msg); err == nil {
			var resp *smtp.DataResponse
			resp, err = w.CloseWithResponse()
			if err == nil {
				setAll(queue.Delivered, "250 "+resp.StatusText)
				// A session that refused a recipient is not kept: the
				// next try gets a fresh one (a server's new settings
				// reach new sessions).
				return out, nil, len(accepted) == len(rcpts)
			}
		}
	}
	var se *smtp.SMTPError
	switch {
	case errors.As(err, &se) && se.Code >= 500:
		setAll(queue.Failed, replyText(se))
	case errors.As(err, &se):
		setAll(queue.Pending, replyText(se))
	default:
		// The connection broke during DATA: the remote may or may not
		// have the message; trying again may deliver it twice, which is
		// better than never (RFC 5321 §6.1).
		setAll(queue.Pending, fmt.Sprintf("connection to %s lost during DATA: %v", host, err))
	}
	return out, nil, false
}

// takeIdle returns a kept session of key, or nil.
func (a *Agent) takeIdle(key string) *conn {
	a.mu.Lock()
	defer a.mu.Unlock()
	list := a.idle[key]
	for len(list) > 0 {
		s := list[len(list)-1]
		list = list[:len(list)-1]
		if time.Since(s.idle) < maxIdle {
			a.idle[key] = list
			return s
		}
		go s.c.Close() // too old: the server may be closing it too
	}
	delete(a.idle, key)
	return nil
}

// release keeps a session for the next message, or ends it.
func (a *Agent) release(s *conn, reusable bool) {
	if reusable && s.uses < maxUses {
		a.mu.Lock()
		if !a.closed && len(a.idle[s.key]) < a.lim().MaxPerDomain {
			s.idle = time.Now()
			a.idle[s.key] = append(a.idle[s.key], s)
			a.mu.Unlock()
			return
		}
		a.mu.Unlock()
	}
	_ = s.c.Quit() // bounded by CommandTimeout
	s.c.Close()
}

// closeIdle ends the kept sessions idle for maxIdle (all of them when
// all is set: at shutdown).
func (a *Agent) closeIdle(all bool) {
	a.mu.Lock()
	var old []*conn
	for key, list := range a.idle {
		keep := list[:0]
		for _, s := range list {
			if all || time.Since(s.idle) >= maxIdle {
				old = append(old, s)
			} else {
				keep = append(keep, s)
			}
		}
		if len(keep) == 0 {
			delete(a.idle, key)
		} else {
			a.idle[key] = keep
		}
	}
	if all {
		a.closed = true
	}
	a.mu.Unlock()
	for _, s := range old {
		_ = s.c.Quit()
		s.c.Close()
	}
}

// tlsConfig is the TLS configuration for host: verified when the route
// requires TLS, else opportunistic (RFC 7435: any certificate is better
// than plaintext).
func (a *Agent) tlsConfig(rt route, host string) *tls.Config {
	c := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if rt.tlsConfig != nil {
		c = rt.tlsConfig.Clone()
		c.ServerName = host
	}
	if !rt.requireTLS {
		c.InsecureSkipVerify = true
	}
	return c
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// greeted is a connection whose reads start with a given greeting.
type greeted struct {
	net.Conn
	r io.Reader
}

func (g greeted) Read(p []byte) (int, error) { return g.r.Read(p) }

// greetStartTLS reads the greeting, says EHLO with our hostname and,
// when the server offers STARTTLS, starts TLS (RFC 3207). go-smtp cannot
// say our name in the EHLO before STARTTLS, hence this exchange of our
// own; every read and write has CommandTimeout.
func (a *Agent) greetStartTLS(conn net.Conn, host string, tlsConf *tls.Config, commandTimeout time.Duration) (net.Conn, bool, error) {
	tc := textproto.NewConn(conn)
	step := func(what string, expect int, cmd string) (string, error) {
		_ = conn.SetDeadline(time.Now().Add(commandTimeout))
		if cmd != "" {
			if err := tc.PrintfLine("%s", cmd); err != nil {
				return "", fmt.Errorf("%s at %s: %w", what, host, err)
			}
		}
		code, msg, err := tc.ReadResponse(expect)
		if err != nil {
			var pe *textproto.Error
			if errors.As(err, &pe) {
				return "", &smtp.SMTPError{Code: code, Message: msg}
			}
			return "", fmt.Errorf("%s at %s: %w", what, host, err)
		}
		return msg, nil
	}
	if _, err := step("greeting", 220, ""); err != nil {
		return nil, false, err
	}
	ext, err := step("EHLO", 250, "EHLO "+a.opts.Hostname)
	if err != nil {
		var se *smtp.SMTPError
		if errors.As(err, &se) && (se.Code == 500 || se.Code == 502) {
			return conn, false, nil // no ESMTP: no STARTTLS; go-smtp says HELO
		}
		return nil, false, err
	}
	offered := false
	for _, line := range strings.Split(ext, "\n") {
		if strings.EqualFold(strings.TrimSpace(line), "STARTTLS") {
			offered = true
		}
	}
	if !offered {
		return conn, false, nil
	}
	if _, err := step("STARTTLS", 220, "STARTTLS"); err != nil {
		return nil, false, err
	}
	tlsConn := tls.Client(conn, tlsConf)
	_ = conn.SetDeadline(time.Now().Add(commandTimeout))
	if err := tlsConn.Handshake(); err != nil {
		return nil, false, fmt.Errorf("TLS with %s: %w", host, err)
	}
	_ = conn.SetDeadline(time.Time{})
	return tlsConn, true, nil
}
