package pop3d_test

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"mailsetup/server/pop3d"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestGreetingQuit(t *testing.T) {
	ts := startServer(t, newFakeBackend())
	c := ts.dial(t)
	c.cmd("QUIT", "+OK")
	c.expectClosed()
	ev := c.event()
	if ev.EndReason != pop3d.EndQuit || ev.Authenticated || ev.ConnID == "" {
		t.Errorf("event %+v", ev)
	}
}

func TestUnknownCommand(t *testing.T) {
	ts := startServer(t, newFakeBackend(defaultMessages()...))
	t.Run("before auth disconnects", func(t *testing.T) {
		for _, line := range []string{"GET / HTTP/1.1", "EHLO example.com", "APOP a b", "XYZZY", "LISTX"} {
			c := ts.dial(t)
			c.cmd(line, "-ERR unknown command")
			c.expectClosed()
			if ev := c.event(); ev.EndReason != pop3d.EndError {
				t.Errorf("%q: end reason %q, want error", line, ev.EndReason)
			}
		}
	})
	t.Run("after auth answers", func(t *testing.T) {
		c := ts.login(t)
		c.cmd("XYZZY", "-ERR unknown command")
		c.cmd("APOP a b", "-ERR unknown command")
		c.cmd("NOOP", "+OK")
	})
	t.Run("empty line", func(t *testing.T) {
		c := ts.dial(t)
		c.cmd("", "-ERR")
		c.cmd("CAPA", "+OK")
		c.multi()
	})
}

func TestCaseInsensitive(t *testing.T) {
	ts := startServer(t, newFakeBackend(defaultMessages()...))
	c := ts.dial(t)
	c.cmd("capa", "+OK")
	c.multi()
	c.cmd("uSeR "+testUser, "+OK")
	c.cmd("Pass "+testPass, "+OK maildrop has 3 messages")
	c.cmd("stat", "+OK 3 ")
	c.cmd("Top 1 0", "+OK")
	c.multi()
	c.cmd("quit", "+OK")
}

func TestWrongArguments(t *testing.T) {
	ts := startServer(t, newFakeBackend(defaultMessages()...), func(o *pop3d.Options) { o.MaxErrors = 100 })
	c := ts.login(t)
	for _, tc := range []struct{ line, want string }{
		{"LIST x", "-ERR invalid message number"},
		{"LIST 0", "-ERR no such message"},
		{"LIST 4", "-ERR no such message"},
		{"LIST -1", "-ERR invalid message number"},
		{"LIST +1", "-ERR invalid message number"},
		{"LIST 99999999999999999999999", "-ERR invalid message number"},
		{"LIST 1 2", "-ERR too many arguments"},
		{"UIDL 1 2", "-ERR too many arguments"},
		{"UIDL a", "-ERR invalid message number"},
		{"RETR", "-ERR missing argument"},
		{"RETR 0", "-ERR no such message"},
		{"RETR 1 2", "-ERR too many arguments"},
		{"TOP 1", "-ERR missing argument"},
		{"TOP 1 x", "-ERR invalid number of lines"},
		{"TOP 1 -1", "-ERR invalid number of lines"},
		{"TOP 9 1", "-ERR no such message"},
		{"TOP 1 2 3", "-ERR too many arguments"},
		{"DELE", "-ERR missing argument"},
		{"DELE 1x", "-ERR invalid message number"},
		{"STAT 1", "-ERR too many arguments"},
		{"NOOP x", "-ERR too many arguments"},
		{"RSET x", "-ERR too many arguments"},
		{"CAPA x", "-ERR too many arguments"},
		{"QUIT now", "-ERR too many arguments"},
	} {
		c.cmd(tc.line, tc.want)
	}
	// Extra spaces are tolerated.
	c.cmd("LIST  1 ", "+OK 1 ")
	c.cmd("NOOP", "+OK")

	a := ts.dial(t)
	for _, tc := range []struct{ line, want string }{
		{"USER", "-ERR missing argument"},
		{"USER a b", "-ERR too many arguments"},
		{"PASS secret", "-ERR send USER first"},
		{"AUTH CRAM-MD5", "-ERR unsupported SASL mechanism"},
		{"AUTH PLAIN a b", "-ERR too many arguments"},
		{"AUTH PLAIN !!!", "-ERR invalid base64"},
		{"AUTH PLAIN " + b64("no-nul-bytes"), "-ERR malformed PLAIN response"},
		{"AUTH PLAIN =", "-ERR malformed PLAIN response"},
		{"STLS", "-ERR STLS not available"},
	} {
		a.cmd(tc.line, tc.want)
	}
	a.cmd("USER "+testUser, "+OK")
	a.cmd("PASS", "-ERR missing password")
	a.cmd("PASS "+testPass, "-ERR send USER first") // a failed PASS starts over
}

func TestUserPass(t *testing.T) {
	b := newFakeBackend(defaultMessages()...)
	ts := startServer(t, b)
	c := ts.dial(t)
	c.cmd("USER "+testUser, "+OK")
	c.cmd("PASS wrong", "-ERR [AUTH] authentication failed")
	c.cmd("USER nobody@example.test", "+OK") // no user enumeration
	c.cmd("PASS "+testPass, "-ERR [AUTH]")
	c.cmd("USER "+testUser, "+OK")
	// The password is the rest of the line, spaces included.
	c.cmd("PASS "+testPass, "+OK maildrop has 3 messages (")
	c.cmd("QUIT", "+OK")
	ev := c.event()
	if !ev.Authenticated || ev.AuthFailures != 2 || ev.User != testUser || ev.Messages != 3 || ev.Bytes == 0 {
		t.Errorf("event %+v", ev)
	}
	b.mu.Lock()
	last := b.logins[len(b.logins)-1]
	b.mu.Unlock()
	if last.user != testUser || last.pass != testPass || last.info.TLS || last.info.ID != ev.ConnID ||
		last.info.RemoteAddr == nil || last.info.LocalAddr == nil {
		t.Errorf("login call %+v", last)
	}
}

func TestAuthPlain(t *testing.T) {
	ts := startServer(t, newFakeBackend(defaultMessages()...))
	cred := b64("\x00" + testUser + "\x00" + testPass)

	t.Run("initial response", func(t *testing.T) {
		c := ts.dial(t)
		c.cmd("AUTH PLAIN "+cred, "+OK maildrop has 3 messages")
		c.cmd("STAT", "+OK")
	})
	t.Run("authzid equal to user", func(t *testing.T) {
		c := ts.dial(t)
		c.cmd("auth plain "+b64(testUser+"\x00"+testUser+"\x00"+testPass), "+OK")
	})
	t.Run("continuation", func(t *testing.T) {
		c := ts.dial(t)
		c.send("AUTH PLAIN")
		if line := c.readLine(); line != "+ " {
			t.Fatalf("got %q, want the empty challenge \"+ \"", line)
		}
		c.cmd(cred, "+OK")
		c.cmd("STAT", "+OK")
	})
	t.Run("cancel", func(t *testing.T) {
		c := ts.dial(t)
		c.cmd("AUTH PLAIN", "+ ")
		c.cmd("*", "-ERR authentication cancelled")
		c.cmd("STAT", "-ERR") // still AUTHORIZATION
		c.cmd("AUTH PLAIN "+cred, "+OK")
	})
	t.Run("bad base64 in continuation", func(t *testing.T) {
		c := ts.dial(t)
		c.cmd("AUTH PLAIN", "+ ")
		c.cmd("not base64!", "-ERR invalid base64")
	})
	t.Run("wrong password", func(t *testing.T) {
		c := ts.dial(t)
		c.cmd("AUTH PLAIN "+b64("\x00"+testUser+"\x00nope"), "-ERR [AUTH]")
	})
	t.Run("other authzid", func(t *testing.T) {
		c := ts.dial(t)
		c.cmd("AUTH PLAIN "+b64("admin\x00"+testUser+"\x00"+testPass), "-ERR [AUTH]")
	})
	t.Run("list mechanisms", func(t *testing.T) {
		c := ts.dial(t)
		c.cmd("AUTH", "+OK")
		if got := c.multi(); !slices.Equal(got, []string{"PLAIN"}) {
			t.Errorf("mechanisms %q", got)
		}
	})
}

func TestInsecureAuthRefused(t *testing.T) {
	srvTLS, cliTLS := testTLS(t)
	b := newFakeBackend(defaultMessages()...)
	ts := startServer(t, b, func(o *pop3d.Options) {
		o.AllowInsecureAuth = false
		o.TLSConfig = srvTLS
	})
	c := ts.dial(t)
	c.cmd("CAPA", "+OK")
	capa := c.multi()
	if !slices.Contains(capa, "STLS") || slices.Contains(capa, "USER") || slices.Contains(capa, "SASL PLAIN") {
		t.Errorf("CAPA before TLS: %q", capa)
	}
	c.cmd("USER "+testUser, "-ERR [AUTH] authentication requires TLS, use STLS")
	c.cmd("PASS "+testPass, "-ERR [AUTH]")
	c.cmd("AUTH PLAIN "+b64("\x00"+testUser+"\x00"+testPass), "-ERR [AUTH]")
	c.cmd("AUTH", "-ERR [AUTH]")

	c.startTLS(cliTLS)
	c.cmd("CAPA", "+OK")
	capa = c.multi()
	if slices.Contains(capa, "STLS") || !slices.Contains(capa, "USER") || !slices.Contains(capa, "SASL PLAIN") {
		t.Errorf("CAPA after TLS: %q", capa)
	}
	c.cmd("STLS", "-ERR TLS already active")
	c.cmd("USER "+testUser, "+OK")
	c.cmd("PASS "+testPass, "+OK")
	c.cmd("QUIT", "+OK")
	ev := c.event()
	if !ev.TLS || !ev.Authenticated {
		t.Errorf("event %+v", ev)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.logins) != 1 || !b.logins[0].info.TLS {
		t.Errorf("logins %+v: want one, over TLS", b.logins)
	}
}

func TestNoTLSAtAll(t *testing.T) {
	// No TLSConfig and no insecure auth: login is impossible, and the
	// reply says what to do instead.
	ts := startServer(t, newFakeBackend(), func(o *pop3d.Options) { o.AllowInsecureAuth = false })
	c := ts.dial(t)
	c.cmd("CAPA", "+OK")
	for _, l := range c.multi() {
		if l == "USER" || l == "STLS" || strings.HasPrefix(l, "SASL") {
			t.Errorf("CAPA advertises %q", l)
		}
	}
	c.cmd("USER "+testUser, "-ERR [AUTH] authentication requires TLS, connect with TLS")
}

func TestSTLSWithPipelinedData(t *testing.T) {
	srvTLS, _ := testTLS(t)
	ts := startServer(t, newFakeBackend(), func(o *pop3d.Options) { o.TLSConfig = srvTLS })
	c := ts.dial(t)
	// Plaintext after STLS would be injected into the TLS session.
	c.send("STLS\r\nCAPA")
	c.expect("-ERR STLS must be the last command")
	c.expect("+OK")
	c.multi()
}

func TestImplicitTLS(t *testing.T) {
	srvTLS, cliTLS := testTLS(t)
	ts := startServer(t, newFakeBackend(defaultMessages()...), func(o *pop3d.Options) {
		o.AllowInsecureAuth = false
		o.ImplicitTLS = true
		o.TLSConfig = srvTLS
	})
	c := ts.dialRaw(t)
	c.tlsClient(cliTLS)
	c.expect("+OK")
	c.cmd("CAPA", "+OK")
	capa := c.multi()
	if slices.Contains(capa, "STLS") || !slices.Contains(capa, "USER") {
		t.Errorf("CAPA on implicit TLS: %q", capa)
	}
	c.cmd("USER "+testUser, "+OK")
	c.cmd("PASS "+testPass, "+OK")
	c.cmd("QUIT", "+OK")
	if ev := c.event(); !ev.TLS {
		t.Errorf("event %+v, want TLS", ev)
	}

	// A client that fails the handshake ends the session as an error.
	raw := ts.dialRaw(t)
	raw.send("CAPA")
	raw.expectClosed()
	if ev := raw.event(); ev.EndReason != pop3d.EndError {
		t.Errorf("failed handshake: end reason %q", ev.EndReason)
	}
}

func TestBackendErrorCodes(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"auth with fix", &pop3d.Error{Code: pop3d.CodeAuth, Text: "use your full email address (name@example.test) as the username"},
			"-ERR [AUTH] use your full email address (name@example.test) as the username"},
		{"in use", &pop3d.Error{Code: pop3d.CodeInUse, Text: "maildrop locked by another session"},
			"-ERR [IN-USE] maildrop locked by another session"},
		{"sys temp", &pop3d.Error{Code: pop3d.CodeSysTemp, Text: "too many failed logins, try again in 5 minutes", Err: errors.New("throttled 10.0.0.1")},
			"-ERR [SYS/TEMP] too many failed logins, try again in 5 minutes"},
		{"sys perm", &pop3d.Error{Code: pop3d.CodeSysPerm, Text: "account disabled"}, "-ERR [SYS/PERM] account disabled"},
		{"login delay", &pop3d.Error{Code: pop3d.CodeLoginDelay}, "-ERR [LOGIN-DELAY] logged in too recently"},
		{"no code", &pop3d.Error{Text: "no"}, "-ERR no"},
		{"wrapped", errorsJoin(&pop3d.Error{Code: pop3d.CodeInUse, Text: "busy"}), "-ERR [IN-USE] busy"},
		{"control characters", &pop3d.Error{Code: "AU TH", Text: "a\r\nb"}, "-ERR [AU_TH] a  b"},
		{"internal", errors.New("database password is hunter2"), "-ERR [SYS/TEMP] internal error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newFakeBackend()
			b.loginErr = tc.err
			ts := startServer(t, b)
			c := ts.dial(t)
			c.cmd("USER "+testUser, "+OK")
			if got := c.cmd("PASS "+testPass, "-ERR"); got != tc.want && !strings.HasPrefix(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			c.cmd("AUTH PLAIN "+b64("\x00"+testUser+"\x00"+testPass), "-ERR")
		})
	}

	t.Run("messages error", func(t *testing.T) {
		b := newFakeBackend(defaultMessages()...)
		b.messagesErr = &pop3d.Error{Code: pop3d.CodeSysTemp, Text: "maildrop index is being rebuilt"}
		ts := startServer(t, b)
		c := ts.dial(t)
		c.cmd("USER "+testUser, "+OK")
		c.cmd("PASS "+testPass, "-ERR [SYS/TEMP] maildrop index is being rebuilt")
		s := b.lastSession(t)
		if _, _, closes := s.snapshot(); closes != 1 {
			t.Errorf("Close called %d times, want 1", closes)
		}
		c.cmd("STAT", "-ERR") // still AUTHORIZATION
	})
	t.Run("invalid UIDL", func(t *testing.T) {
		b := newFakeBackend(fakeMsg{body: "x\r\n", uidl: "has space"})
		ts := startServer(t, b)
		c := ts.dial(t)
		c.cmd("USER "+testUser, "+OK")
		c.cmd("PASS "+testPass, "-ERR [SYS/TEMP] internal error")
	})
	t.Run("open error", func(t *testing.T) {
		b := newFakeBackend(defaultMessages()...)
		ts := startServer(t, b)
		c := ts.login(t)
		b.set(func(b *fakeBackend) { b.openErr = errors.New("disk on fire") })
		c.cmd("RETR 1", "-ERR [SYS/TEMP] message not available")
		b.set(func(b *fakeBackend) { b.openErr = &pop3d.Error{Code: pop3d.CodeSysPerm, Text: "message lost"} })
		c.cmd("TOP 1 0", "-ERR [SYS/PERM] message lost")
		c.cmd("NOOP", "+OK")
	})
}

func errorsJoin(err error) error { return errors.Join(errors.New("context"), err) }

func TestDeleRsetCommit(t *testing.T) {
	b := newFakeBackend(defaultMessages()...)
	ts := startServer(t, b)
	c := ts.login(t)
	stat := c.cmd("STAT", "+OK 3 ")
	c.cmd("DELE 1", "+OK message 1 deleted")
	c.cmd("DELE 1", "-ERR message already deleted")
	c.cmd("LIST 1", "-ERR message already deleted")
	c.cmd("UIDL 1", "-ERR message already deleted")
	c.cmd("RETR 1", "-ERR message already deleted")
	c.cmd("TOP 1 0", "-ERR message already deleted")
	c.cmd("STAT", "+OK 2 ")
	c.cmd("LIST", "+OK 2 messages")
	if got := c.multi(); len(got) != 2 || !strings.HasPrefix(got[0], "2 ") || !strings.HasPrefix(got[1], "3 ") {
		t.Errorf("LIST after DELE 1: %q", got)
	}
	c.cmd("UIDL", "+OK")
	if got := c.multi(); !slices.Equal(got, []string{"2 uid-0002", "3 uid-0003"}) {
		t.Errorf("UIDL after DELE 1: %q", got)
	}
	c.cmd("RSET", "+OK maildrop has 3 messages")
	if got := c.cmd("STAT", "+OK 3 "); got != stat {
		t.Errorf("STAT after RSET %q, want %q", got, stat)
	}
	c.cmd("DELE 3", "+OK")
	c.cmd("DELE 2", "+OK")
	s := b.lastSession(t)
	if _, commits, closes := s.snapshot(); len(commits) != 0 || closes != 0 {
		t.Fatalf("before QUIT: commits %v, closes %d", commits, closes)
	}
	c.cmd("QUIT", "+OK")
	c.expectClosed()
	ev := c.event()
	_, commits, closes := s.snapshot()
	if len(commits) != 1 || !slices.Equal(commits[0], []int{1, 2}) || closes != 1 {
		t.Errorf("after QUIT: commits %v, closes %d; want [[1 2]], 1", commits, closes)
	}
	if !ev.Committed || ev.Deleted != 2 || ev.EndReason != pop3d.EndQuit {
		t.Errorf("event %+v", ev)
	}
}

func TestQuitWithoutDeleCommitsNothing(t *testing.T) {
	b := newFakeBackend(defaultMessages()...)
	ts := startServer(t, b)
	c := ts.login(t)
	c.cmd("DELE 2", "+OK")
	c.cmd("RSET", "+OK")
	c.cmd("QUIT", "+OK")
	c.event()
	if _, commits, _ := b.lastSession(t).snapshot(); len(commits) != 1 || len(commits[0]) != 0 {
		t.Errorf("commits %v, want one empty Commit", commits)
	}
}

// The maildrop is released before QUIT's +OK reaches the client: a
// client that logs in again as soon as it reads it (fetchmail polling
// one account twice, a load generator) finds its mailbox free.
func TestQuitReleasesBeforeReply(t *testing.T) {
	for _, commitErr := range []error{nil, errors.New("disk full")} {
		b := newFakeBackend(defaultMessages()...)
		b.commitErr = commitErr
		b.closeDelay = 200 * time.Millisecond // a release that takes a while
		ts := startServer(t, b)
		c := ts.login(t)
		c.cmd("DELE 1", "+OK")
		want := "+OK"
		if commitErr != nil {
			want = "-ERR"
		}
		c.cmd("QUIT", want)
		if _, _, closes := b.lastSession(t).snapshot(); closes != 1 {
			t.Errorf("commit error %v: Close called %d times when QUIT's reply arrived, want 1", commitErr, closes)
		}
		c.event()
		if _, _, closes := b.lastSession(t).snapshot(); closes != 1 {
			t.Errorf("commit error %v: Close called %d times in all, want exactly 1", commitErr, closes)
		}
	}
}

func TestDropAfterDeleNeverCommits(t *testing.T) {
	b := newFakeBackend(defaultMessages()...)
	ts := startServer(t, b)
	c := ts.login(t)
	c.cmd("DELE 1", "+OK")
	c.cmd("DELE 2", "+OK")
	c.nc.Close() // no QUIT
	ev := c.event()
	s := b.lastSession(t)
	select {
	case <-s.closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close not called")
	}
	if _, commits, closes := s.snapshot(); len(commits) != 0 || closes != 1 {
		t.Errorf("commits %v, closes %d; want none, 1", commits, closes)
	}
	if ev.EndReason != pop3d.EndDrop || ev.Committed || ev.Deleted != 2 {
		t.Errorf("event %+v", ev)
	}
}

func TestCommitError(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{errors.New("fsync failed"), "-ERR [SYS/TEMP] some deleted messages not removed"},
		{&pop3d.Error{Code: pop3d.CodeSysTemp, Text: "storage busy, deletions not done"}, "-ERR [SYS/TEMP] storage busy, deletions not done"},
	} {
		b := newFakeBackend(defaultMessages()...)
		b.commitErr = tc.err
		ts := startServer(t, b)
		c := ts.login(t)
		c.cmd("DELE 1", "+OK")
		if got := c.cmd("QUIT", "-ERR"); got != tc.want {
			t.Errorf("QUIT: %q, want %q", got, tc.want)
		}
		c.expectClosed()
		ev := c.event()
		if _, commits, closes := b.lastSession(t).snapshot(); len(commits) != 1 || closes != 1 {
			t.Errorf("commits %v closes %d", commits, closes)
		}
		if ev.Committed || ev.EndReason != pop3d.EndQuit {
			t.Errorf("event %+v", ev)
		}
	}
}

func TestRetrEncoding(t *testing.T) {
	for _, tc := range []struct{ name, body, wire string }{
		{"crlf", "a\r\nb\r\n", "a\r\nb\r\n.\r\n"},
		{"bare lf", "a\nb\n", "a\r\nb\r\n.\r\n"},
		{"mixed", "a\r\nb\nc\r\n", "a\r\nb\r\nc\r\n.\r\n"},
		{"no final newline", "a\r\nb", "a\r\nb\r\n.\r\n"},
		{"final cr", "a\r\nb\r", "a\r\nb\r\n.\r\n"},
		{"bare cr kept", "a\rb\n", "a\rb\r\n.\r\n"},
		{"dot stuffing", ".hidden\r\n.\r\n..x\r\nno.dot\r\n", "..hidden\r\n..\r\n...x\r\nno.dot\r\n.\r\n"},
		{"dot only, no newline", ".", "..\r\n.\r\n"},
		{"dot last line", "x\n.", "x\r\n..\r\n.\r\n"},
		{"empty", "", ".\r\n"},
		{"empty lines", "\n\n", "\r\n\r\n.\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newFakeBackend(fakeMsg{body: tc.body})
			ts := startServer(t, b)
			c := ts.login(t)
			c.cmd("RETR 1", "+OK")
			if got := c.multiRaw(); got != tc.wire {
				t.Errorf("RETR body %q, want %q", got, tc.wire)
			}
			c.cmd("NOOP", "+OK")
			if r, _, _ := b.lastSession(t).snapshot(); !slices.Equal(r, []int{0}) {
				t.Errorf("Retrieved calls %v, want [0]", r)
			}
		})
	}
}

func TestRetrSizeLine(t *testing.T) {
	ts := startServer(t, newFakeBackend(fakeMsg{body: "a\nb\n"}))
	c := ts.login(t)
	if got := c.cmd("RETR 1", "+OK"); got != "+OK 6 octets" {
		t.Errorf("got %q", got)
	}
	c.multi()
	if got := c.cmd("LIST 1", "+OK"); got != "+OK 1 6" {
		t.Errorf("got %q", got)
	}
	if got := c.cmd("UIDL 1", "+OK"); got != "+OK 1 uid-0001" {
		t.Errorf("got %q", got)
	}
}

func TestTop(t *testing.T) {
	const msg = "A: 1\r\nB: 2\r\n\r\nl1\r\n.l2\r\nl3\r\n"
	for _, tc := range []struct {
		name, body, cmd, wire string
		whole                 bool
	}{
		{"zero lines", msg, "TOP 1 0", "A: 1\r\nB: 2\r\n\r\n.\r\n", false},
		{"two lines", msg, "TOP 1 2", "A: 1\r\nB: 2\r\n\r\nl1\r\n..l2\r\n.\r\n", false},
		{"exactly all lines", msg, "TOP 1 3", "A: 1\r\nB: 2\r\n\r\nl1\r\n..l2\r\nl3\r\n.\r\n", true},
		{"more lines than the body", msg, "TOP 1 100", "A: 1\r\nB: 2\r\n\r\nl1\r\n..l2\r\nl3\r\n.\r\n", true},
		{"huge count", msg, "TOP 1 999999999999999999", "A: 1\r\nB: 2\r\n\r\nl1\r\n..l2\r\nl3\r\n.\r\n", true},
		{"bare lf", "A: 1\nB: 2\n\nl1\nl2", "TOP 1 1", "A: 1\r\nB: 2\r\n\r\nl1\r\n.\r\n", false},
		{"bare lf, whole", "A: 1\nB: 2\n\nl1\nl2", "TOP 1 2", "A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\n.\r\n", true},
		{"headers only", "A: 1\nB: 2", "TOP 1 0", "A: 1\r\nB: 2\r\n.\r\n", true},
		{"headers and blank line only", "A: 1\r\n\r\n", "TOP 1 0", "A: 1\r\n\r\n.\r\n", true},
		{"empty message", "", "TOP 1 5", ".\r\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newFakeBackend(fakeMsg{body: tc.body})
			ts := startServer(t, b)
			c := ts.login(t)
			c.cmd(tc.cmd, "+OK")
			if got := c.multiRaw(); got != tc.wire {
				t.Errorf("%s: %q, want %q", tc.cmd, got, tc.wire)
			}
			c.cmd("NOOP", "+OK")
			r, _, _ := b.lastSession(t).snapshot()
			if whole := len(r) == 1; whole != tc.whole {
				t.Errorf("Retrieved calls %v, want whole=%v", r, tc.whole)
			}
		})
	}
}

// genReader yields size bytes of lines that all start with "." and end
// in a bare LF, without allocating.
type genReader struct {
	remaining int64
	pos       int
}

const genLine = ".line of a large generated message, stuffed and converted to CRLF on the way out\n"

func (g *genReader) Read(p []byte) (int, error) {
	if g.remaining <= 0 {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && g.remaining > 0 {
		k := copy(p[n:], genLine[g.pos:])
		if int64(k) > g.remaining {
			k = int(g.remaining)
		}
		n += k
		g.remaining -= int64(k)
		g.pos = (g.pos + k) % len(genLine)
	}
	return n, nil
}

// TestRetrLargeMessageMemory streams a 20 MB message and checks that the
// heap does not grow with it.
func TestRetrLargeMessageMemory(t *testing.T) {
	const size = 20 << 20
	b := newFakeBackend(fakeMsg{open: func() io.Reader { return &genReader{remaining: size} }, size: size})
	ts := startServer(t, b)
	c := ts.login(t)
	c.cmd("NOOP", "+OK")

	var before, after runtimeMem
	before.read()
	c.cmd("RETR 1", "+OK 20971520 octets")
	var lines, bytes int64
	c.nc.SetReadDeadline(time.Now().Add(60 * time.Second))
	for {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			t.Fatalf("after %d lines: %v", lines, err)
		}
		if string(line) == ".\r\n" {
			break
		}
		lines++
		bytes += int64(len(line))
		if line[0] != '.' || line[1] != '.' || line[len(line)-2] != '\r' {
			t.Fatalf("line %d not stuffed or not CRLF: %q", lines, line)
		}
	}
	after.read()
	full := (size + int64(len(genLine)) - 1) / int64(len(genLine))
	if lines != full {
		t.Errorf("got %d lines, want %d", lines, full)
	}
	want := int64(size) + 2*full // one "." and one CR more per line
	if size%len(genLine) != 0 {
		want++ // and a LF after the unfinished last line
	}
	if bytes != want {
		t.Errorf("got %d bytes, want %d", bytes, want)
	}
	grew := after.totalAlloc - before.totalAlloc
	t.Logf("streamed %d MB; allocated %d KB during RETR, heap %d -> %d KB", size>>20, grew>>10, before.heapAlloc>>10, after.heapAlloc>>10)
	if grew > 4<<20 {
		t.Errorf("RETR of a %d MB message allocated %d KB: it must stream, not buffer", size>>20, grew>>10)
	}
	c.cmd("NOOP", "+OK")
	if r, _, _ := b.lastSession(t).snapshot(); !slices.Equal(r, []int{0}) {
		t.Errorf("Retrieved %v", r)
	}
}

// failingReader returns some lines, then an error.
type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n == 0 {
		return 0, errors.New("read error in the middle")
	}
	f.n--
	return copy(p, "a line\r\n"), nil
}

func TestRetrReadErrorMidStream(t *testing.T) {
	b := newFakeBackend(
		fakeMsg{open: func() io.Reader { return &failingReader{n: 3} }, size: 100},
		fakeMsg{open: func() io.Reader { return &failingReader{n: 0} }, size: 100},
	)
	ts := startServer(t, b)
	c := ts.login(t)
	// An error before the first byte is a plain -ERR.
	c.cmd("RETR 2", "-ERR [SYS/TEMP] message not available")
	c.cmd("RETR 1", "+OK")
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	rest, _ := io.ReadAll(c.r)
	if string(rest) != "a line\r\na line\r\na line\r\n" {
		t.Errorf("got %q: want the lines and no terminator", rest)
	}
	ev := c.event()
	if ev.EndReason != pop3d.EndError || ev.Retrieved != 0 {
		t.Errorf("event %+v", ev)
	}
	if r, commits, closes := b.lastSession(t).snapshot(); len(r) != 0 || len(commits) != 0 || closes != 1 {
		t.Errorf("retrieved %v commits %v closes %d", r, commits, closes)
	}
}

func TestPipelining(t *testing.T) {
	b := newFakeBackend(defaultMessages()...)
	ts := startServer(t, b)
	c := ts.dial(t)
	c.send(strings.Join([]string{
		"CAPA", "USER " + testUser, "PASS " + testPass, "STAT", "LIST", "UIDL 2", "RETR 2",
		"TOP 1 0", "DELE 3", "NOOP", "LIST 3", "QUIT",
	}, "\r\n"))
	c.expect("+OK")
	if capa := c.multi(); !slices.Contains(capa, "PIPELINING") {
		t.Errorf("CAPA %q lacks PIPELINING", capa)
	}
	c.expect("+OK send PASS")
	c.expect("+OK maildrop has 3 messages")
	c.expect("+OK 3 ")
	c.expect("+OK 3 messages")
	if got := c.multi(); len(got) != 3 {
		t.Errorf("LIST %q", got)
	}
	if got := c.expect("+OK"); got != "+OK 2 uid-0002" {
		t.Errorf("UIDL 2: %q", got)
	}
	c.expect("+OK")
	if got := c.multi(); !slices.Equal(got, []string{"Subject: two", "", "second body", "line two"}) {
		t.Errorf("RETR 2: %q", got)
	}
	c.expect("+OK")
	if got := c.multi(); !slices.Equal(got, []string{"Subject: one", ""}) {
		t.Errorf("TOP 1 0: %q", got)
	}
	c.expect("+OK message 3 deleted")
	c.expect("+OK")
	c.expect("-ERR message already deleted")
	c.expect("+OK bye")
	c.expectClosed()
	ev := c.event()
	if !slices.Equal(ev.RetrievedIDs, []int{1}) || ev.Retrieved != 1 || ev.Listed != 2 || !ev.Committed || ev.Deleted != 1 {
		t.Errorf("event %+v", ev)
	}
	if r, commits, _ := b.lastSession(t).snapshot(); !slices.Equal(r, []int{1}) || len(commits) != 1 || !slices.Equal(commits[0], []int{2}) {
		t.Errorf("retrieved %v commits %v", r, commits)
	}
}

// TestPipelinedRetrs sends many RETRs in one write: every message is
// answered and Retrieved is told of each.
func TestPipelinedRetrs(t *testing.T) {
	const n = 150
	b := newFakeBackend(defaultMessages()...)
	ts := startServer(t, b)
	c := ts.login(t)
	c.send(strings.TrimSuffix(strings.Repeat("RETR 3\r\n", n), "\r\n"))
	for range n {
		c.expect("+OK")
		if got := c.multi(); !slices.Equal(got, []string{"Subject: three", "", "third"}) {
			t.Fatalf("RETR 3: %q", got)
		}
	}
	c.cmd("QUIT", "+OK")
	ev := c.event()
	if r, _, _ := b.lastSession(t).snapshot(); len(r) != n {
		t.Errorf("Retrieved told %d times, want %d", len(r), n)
	}
	if !slices.Equal(ev.RetrievedIDs, []int{2}) || ev.Retrieved != 1 {
		t.Errorf("event %+v", ev)
	}
}

func TestLineTooLong(t *testing.T) {
	ts := startServer(t, newFakeBackend(defaultMessages()...))
	t.Run("limit fits", func(t *testing.T) {
		c := ts.dial(t)
		// 512 octets including CRLF is the default limit.
		c.cmd("USER "+strings.Repeat("u", 512-len("USER ")-2), "+OK")
	})
	for _, name := range []string{"before auth", "after auth"} {
		t.Run(name, func(t *testing.T) {
			var c *client
			if name == "before auth" {
				c = ts.dial(t)
			} else {
				c = ts.login(t)
			}
			c.cmd("NOOP "+strings.Repeat("x", 600), "-ERR line too long")
			c.expectClosed()
			if ev := c.event(); ev.EndReason != pop3d.EndError {
				t.Errorf("end reason %q", ev.EndReason)
			}
		})
	}
	t.Run("in AUTH continuation", func(t *testing.T) {
		c := ts.dial(t)
		c.cmd("AUTH PLAIN", "+ ")
		c.cmd(strings.Repeat("A", 1000), "-ERR line too long")
		c.expectClosed()
	})
}

func TestMaxLineLengthOption(t *testing.T) {
	ts := startServer(t, newFakeBackend(), func(o *pop3d.Options) { o.MaxLineLength = 100 })
	c := ts.dial(t)
	c.cmd("USER "+strings.Repeat("u", 100-len("USER ")-2), "+OK")
	c.cmd("USER "+strings.Repeat("u", 100), "-ERR line too long")
	c.expectClosed()
}

func TestMaxErrors(t *testing.T) {
	ts := startServer(t, newFakeBackend(defaultMessages()...), func(o *pop3d.Options) { o.MaxErrors = 3 })
	c := ts.login(t)
	c.cmd("LIST 9", "-ERR")
	c.cmd("XYZ", "-ERR")
	c.cmd("NOOP", "+OK")
	c.cmd("USER x", "-ERR")
	c.cmd("NOOP", "-ERR too many errors")
	c.expectClosed()
	if ev := c.event(); ev.EndReason != pop3d.EndError {
		t.Errorf("end reason %q", ev.EndReason)
	}
}

func TestIdleTimeout(t *testing.T) {
	b := newFakeBackend(defaultMessages()...)
	ts := startServer(t, b, func(o *pop3d.Options) { o.IdleTimeout = 200 * time.Millisecond })
	c := ts.login(t)
	c.cmd("DELE 1", "+OK")
	start := time.Now()
	// RFC 1939 §3: closed without a response, without UPDATE.
	c.expectClosed()
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("closed after %v, before the idle timeout", d)
	}
	ev := c.event()
	if ev.EndReason != pop3d.EndTimeout {
		t.Errorf("end reason %q", ev.EndReason)
	}
	if _, commits, closes := b.lastSession(t).snapshot(); len(commits) != 0 || closes != 1 {
		t.Errorf("commits %v closes %d", commits, closes)
	}

	// Also before login.
	c = ts.dial(t)
	c.expectClosed()
	if ev := c.event(); ev.EndReason != pop3d.EndTimeout {
		t.Errorf("end reason %q", ev.EndReason)
	}
}

func TestMaxPerIP(t *testing.T) {
	ts := startServer(t, newFakeBackend(), func(o *pop3d.Options) { o.MaxPerIP = 2 })
	a := ts.dial(t)
	ts.dial(t)
	over := ts.dialRaw(t)
	over.expect("-ERR [SYS/TEMP] too many connections")
	over.expectClosed()
	a.cmd("QUIT", "+OK")
	a.event() // a's session has ended and released its slot
	ts.dial(t).cmd("NOOP", "-ERR")
}

func TestMaxSessions(t *testing.T) {
	ts := startServer(t, newFakeBackend(), func(o *pop3d.Options) {
		o.MaxSessions = 3
		o.MaxPerIP = -1
	})
	var cs []*client
	for range 3 {
		cs = append(cs, ts.dial(t))
	}
	over := ts.dialRaw(t)
	over.expect("-ERR [SYS/TEMP] too many connections")
	over.expectClosed()
	cs[0].cmd("QUIT", "+OK")
	cs[0].event()
	ts.dial(t)
}

// blockingReader returns its first part, then waits for release before
// returning the rest.
type blockingReader struct {
	first, rest string
	release     chan struct{}
	stage       int
}

func (r *blockingReader) Read(p []byte) (int, error) {
	switch r.stage {
	case 0:
		r.stage++
		return copy(p, r.first), nil
	case 1:
		<-r.release
		r.stage++
		return copy(p, r.rest), nil
	}
	return 0, io.EOF
}

func TestShutdown(t *testing.T) {
	release := make(chan struct{})
	b := newFakeBackend(
		fakeMsg{body: "Subject: small\r\n\r\nhi\r\n"},
		fakeMsg{open: func() io.Reader {
			return &blockingReader{first: "Subject: slow\r\n\r\n", rest: "body\r\n", release: release}
		}, size: 23},
	)
	opened := make(chan int, 10)
	b.opened = opened
	ts := startServer(t, b)

	idle := ts.login(t) // logged in, DELE marked, waiting for a command
	idle.cmd("DELE 1", "+OK")
	unauth := ts.dial(t)
	busy := ts.login(t) // in the middle of a RETR
	busy.cmd("DELE 1", "+OK")
	busy.send("RETR 2")
	<-opened

	shutdownErr := make(chan error, 1)
	go func() { shutdownErr <- ts.srv.Shutdown(context.Background()) }()

	// The idle sessions are closed at once, without Commit.
	idle.expectClosed()
	unauth.expectClosed()
	reasons := map[string]int{}
	for _, c := range []*client{idle, unauth} {
		ev := c.event()
		reasons[ev.EndReason]++
		if ev.Committed {
			t.Errorf("idle session committed: %+v", ev)
		}
	}
	if reasons[pop3d.EndShutdown] != 2 {
		t.Errorf("end reasons %v", reasons)
	}
	// New connections are refused.
	if nc, err := dialTimeout(ts.addr); err == nil {
		nc.Close()
		t.Error("connection accepted after Shutdown")
	}
	select {
	case err := <-shutdownErr:
		t.Fatalf("Shutdown returned %v while a RETR was in progress", err)
	case <-time.After(100 * time.Millisecond):
	}

	// The RETR in progress completes; the next command is refused.
	close(release)
	busy.expect("+OK")
	if got := busy.multi(); !slices.Equal(got, []string{"Subject: slow", "", "body"}) {
		t.Errorf("RETR during shutdown: %q", got)
	}
	busy.cmd("QUIT", "-ERR [SYS/TEMP] server shutting down")
	busy.expectClosed()
	if ev := busy.event(); ev.EndReason != pop3d.EndShutdown || ev.Committed {
		t.Errorf("busy session event %+v", ev)
	}
	if err := <-shutdownErr; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	select {
	case err := <-ts.served:
		if !errors.Is(err, pop3d.ErrServerClosed) {
			t.Errorf("Serve returned %v", err)
		}
		ts.served <- err // for the cleanup
	case <-time.After(5 * time.Second):
		t.Error("Serve did not return")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, s := range b.sessions {
		if _, commits, closes := s.snapshot(); len(commits) != 0 || closes != 1 {
			t.Errorf("session %d: commits %v, closes %d", i, commits, closes)
		}
	}
	if err := ts.srv.Serve(mustListen(t)); !errors.Is(err, pop3d.ErrServerClosed) {
		t.Errorf("Serve after Shutdown: %v", err)
	}
}

func TestShutdownTimeout(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	b := newFakeBackend(fakeMsg{open: func() io.Reader {
		return &blockingReader{first: "Subject: stuck\r\n\r\n", rest: "x\r\n", release: release}
	}, size: 21})
	b.opened = make(chan int, 1)
	ts := startServer(t, b)
	c := ts.login(t)
	c.send("RETR 1")
	<-b.opened
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown: %v, want DeadlineExceeded", err)
	}
	// The connection was closed by force.
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(c.r); err != nil && !isReset(err) {
		t.Errorf("connection not closed: %v", err)
	}
}

func TestPanicRecovery(t *testing.T) {
	var logs logBuffer
	b := newFakeBackend(defaultMessages()...)
	ts := startServer(t, b, func(o *pop3d.Options) { o.Logger = debugLogger(&logs) })
	c := ts.login(t)
	c.cmd("DELE 1", "+OK")
	b.set(func(b *fakeBackend) { b.openPanic = true })
	c.cmd("RETR 2", "-ERR [SYS/TEMP] internal error")
	c.expectClosed()
	ev := c.event()
	if ev.EndReason != pop3d.EndError || ev.Committed {
		t.Errorf("event %+v", ev)
	}
	if _, commits, closes := b.lastSession(t).snapshot(); len(commits) != 0 || closes != 1 {
		t.Errorf("commits %v closes %d", commits, closes)
	}
	if l := logs.String(); !strings.Contains(l, "pop3 panic") || !strings.Contains(l, "open panic") || !strings.Contains(l, "goroutine") {
		t.Errorf("panic not logged with its stack:\n%s", l)
	}

	// In Login, before any Session exists.
	b.set(func(b *fakeBackend) { b.openPanic = false; b.loginPanic = true })
	c = ts.dial(t)
	c.cmd("USER "+testUser, "+OK")
	c.cmd("PASS "+testPass, "-ERR [SYS/TEMP] internal error")
	c.expectClosed()
	c.event()

	// In Messages, between Login and TRANSACTION: the Session is closed.
	b.set(func(b *fakeBackend) { b.loginPanic = false; b.messagesPanic = true })
	c = ts.dial(t)
	c.cmd("USER "+testUser, "+OK")
	c.cmd("PASS "+testPass, "-ERR [SYS/TEMP] internal error")
	c.expectClosed()
	c.event()
	if _, _, closes := b.lastSession(t).snapshot(); closes != 1 {
		t.Errorf("Session closed %d times after a panic in Messages, want 1", closes)
	}

	// The server still serves.
	b.set(func(b *fakeBackend) { b.messagesPanic = false })
	ts.login(t).cmd("QUIT", "+OK")
}

func TestCapa(t *testing.T) {
	srvTLS, _ := testTLS(t)
	base := []string{"TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"}
	for _, tc := range []struct {
		name      string
		configure func(*pop3d.Options)
		// sessionExpire, when set, is the Session's own EXPIRE value
		// (pop3d.SessionExpire).
		sessionExpire string
		login         bool
		want          []string
	}{
		{"defaults, insecure allowed", nil, "", false,
			append(base, "EXPIRE NEVER", "IMPLEMENTATION mailsetup", "USER", "SASL PLAIN")},
		{"stls offered", func(o *pop3d.Options) { o.TLSConfig = srvTLS }, "", false,
			append(base, "EXPIRE NEVER", "IMPLEMENTATION mailsetup", "USER", "SASL PLAIN", "STLS")},
		{"before TLS, no insecure auth", func(o *pop3d.Options) { o.TLSConfig = srvTLS; o.AllowInsecureAuth = false }, "", false,
			append(base, "EXPIRE NEVER", "IMPLEMENTATION mailsetup", "STLS")},
		{"transaction", func(o *pop3d.Options) { o.TLSConfig = srvTLS }, "", true,
			append(base, "EXPIRE NEVER", "IMPLEMENTATION mailsetup")},
		{"expire 7, login delay", func(o *pop3d.Options) { o.Expire = "7"; o.LoginDelay = 900; o.Implementation = "test\r\nserver" }, "", false,
			append(base, "EXPIRE 7", "LOGIN-DELAY 900", "IMPLEMENTATION test  server", "USER", "SASL PLAIN")},
		{"expire 0 after login", func(o *pop3d.Options) { o.Expire = "0"; o.LoginDelay = 60 }, "", true,
			append(base, "EXPIRE 0", "LOGIN-DELAY 60", "IMPLEMENTATION mailsetup")},
		// RFC 2449 §6.7: a value that differs per user is the smallest
		// one with USER before login, the user's own after login.
		{"per user, before login", func(o *pop3d.Options) { o.Expire = "7 USER" }, "14", false,
			append(base, "EXPIRE 7 USER", "IMPLEMENTATION mailsetup", "USER", "SASL PLAIN")},
		{"per user, after login", func(o *pop3d.Options) { o.Expire = "7 USER" }, "14", true,
			append(base, "EXPIRE 14", "IMPLEMENTATION mailsetup")},
		{"per user never, after login", func(o *pop3d.Options) { o.Expire = "7 USER" }, "NEVER", true,
			append(base, "EXPIRE NEVER", "IMPLEMENTATION mailsetup")},
		{"never user, before login", func(o *pop3d.Options) { o.Expire = "NEVER USER" }, "NEVER", false,
			append(base, "EXPIRE NEVER USER", "IMPLEMENTATION mailsetup", "USER", "SASL PLAIN")},
		{"session without Expire: the minimum", func(o *pop3d.Options) { o.Expire = "3 USER" }, "", true,
			append(base, "EXPIRE 3", "IMPLEMENTATION mailsetup")},
		{"session value without USER in Options", nil, "5", true,
			append(base, "EXPIRE 5", "IMPLEMENTATION mailsetup")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var configure []func(*pop3d.Options)
			if tc.configure != nil {
				configure = append(configure, tc.configure)
			}
			b := newFakeBackend(defaultMessages()...)
			b.expire = tc.sessionExpire
			ts := startServer(t, b, configure...)
			var c *client
			if tc.login {
				c = ts.login(t)
			} else {
				c = ts.dial(t)
			}
			c.cmd("CAPA", "+OK")
			if got := c.multi(); !slices.Equal(got, tc.want) {
				t.Errorf("CAPA\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestCapaExpireFollowsState: the per-user value appears exactly from the
// login on, also after STLS and RSET, and a session that ends returns
// nothing of it to the next connection.
func TestCapaExpireFollowsState(t *testing.T) {
	srvTLS, cliTLS := testTLS(t)
	b := newFakeBackend(defaultMessages()...)
	b.expire = "2"
	ts := startServer(t, b, func(o *pop3d.Options) {
		o.TLSConfig = srvTLS
		o.AllowInsecureAuth = false
		o.Expire = "2 USER"
	})
	expireLine := func(c *client) string {
		t.Helper()
		c.cmd("CAPA", "+OK")
		for _, l := range c.multi() {
			if strings.HasPrefix(l, "EXPIRE ") {
				return l
			}
		}
		t.Fatal("CAPA without EXPIRE")
		return ""
	}
	c := ts.dial(t)
	if got := expireLine(c); got != "EXPIRE 2 USER" {
		t.Errorf("before STLS: %q", got)
	}
	c.startTLS(cliTLS)
	if got := expireLine(c); got != "EXPIRE 2 USER" {
		t.Errorf("after STLS, before login: %q", got)
	}
	c.cmd("USER "+testUser, "+OK")
	c.cmd("PASS wrong", "-ERR [AUTH]")
	if got := expireLine(c); got != "EXPIRE 2 USER" {
		t.Errorf("after a failed login: %q", got)
	}
	c.cmd("USER "+testUser, "+OK")
	c.cmd("PASS "+testPass, "+OK")
	if got := expireLine(c); got != "EXPIRE 2" {
		t.Errorf("after login: %q", got)
	}
	c.cmd("DELE 1", "+OK")
	c.cmd("RSET", "+OK")
	if got := expireLine(c); got != "EXPIRE 2" {
		t.Errorf("after RSET: %q", got)
	}
	c.cmd("QUIT", "+OK")
	c.expectClosed()
}

// TestInvalidSessionExpire: a Session with an invalid EXPIRE value is a
// backend bug: the login fails with SYS/TEMP and the session is closed.
func TestInvalidSessionExpire(t *testing.T) {
	for _, v := range []string{"7 USER", "never", " ", "-1", "7d"} {
		t.Run(v, func(t *testing.T) {
			var logs logBuffer
			b := newFakeBackend(defaultMessages()...)
			b.expire = v
			ts := startServer(t, b, func(o *pop3d.Options) { o.Logger = debugLogger(&logs) })
			c := ts.dial(t)
			c.cmd("USER "+testUser, "+OK")
			c.cmd("PASS "+testPass, "-ERR [SYS/TEMP]")
			c.cmd("STAT", "-ERR") // still in AUTHORIZATION
			c.cmd("QUIT", "+OK")
			c.expectClosed()
			c.event()
			if _, _, closes := b.lastSession(t).snapshot(); closes != 1 {
				t.Errorf("session closed %d times, want 1", closes)
			}
			if !strings.Contains(logs.String(), "Session.Expire") {
				t.Errorf("log does not name Session.Expire:\n%s", logs.String())
			}
		})
	}
}

func TestValidExpire(t *testing.T) {
	for _, tc := range []struct {
		v       string
		perUser bool
		ok      bool
	}{
		{"NEVER", false, true},
		{"0", false, true},
		{"7", false, true},
		{"123456789", false, true},
		{"NEVER USER", true, true},
		{"7 USER", true, true},
		{"0 USER", true, true},
		{"7 USER", false, false},
		{"NEVER USER", false, false},
		{"", true, false},
		{"never", true, false},
		{"7 user", true, false},
		{"USER", true, false},
		{" USER", true, false},
		{"7  USER", true, false},
		{"7 USER USER", true, false},
		{"1234567890", true, false},
		{"-1", true, false},
		{"+7", true, false},
		{"7\r\nSTLS", true, false},
	} {
		err := pop3d.ValidExpire(tc.v, tc.perUser)
		if (err == nil) != tc.ok {
			t.Errorf("ValidExpire(%q, %v) = %v, want ok %v", tc.v, tc.perUser, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), strconv.Quote(tc.v)) {
			t.Errorf("ValidExpire(%q): error %q does not name the value", tc.v, err)
		}
	}
}

func TestNewServerPanicsOnBadExpire(t *testing.T) {
	for _, v := range []string{"never", "-1", "7d", " 7", "7 user", "USER", "7  USER", "NEVER USER USER"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Expire %q accepted", v)
				}
			}()
			pop3d.NewServer(newFakeBackend(), pop3d.Options{Expire: v})
		}()
	}
	for _, v := range []string{"NEVER USER", "0 USER", "10 USER", "10"} {
		pop3d.NewServer(newFakeBackend(), pop3d.Options{Expire: v}) // no panic
	}
}

func TestPasswordsNeverLogged(t *testing.T) {
	var logs logBuffer
	b := newFakeBackend(defaultMessages()...)
	ts := startServer(t, b, func(o *pop3d.Options) { o.Logger = debugLogger(&logs) })
	c := ts.dial(t)
	c.cmd("USER "+testUser, "+OK")
	c.cmd("PASS wrong-secret-1", "-ERR")
	c.cmd("AUTH PLAIN "+b64("\x00"+testUser+"\x00wrong-secret-2"), "-ERR")
	c.cmd("AUTH PLAIN", "+ ")
	c.cmd(b64("\x00"+testUser+"\x00"+testPass), "+OK")
	c.cmd("QUIT", "+OK")
	c.event()
	l := logs.String()
	for _, secret := range []string{"wrong-secret-1", "wrong-secret-2", testPass, b64("\x00" + testUser + "\x00" + testPass)} {
		if strings.Contains(l, secret) {
			t.Errorf("log contains %q:\n%s", secret, l)
		}
	}
	for _, want := range []string{"cmd=PASS", "cmd=AUTH", "pop3 session end", "reason=quit", "auth_failures=2"} {
		if !strings.Contains(l, want) {
			t.Errorf("log lacks %q:\n%s", want, l)
		}
	}
}

func TestEventsPanicRecovered(t *testing.T) {
	b := newFakeBackend()
	ln := mustListen(t)
	srv := pop3d.NewServer(b, pop3d.Options{Events: func(pop3d.SessionEvent) { panic("consumer bug") }})
	go srv.Serve(ln)
	defer srv.Close()
	for range 2 {
		nc, err := dialTimeout(ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c := &client{t: t, nc: nc, r: newReader(nc)}
		c.expect("+OK")
		c.cmd("QUIT", "+OK")
		c.expectClosed()
		nc.Close()
	}
}

// TestSetIdleTimeout: a reload's shorter idle timeout applies to a
// session already logged in, from its next command on.
func TestSetIdleTimeout(t *testing.T) {
	b := newFakeBackend(defaultMessages()...)
	ts := startServer(t, b, func(o *pop3d.Options) { o.IdleTimeout = time.Minute })
	c := ts.login(t)
	ts.srv.SetIdleTimeout(200 * time.Millisecond)
	c.cmd("NOOP", "+OK")
	start := time.Now()
	c.expectClosed()
	if d := time.Since(start); d < 150*time.Millisecond || d > 20*time.Second {
		t.Errorf("closed after %v, want the new 200 ms", d)
	}
	if ev := c.event(); ev.EndReason != pop3d.EndTimeout {
		t.Errorf("end reason %q", ev.EndReason)
	}
}
