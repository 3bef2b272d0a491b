package probe

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"mailsetup/autoconfig"
)

// smtpScript says how fakeSMTP behaves: authBeforeTLS advertises AUTH on
// the plain connection; openRelay accepts MAIL without AUTH; auth answers
// AUTH for the full address, authLocal for any other username;
// lateReject (as Postfix does) accepts MAIL without AUTH and refuses RCPT.
type smtpScript struct {
	authBeforeTLS, openRelay, lateReject bool
	auth, authLocal                      string
}

// fakeSMTP is a scripted submission server with STARTTLS on loopback.
type fakeSMTP struct {
	smtpScript
	ln  net.Listener
	cfg *tls.Config

	mu    sync.Mutex
	verbs []string
	users []string // the usernames of the AUTH commands, in order
}

func startFakeSMTP(t *testing.T, script smtpScript, cfg *tls.Config) *fakeSMTP {
	t.Helper()
	f := &fakeSMTP{smtpScript: script, cfg: cfg}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.ln = ln
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go f.serve(c)
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return f
}

func (f *fakeSMTP) serve(c net.Conn) {
	fs := f
	defer func() { c.Close() }()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	w := func(s string) { c.Write([]byte(s + "\r\n")) }
	w("220 fake ESMTP")
	secure, authed := false, false
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimSpace(line)
		verb := strings.ToUpper(strings.Fields(line + " x")[0])
		f.mu.Lock()
		f.verbs = append(f.verbs, verb)
		f.mu.Unlock()
		switch verb {
		case "EHLO":
			lines := []string{"250-fake", "250-PIPELINING"}
			if !secure {
				lines = append(lines, "250-STARTTLS")
			}
			if secure || f.authBeforeTLS {
				lines = append(lines, "250-AUTH PLAIN LOGIN")
			}
			lines = append(lines, "250 8BITMIME")
			w(strings.Join(lines, "\r\n"))
		case "STARTTLS":
			w("220 go ahead")
			tc := tls.Server(c, f.cfg)
			if tc.Handshake() != nil {
				return
			}
			c, r, secure = tc, bufio.NewReader(tc), true
		case "AUTH":
			// AUTH PLAIN <base64 of \0user\0pass>: the full address has an @.
			reply := f.authLocal
			if strings.Contains(line, "QGV4YW1wbGUudGVzd") || strings.Contains(line, "AZXhhbXBsZS50ZXN0") || strings.Contains(line, "BleGFtcGxlLnRlc3") {
				reply = f.auth
			}
			if f := strings.Fields(line); len(f) == 3 {
				if b, err := base64.StdEncoding.DecodeString(f[2]); err == nil {
					if parts := strings.Split(string(b), "\x00"); len(parts) == 3 {
						fs.mu.Lock()
						fs.users = append(fs.users, parts[1])
						fs.mu.Unlock()
					}
				}
			}
			w(reply)
			authed = strings.HasPrefix(reply, "235")
		case "MAIL":
			if authed || f.openRelay || f.lateReject {
				w("250 2.1.0 ok")
			} else {
				w("530 5.7.0 Authentication required")
			}
		case "RCPT":
			if authed || f.openRelay {
				w("250 2.1.5 ok")
			} else {
				w("554 5.7.1 Relay access denied")
			}
		case "RSET":
			w("250 2.0.0 ok")
		case "QUIT":
			w("221 bye")
			return
		default:
			w("502 5.5.2 not in this test")
		}
	}
}

// authUsers returns the usernames the server was asked to AUTH as.
func (f *fakeSMTP) authUsers() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.users)
}

func (f *fakeSMTP) got() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.verbs)
}

// TestSMTPChecks: AUTH before TLS, an open relay, the login replies and
// the bare local part each give their finding; DATA is never sent.
func TestSMTPChecks(t *testing.T) {
	cfg, roots := testCert(t, []string{"localhost"}, 365*24*time.Hour)
	for _, c := range []struct {
		name string
		f    smtpScript
		want []string
		// user is the username the customer reports ("": none).
		user string
	}{
		{"good", smtpScript{auth: "235 2.7.0 ok", authLocal: "535 5.7.8 use your full email address"}, nil, ""},
		{"auth before tls", smtpScript{authBeforeTLS: true, auth: "235 2.7.0 ok", authLocal: "535 5.7.8 no"}, []string{"smtp.auth-before-tls"}, ""},
		{"restrictions at RCPT", smtpScript{lateReject: true, auth: "235 2.7.0 ok", authLocal: "535 5.7.8 no"}, nil, ""},
		{"open relay", smtpScript{openRelay: true, auth: "235 2.7.0 ok", authLocal: "535 5.7.8 no"}, []string{"smtp.open-relay"}, ""},
		{"wrong password", smtpScript{auth: "535 5.7.8 Authentication credentials invalid", authLocal: "535 5.7.8 no"}, []string{"login.failed"}, ""},
		{"throttled", smtpScript{auth: "454 4.7.0 too many failed logins: try again in 9 minutes", authLocal: "535 5.7.8 no"}, []string{"login.throttled"}, ""},
		// Only a customer who reports the bare local part has it tried:
		// a refused login is a failed-login line on the server.
		{"local part accepted", smtpScript{auth: "235 2.7.0 ok", authLocal: "235 2.7.0 ok"}, []string{"username.not-full-address", "login.local-part-accepted"}, "john"},
		{"local part accepted, not reported", smtpScript{auth: "235 2.7.0 ok", authLocal: "235 2.7.0 ok"}, nil, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := startFakeSMTP(t, c.f, cfg)
			pol := autoconfig.Policy{Domain: "example.test", Prefer: autoconfig.IMAP,
				Submission: []autoconfig.Endpoint{{Protocol: autoconfig.SMTP, Host: "localhost", Port: f.ln.Addr().(*net.TCPAddr).Port, Security: autoconfig.STARTTLS}}}
			req := Request{Address: "john@example.test", Password: "pw"}
			if c.user != "" {
				req.Client = &ClientSettings{Outgoing: Outgoing{Username: c.user}}
			}
			rep, err := Run(context.Background(), req, Options{
				Policy: func(string) (autoconfig.Policy, bool) { return pol, true }, RootCAs: roots, StepTimeout: 5 * time.Second,
			})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ids(rep.Findings), c.want) {
				t.Errorf("findings %v, want %v\n%+v", ids(rep.Findings), c.want, rep.Steps)
			}
			verbs := f.got()
			if slices.Contains(verbs, "DATA") || !slices.Contains(verbs, "QUIT") {
				t.Errorf("verbs %v", verbs)
			}
			if slices.Contains(verbs, "RCPT") && !slices.Contains(verbs, "RSET") {
				t.Errorf("RCPT without RSET: %v", verbs)
			}
			// The only login as another form than the full address is
			// the reported one, or the bare local part once the full
			// address was refused (server.username-form or
			// login.failed), and the step says it was made.
			retry := slices.Contains(c.want, "login.failed")
			for _, u := range f.authUsers() {
				if retry && u == "john" {
					if !strings.Contains(stepEvidence(rep), `an extra login as "john" was made`) {
						t.Errorf("no step says the extra login was made: %+v", rep.Steps)
					}
					continue
				}
				if u != "john@example.test" && u != c.user {
					t.Errorf("the probe logged in as %q (AUTH users %v); the customer reports %q", u, f.authUsers(), c.user)
				}
			}
			if c.user != "" {
				if !slices.Contains(f.authUsers(), c.user) {
					t.Errorf("AUTH users %v: want the reported %q tried", f.authUsers(), c.user)
				}
				if !strings.Contains(stepEvidence(rep), "an extra login as \""+c.user+"\" was made") {
					t.Errorf("no step says the extra login was made: %+v", rep.Steps)
				}
			}
		})
	}
}

// stepEvidence is every step's evidence, one line each.
func stepEvidence(rep *Report) string {
	var lines []string
	for _, st := range rep.Steps {
		lines = append(lines, st.Evidence...)
	}
	return strings.Join(lines, "\n")
}
