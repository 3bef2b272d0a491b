package pop3d

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

// command is one entry of the dispatch table.
type command struct {
	// states the command is allowed in; elsewhere it gets -ERR.
	states state
	// run handles the command; args is everything after the keyword and
	// its space, unparsed, valid only during the call. A returned error
	// ends the connection.
	run func(c *conn, args []byte) error
}

// commands is the dispatch table, keyed by the upper-case keyword. APOP is
// not implemented (the greeting carries no timestamp, RFC 1939 §7).
var commands = map[string]command{
	"CAPA": {stateAuthorization | stateTransaction, (*conn).cmdCapa},
	"STLS": {stateAuthorization, (*conn).cmdStls},
	"USER": {stateAuthorization, (*conn).cmdUser},
	"PASS": {stateAuthorization, (*conn).cmdPass},
	"AUTH": {stateAuthorization, (*conn).cmdAuth},
	"QUIT": {stateAuthorization | stateTransaction, (*conn).cmdQuit},
	"STAT": {stateTransaction, (*conn).cmdStat},
	"LIST": {stateTransaction, (*conn).cmdList},
	"UIDL": {stateTransaction, (*conn).cmdUidl},
	"RETR": {stateTransaction, (*conn).cmdRetr},
	"TOP":  {stateTransaction, (*conn).cmdTop},
	"DELE": {stateTransaction, (*conn).cmdDele},
	"NOOP": {stateTransaction, (*conn).cmdNoop},
	"RSET": {stateTransaction, (*conn).cmdRset},
}

// argList holds up to two space-separated arguments.
type argList struct {
	v     [2][]byte
	n     int
	extra bool // more than len(v) arguments
}

func splitArgs(b []byte) argList {
	var a argList
	for {
		b = bytes.TrimLeft(b, " ")
		if len(b) == 0 {
			return a
		}
		f := b
		if i := bytes.IndexByte(b, ' '); i >= 0 {
			f, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if a.n == len(a.v) {
			a.extra = true
			return a
		}
		a.v[a.n] = f
		a.n++
	}
}

// wantArgs checks the argument count and answers a mismatch.
func (c *conn) wantArgs(b []byte, least, most int) (argList, bool) {
	a := splitArgs(b)
	switch {
	case a.extra || a.n > most:
		c.protoErr("too many arguments")
		return a, false
	case a.n < least:
		c.protoErr("missing argument")
		return a, false
	}
	return a, true
}

// parseNum parses a decimal number of at most 18 digits.
func parseNum(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, d := range b {
		if d < '0' || d > '9' {
			return 0, false
		}
		n = n*10 + int64(d-'0')
	}
	return n, true
}

// msgArg parses a message number (RFC 1939 §5: 1-based, deleted messages
// may not be referred to) and returns its index, or answers the error.
func (c *conn) msgArg(b []byte) (int, bool) {
	n, ok := parseNum(b)
	switch {
	case !ok:
		c.protoErr("invalid message number")
	case n < 1 || n > int64(c.drop.count()):
		c.protoErr("no such message")
	case c.drop.deleted.get(int(n - 1)):
		c.protoErr("message already deleted")
	default:
		return int(n - 1), true
	}
	return 0, false
}

// Commands.

// cmdCapa: RFC 2449 §5. The list depends on the state and on TLS.
func (c *conn) cmdCapa(args []byte) error {
	if _, ok := c.wantArgs(args, 0, 0); !ok {
		return nil
	}
	o := &c.s.opts
	c.writeLine("+OK capability list follows")
	c.writeLine("TOP")
	c.writeLine("UIDL")
	c.writeLine("RESP-CODES")
	c.writeLine("AUTH-RESP-CODE")
	c.writeLine("PIPELINING")
	if c.state == stateTransaction {
		c.writeLine("EXPIRE " + c.expire) // the user's own value, no USER suffix
	} else {
		c.writeLine("EXPIRE " + *c.s.expire.Load())
	}
	if c.policy.delay > 0 {
		c.writeLine("LOGIN-DELAY " + strconv.Itoa(c.policy.delay))
	}
	c.writeLine("IMPLEMENTATION " + o.Implementation)
	if c.state == stateAuthorization {
		if c.authAllowed() {
			c.writeLine("USER")
			c.writeLine("SASL PLAIN")
		}
		if c.stlsAvailable() {
			c.writeLine("STLS")
		}
	}
	c.writeLine(".")
	return nil
}

func (c *conn) authAllowed() bool   { return c.tls || c.policy.insecure }
func (c *conn) stlsAvailable() bool { return !c.tls && c.s.opts.TLSConfig != nil }

// refuseInsecure answers a login attempt without TLS.
func (c *conn) refuseInsecure() {
	c.nerr++
	if c.stlsAvailable() {
		c.writeLine(errLine(CodeAuth, "authentication requires TLS, use STLS first"))
	} else {
		c.writeLine(errLine(CodeAuth, "authentication requires TLS, connect with TLS"))
	}
}

// cmdStls: RFC 2595 §4.
func (c *conn) cmdStls(args []byte) error {
	if _, ok := c.wantArgs(args, 0, 0); !ok {
		return nil
	}
	if c.tls {
		c.protoErr("TLS already active")
		return nil
	}
	if c.s.opts.TLSConfig == nil {
		c.protoErr("STLS not available")
		return nil
	}
	if c.br.Buffered() > 0 {
		// Anything sent after STLS before the handshake would be
		// plaintext taken for TLS-protected input (command injection,
		// CVE-2011-0411).
		c.protoErr("STLS must be the last command of a pipeline")
		return nil
	}
	c.writeLine("+OK begin TLS negotiation")
	if err := c.flush(); err != nil {
		return err
	}
	tc := tls.Server(c.nc, c.s.opts.TLSConfig)
	timeout := min(handshakeTimeout, c.s.idleTimeout())
	tc.SetDeadline(time.Now().Add(timeout))
	if err := tc.HandshakeContext(c.ctx); err != nil {
		c.log.Info("pop3 tls handshake after STLS failed", "error", err)
		return &endError{EndError, fmt.Errorf("tls handshake: %w", err)}
	}
	tc.SetDeadline(time.Time{})
	c.nc = tc
	c.br.Reset(tc)
	c.cw.nc = tc
	c.tls = true
	c.user = "" // RFC 2595 §4: start over in AUTHORIZATION
	return nil
}

// cmdUser: RFC 1939 §7.
func (c *conn) cmdUser(args []byte) error {
	if !c.authAllowed() {
		c.refuseInsecure()
		return nil
	}
	a, ok := c.wantArgs(args, 1, 1)
	if !ok {
		return nil
	}
	c.user = string(a.v[0])
	c.evUser = c.user
	c.writeLine("+OK send PASS")
	return nil
}

// cmdPass: RFC 1939 §7. The password is the rest of the line, spaces
// included.
func (c *conn) cmdPass(args []byte) error {
	if !c.authAllowed() {
		c.refuseInsecure()
		return nil
	}
	if c.user == "" {
		c.protoErr("send USER first")
		return nil
	}
	user := c.user
	c.user = "" // a failed PASS starts over with USER
	if len(args) == 0 {
		c.protoErr("missing password")
		return nil
	}
	c.login(user, string(args))
	return nil
}

// cmdAuth: RFC 5034 with the PLAIN mechanism (RFC 4616). Without a
// mechanism it lists the mechanisms, as many servers do.
func (c *conn) cmdAuth(args []byte) error {
	if !c.authAllowed() {
		c.refuseInsecure()
		return nil
	}
	a, ok := c.wantArgs(args, 0, 2)
	if !ok {
		return nil
	}
	c.user = ""
	if a.n == 0 {
		c.writeLine("+OK SASL mechanisms follow")
		c.writeLine("PLAIN")
		c.writeLine(".")
		return nil
	}
	if !bytes.EqualFold(a.v[0], []byte("PLAIN")) {
		c.protoErr("unsupported SASL mechanism")
		return nil
	}
	var resp []byte
	if a.n == 2 {
		resp = a.v[1]
	} else {
		// RFC 5034 §4: an empty server challenge is "+ ".
		c.writeLine("+ ")
		if err := c.flush(); err != nil {
			return err
		}
		line, err := c.readLine()
		if err != nil {
			return err
		}
		if string(line) == "*" {
			c.writeLine("-ERR authentication cancelled")
			return nil
		}
		resp = line
	}
	var dec []byte
	if string(resp) != "=" { // "=" is an empty response, RFC 5034 §4
		var err error
		dec, err = base64.StdEncoding.AppendDecode(nil, resp)
		if err != nil {
			c.protoErr("invalid base64")
			return nil
		}
	}
	// RFC 4616 §2: [authzid] NUL authcid NUL passwd.
	parts := bytes.Split(dec, []byte{0})
	if len(parts) != 3 || len(parts[1]) == 0 || len(parts[2]) == 0 {
		c.protoErr("malformed PLAIN response")
		return nil
	}
	user := string(parts[1])
	if len(parts[0]) > 0 && string(parts[0]) != user {
		c.evUser = user
		c.authFailures++
		c.nerr++
		c.writeLine(errLine(CodeAuth, "authorization identity must be empty or equal the user name"))
		return nil
	}
	c.login(user, string(parts[2]))
	return nil
}

// login authenticates, loads the maildrop and enters TRANSACTION.
func (c *conn) login(user, pass string) {
	c.evUser = user
	info := ConnInfo{
		RemoteAddr: c.tc.raw.RemoteAddr(),
		LocalAddr:  c.tc.raw.LocalAddr(),
		TLS:        c.tls,
		ID:         c.id,
	}
	sess, err := c.s.backend.Login(c.ctx, info, user, pass)
	if err == nil && sess == nil {
		err = errors.New("Login returned neither a Session nor an error")
	}
	if err != nil {
		c.authFailures++
		c.nerr++
		c.replyBackendErr(err, "login", "internal error")
		return
	}
	c.sess = sess // closed by finish, even if Messages panics
	if f := c.s.opts.LoggedIn; f != nil {
		f(info.RemoteAddr)
	}
	msgs, err := sess.Messages()
	var d *maildrop
	if err == nil {
		d, err = newMaildrop(msgs)
		if err != nil {
			err = fmt.Errorf("invalid maildrop: %w", err)
		}
	}
	// RFC 2449 §6.7: after login EXPIRE is the user's exact value.
	expire := strings.TrimSuffix(*c.s.expire.Load(), ExpireUserSuffix)
	if se, ok := sess.(SessionExpire); ok && err == nil {
		expire = se.Expire()
		if verr := ValidExpire(expire, false); verr != nil {
			err = fmt.Errorf("invalid Session.Expire: %w", verr)
		}
	}
	if err != nil {
		c.sess = nil
		c.closeSession(sess)
		c.replyBackendErr(err, "listing maildrop", "internal error")
		return
	}
	c.drop = d
	c.expire = expire
	c.state = stateTransaction
	c.authenticated = true
	c.bw.WriteString("+OK maildrop has ")
	c.writeNum(int64(d.count()))
	c.bw.WriteString(" messages (")
	c.writeNum(d.total)
	c.writeLine(" octets)")
}

func (c *conn) closeSession(sess Session) {
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("pop3 panic in Session.Close", "panic", r, "stack", string(debug.Stack()))
		}
	}()
	if err := sess.Close(); err != nil {
		c.log.Warn("pop3 closing session failed", "error", err)
	}
}

// cmdQuit: RFC 1939 §6. In TRANSACTION it enters UPDATE and commits the
// deletions.
func (c *conn) cmdQuit(args []byte) error {
	if _, ok := c.wantArgs(args, 0, 0); !ok {
		return nil
	}
	if c.state == stateAuthorization {
		c.writeLine("+OK bye")
		return errQuit
	}
	// Deliver what is still buffered first: a connection that breaks
	// now did not complete, so nothing is committed.
	if err := c.flush(); err != nil {
		return err
	}
	deleted := c.drop.deletedList()
	err := c.sess.Commit(deleted)
	// The maildrop is released before the reply (RFC 1939 §6: the
	// server removes the messages, releases its resources, then
	// answers): a client that connects again as soon as it reads +OK
	// must not find its own mailbox IN-USE.
	c.closeSession(c.sess)
	c.sess = nil
	if err != nil {
		c.replyBackendErr(err, "commit", "some deleted messages not removed")
	} else {
		c.committed = true
		c.writeLine("+OK bye")
	}
	return errQuit
}

func (c *conn) cmdStat(args []byte) error {
	if _, ok := c.wantArgs(args, 0, 0); !ok {
		return nil
	}
	c.bw.WriteString("+OK ")
	c.writeNum(int64(c.drop.liveCount))
	c.bw.WriteString(" ")
	c.writeNum(c.drop.liveOctets)
	c.writeLine("")
	return nil
}

// cmdList: RFC 1939 §5 LIST [msg].
func (c *conn) cmdList(args []byte) error {
	return c.listing(args, false)
}

// cmdUidl: RFC 1939 §7 UIDL [msg].
func (c *conn) cmdUidl(args []byte) error {
	return c.listing(args, true)
}

func (c *conn) listing(args []byte, uidl bool) error {
	a, ok := c.wantArgs(args, 0, 1)
	if !ok {
		return nil
	}
	d := c.drop
	entry := func(i int) {
		c.writeNum(int64(i + 1))
		c.bw.WriteByte(' ')
		if uidl {
			c.bw.WriteString(d.uidl(i))
		} else {
			c.writeNum(d.size(i))
		}
		c.bw.WriteString("\r\n")
	}
	if a.n == 1 {
		i, ok := c.msgArg(a.v[0])
		if !ok {
			return nil
		}
		c.listed++
		c.bw.WriteString("+OK ")
		entry(i)
		return nil
	}
	c.listed++
	if uidl {
		c.writeLine("+OK unique-id listing follows")
	} else {
		c.bw.WriteString("+OK ")
		c.writeNum(int64(d.liveCount))
		c.bw.WriteString(" messages (")
		c.writeNum(d.liveOctets)
		c.writeLine(" octets)")
	}
	for i := range d.count() {
		if d.deleted.get(i) {
			continue
		}
		entry(i)
		if i%1024 == 1023 {
			// Stop early when the client has gone.
			if _, err := c.bw.Write(nil); err != nil {
				return err
			}
		}
	}
	c.writeLine(".")
	return nil
}

// cmdRetr: RFC 1939 §5 RETR msg.
func (c *conn) cmdRetr(args []byte) error {
	a, ok := c.wantArgs(args, 1, 1)
	if !ok {
		return nil
	}
	i, ok := c.msgArg(a.v[0])
	if !ok {
		return nil
	}
	return c.sendMessage(i, false, 0)
}

// cmdTop: RFC 1939 §7 TOP msg n.
func (c *conn) cmdTop(args []byte) error {
	a, ok := c.wantArgs(args, 2, 2)
	if !ok {
		return nil
	}
	i, ok := c.msgArg(a.v[0])
	if !ok {
		return nil
	}
	n, ok := parseNum(a.v[1])
	if !ok {
		c.protoErr("invalid number of lines")
		return nil
	}
	return c.sendMessage(i, true, n)
}

// cmdDele: RFC 1939 §5. It only marks; UPDATE removes.
func (c *conn) cmdDele(args []byte) error {
	a, ok := c.wantArgs(args, 1, 1)
	if !ok {
		return nil
	}
	i, ok := c.msgArg(a.v[0])
	if !ok {
		return nil
	}
	c.drop.markDeleted(i)
	c.bw.WriteString("+OK message ")
	c.writeNum(int64(i + 1))
	c.writeLine(" deleted")
	return nil
}

func (c *conn) cmdNoop(args []byte) error {
	if _, ok := c.wantArgs(args, 0, 0); !ok {
		return nil
	}
	c.writeLine("+OK")
	return nil
}

// cmdRset: RFC 1939 §5. Unmarks every deleted message.
func (c *conn) cmdRset(args []byte) error {
	if _, ok := c.wantArgs(args, 0, 0); !ok {
		return nil
	}
	c.drop.reset()
	c.bw.WriteString("+OK maildrop has ")
	c.writeNum(int64(c.drop.liveCount))
	c.bw.WriteString(" messages (")
	c.writeNum(c.drop.liveOctets)
	c.writeLine(" octets)")
	return nil
}
