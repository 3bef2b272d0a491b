package pop3d_test

import (
	"slices"
	"strings"
	"testing"

	"mailsetup/server/pop3d"
)

// TestState sends every command in every state it is not allowed in and
// expects -ERR with the connection still usable (RFC 1939 §3: "-ERR" for a
// command in the wrong state), in the style of mox's imapserver TestState.
func TestState(t *testing.T) {
	// Every command with valid arguments, so that only the state is wrong.
	all := []string{"CAPA", "STLS", "USER " + testUser, "PASS x", "AUTH PLAIN", "QUIT",
		"STAT", "LIST", "LIST 1", "UIDL", "UIDL 1", "RETR 1", "TOP 1 0", "DELE 1", "NOOP", "RSET"}
	allowed := map[string][]string{
		"authorization": {"CAPA", "STLS", "USER", "PASS", "AUTH", "QUIT"},
		"transaction":   {"CAPA", "QUIT", "STAT", "LIST", "UIDL", "RETR", "TOP", "DELE", "NOOP", "RSET"},
	}
	srvTLS, _ := testTLS(t)
	ts := startServer(t, newFakeBackend(defaultMessages()...), func(o *pop3d.Options) {
		o.TLSConfig = srvTLS
	})
	enter := map[string]func(t testing.TB) *client{
		"authorization": ts.dial,
		"transaction":   ts.login,
	}
	for _, st := range []string{"authorization", "transaction"} {
		for _, cmd := range all {
			name := strings.Fields(cmd)[0]
			if slices.Contains(allowed[st], name) {
				continue
			}
			for _, spelling := range []string{cmd, strings.ToLower(cmd)} {
				t.Run(st+"/"+spelling, func(t *testing.T) {
					c := enter[st](t)
					c.cmd(spelling, "-ERR")
					// Still connected and in the same state.
					if st == "authorization" {
						c.cmd("STAT", "-ERR")
						c.cmd("CAPA", "+OK")
						c.multi()
					} else {
						c.cmd("NOOP", "+OK")
					}
				})
			}
		}
	}

	// Allowed commands are not refused for their state.
	t.Run("authorization/allowed", func(t *testing.T) {
		c := ts.dial(t)
		c.cmd("CAPA", "+OK")
		c.multi()
		c.cmd("PASS x", "-ERR send USER first")
		c.cmd("USER "+testUser, "+OK")
		c.cmd("PASS wrong", "-ERR [AUTH]")
		c.cmd("QUIT", "+OK")
		c.expectClosed()
	})
	t.Run("transaction/allowed", func(t *testing.T) {
		c := ts.login(t)
		for _, cmd := range []string{"CAPA", "LIST", "UIDL", "RETR 1", "TOP 1 0"} {
			c.cmd(cmd, "+OK")
			c.multi()
		}
		for _, cmd := range []string{"STAT", "LIST 1", "UIDL 1", "DELE 1", "NOOP", "RSET"} {
			c.cmd(cmd, "+OK")
		}
		c.cmd("QUIT", "+OK")
		c.expectClosed()
	})
}
