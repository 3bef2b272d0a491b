// Package filter is the stream filter between an IMAP client connection
// and go-imap's server (github.com/emersion/go-imap/v2/imapserver).
//
// go-imap's server has no hook for commands it does not know, and it
// performs STARTTLS inside its own connection object. So the embedded
// IMAP server (server/imapd) puts every connection through a Conn that
// reads the client's stream command by command (tracking literals),
// answers ID itself, performs STARTTLS itself so that it keeps seeing the
// plaintext afterwards, refuses LOGIN and AUTHENTICATE before TLS,
// refuses a literal over 4096 octets before login at once, and edits the
// capability lists the library writes (adding ID, STARTTLS and
// LOGINDISABLED where they apply). It also coalesces the library's
// output (one TLS record per batch of FETCH responses).
//
// It was written against github.com/emersion/go-imap/v2 v2.0.0-beta.8
// (LibraryVersion; a test fails when go.mod names another version, so an
// upgrade comes with a review of what the library writes and expects).
//
// It imports only the standard library.
package filter

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Conn is the filter between a client connection and go-imap's server
// (see the package documentation). The library's connection goroutine is
// the only reader; writes come from that goroutine, from an IDLE
// goroutine and from Shutdown, serialised by wmu.
//
// Reading: the client's stream is cut into lines and literals. A line
// that starts a command is inspected before the library sees it: ID is
// answered here, STARTTLS performed here, LOGIN and AUTHENTICATE refused
// here before TLS. A literal announced at the end of a line is passed
// through uninspected once the library has accepted it, which it has
// when it asks for more input without having written the command's
// tagged reply (for a synchronising literal it has written "+" then).
// After a tagged reply the client does not send a synchronising literal;
// a non-synchronising one it sent anyway is dropped here, so that its
// bytes are not taken for commands.
//
// Writing: the library's output is cut into lines and literals too, to
// edit capability lists and to notice continuations and tagged replies.
type Conn struct {
	opts Options
	raw  net.Conn

	mu    sync.Mutex // guards cur and isTLS
	cur   net.Conn   // raw, or the TLS connection after STARTTLS
	isTLS bool

	sess atomic.Pointer[sessionBox]

	// Reader state, owned by the library's connection goroutine.
	in      *bufio.Reader
	buf     []byte // backing store of ready
	ready   []byte // bytes to hand to the library
	litLeft int64  // bytes of an accepted (or dropped) literal to pass
	discard bool   // drop the rest of the current command
	inCmd   bool   // the next line continues a command (after a literal)
	midLine bool   // a line too long to inspect is being passed on
	tail    []byte // the end of the line passed in pieces
	pend    pendingLiteral
	curTag  string // tag of the command being read
	idleTag string // tag of an IDLE whose DONE is the next line

	// Writer state, under wmu.
	wmu     sync.Mutex
	outLit  int64  // bytes of a literal the library is writing
	head    []byte // start of the current output line, held back
	decided bool   // the current output line is streamed as is
	otail   []byte // end of the streamed output line
	// The current output line's first two tokens, and whether it lists
	// capabilities.
	classified bool
	tok1, tok2 string
	isCap      bool
	lastTag    string // tag of the last tagged reply written since reset
	byeTag     string // after the tagged reply with this tag: BYE, close
	byeText    string
	closing    bool
	// Output coalescing: the library flushes after every FETCH response,
	// which costs a TLS record and a system call per message. Output is
	// collected here and written when the library next waits for input,
	// when it passes outBufMax, or after outDelay (unsolicited IDLE
	// updates).
	obuf     []byte
	flushArm *time.Timer
	werr     error // a failed delayed write, returned by the next Write
}

// pendingLiteral is a literal the client announced and the library has
// not yet accepted or refused.
type pendingLiteral struct {
	active bool
	size   int64
	sync   bool
}

// Timeouts of the filter's own work.
const (
	// tlsHandshakeTimeout bounds the STARTTLS handshake.
	tlsHandshakeTimeout = 30 * time.Second
	// ownWriteTimeout bounds the lines the filter writes itself.
	ownWriteTimeout = 30 * time.Second
)

// Sizes of the filter's buffers.
const (
	inBufSize   = 16 << 10 // longest line inspected; longer ones pass through
	headMax     = 256      // output line start held back to classify it
	capLineMax  = 8 << 10  // longest capability line edited
	tailMax     = 32       // enough for "{" + 20 digits + "+}\r\n"
	maxIDInput  = 16 << 10 // one ID command with its literals
	maxIDLitLen = 1024     // RFC 2971 §3.3: values at most 1024 octets
	// preAuthLiteralMax is the largest literal before login (go-imap's
	// own limit for the commands that take one then).
	preAuthLiteralMax = 4096
	outBufMax         = 64 << 10 // coalesced output written at once
)

// outDelay bounds how long coalesced output waits when the library does
// not read next (IDLE updates); outWriteTimeout bounds a delayed write.
const (
	outDelay        = time.Millisecond
	outWriteTimeout = time.Minute
)

// LibraryVersion is the go-imap version this filter was written against.
const LibraryVersion = "v2.0.0-beta.8"

// Options configure a Conn.
type Options struct {
	// TLSConfig enables STARTTLS on a plain connection; nil leaves
	// STARTTLS to the library (which then says it is not supported).
	TLSConfig *tls.Config
	// ImplicitTLS says the connection is already TLS (993).
	ImplicitTLS bool
	// AllowInsecureAuth lets LOGIN and AUTHENTICATE through without TLS.
	AllowInsecureAuth bool
	// ServerName is the name the filter answers ID with. Default
	// "mailsetup".
	ServerName string
}

// Session is what the filter asks of the IMAP session on the
// connection.
type Session interface {
	// Authenticated reports whether the session has logged in.
	Authenticated() bool
	// ClientID receives the client's ID parameters (RFC 2971), keys in
	// lower case, after the filter has answered the command.
	ClientID(params map[string]string)
}

type sessionBox struct{ s Session }

// SetSession tells the filter which session runs on the connection.
func (c *Conn) SetSession(s Session) { c.sess.Store(&sessionBox{s}) }

// New wraps a client connection.
func New(c net.Conn, opts Options) *Conn {
	if opts.ServerName == "" {
		opts.ServerName = "mailsetup"
	}
	_, isTLS := c.(*tls.Conn)
	return &Conn{
		opts:  opts,
		raw:   c,
		cur:   c,
		isTLS: isTLS || opts.ImplicitTLS,
		in:    bufio.NewReaderSize(c, inBufSize),
		buf:   make([]byte, 0, inBufSize),
	}
}

func (c *Conn) current() net.Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur
}

// TLS reports whether the connection is encrypted.
func (c *Conn) TLS() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.isTLS
}

func (c *Conn) authenticated() bool {
	b := c.sess.Load()
	return b != nil && b.s.Authenticated()
}

// AllowInsecureAuth is Options.AllowInsecureAuth of this connection.
func (c *Conn) AllowInsecureAuth() bool { return c.opts.AllowInsecureAuth }

func (c *Conn) LocalAddr() net.Addr                { return c.raw.LocalAddr() }
func (c *Conn) RemoteAddr() net.Addr               { return c.raw.RemoteAddr() }
func (c *Conn) SetDeadline(t time.Time) error      { return c.current().SetDeadline(t) }
func (c *Conn) SetReadDeadline(t time.Time) error  { return c.current().SetReadDeadline(t) }
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.current().SetWriteDeadline(t) }

// Close writes what is still coalesced (a BYE, say) and closes.
func (c *Conn) Close() error {
	c.wmu.Lock()
	if len(c.obuf) > 0 {
		c.current().SetWriteDeadline(time.Now().Add(ownWriteTimeout))
		c.flushLocked()
	} else if c.flushArm != nil {
		c.flushArm.Stop()
	}
	c.wmu.Unlock()
	return c.current().Close()
}

// flushLocked writes the coalesced output (caller holds wmu).
func (c *Conn) flushLocked() error {
	if c.flushArm != nil {
		c.flushArm.Stop()
	}
	if len(c.obuf) == 0 || c.werr != nil {
		return c.werr
	}
	_, err := c.current().Write(c.obuf)
	c.obuf = c.obuf[:0]
	if err != nil {
		c.werr = err
	}
	return err
}

// flush writes the coalesced output.
func (c *Conn) flush() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.flushLocked()
}

// delayedFlush runs from the timer: output the library wrote without
// reading afterwards (an IDLE update) goes out after outDelay.
func (c *Conn) delayedFlush() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if len(c.obuf) == 0 {
		return
	}
	w := c.current()
	w.SetWriteDeadline(time.Now().Add(outWriteTimeout))
	if c.flushLocked() != nil {
		w.Close()
	}
}

// Read implements net.Conn for the library. Its errors name the
// client's address, for the library's log lines ("failed to read
// command: ...") that name no connection; io.EOF stays as it is.
func (c *Conn) Read(p []byte) (int, error) {
	n, err := c.read(p)
	if err != nil && err != io.EOF {
		err = &remoteError{remote: c.raw.RemoteAddr(), err: err}
	}
	return n, err
}

// remoteError is a connection's error with the client's address.
type remoteError struct {
	remote net.Addr
	err    error
}

func (e *remoteError) Error() string { return "client " + e.remote.String() + ": " + e.err.Error() }
func (e *remoteError) Unwrap() error { return e.err }

func (c *Conn) read(p []byte) (int, error) {
	if len(c.ready) == 0 {
		// The library waits for input: what it wrote must go out first.
		if err := c.flush(); err != nil {
			return 0, err
		}
	}
	for len(c.ready) == 0 {
		if err := c.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, c.ready)
	c.ready = c.ready[n:]
	return n, nil
}

// fill reads the next piece of the client's stream and either queues it
// for the library or handles it here.
func (c *Conn) fill() error {
	if c.pend.active {
		c.decideLiteral()
	}
	if c.litLeft > 0 {
		b := c.buf[:min(c.litLeft, int64(cap(c.buf)))]
		n, err := c.in.Read(b)
		c.litLeft -= int64(n)
		if !c.discard {
			c.ready = b[:n]
		}
		if c.litLeft == 0 && c.discard && !c.inCmd {
			c.discard = false
		}
		return err
	}
	chunk, err := c.in.ReadSlice('\n')
	if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
		return err // a partial last line is of no use to anyone
	}
	complete := err == nil
	line := append(c.buf[:0], chunk...)
	if c.midLine || !complete {
		// Too long to be one of the commands handled here: pass it
		// on, remembering its end to find a literal announcement.
		if !c.midLine && !c.inCmd {
			c.curTag, _, _ = strings.Cut(string(line[:min(len(line), 64)]), " ")
			c.idleTag = ""
		}
		c.tail = append(c.tail, line...)
		if len(c.tail) > tailMax {
			c.tail = append(c.tail[:0], c.tail[len(c.tail)-tailMax:]...)
		}
		c.midLine = !complete
		if !c.discard {
			c.ready = line
		}
		if complete {
			c.endLine(c.tail)
			c.tail = c.tail[:0]
		}
		return nil
	}
	if c.discard {
		c.endLine(line)
		return nil
	}
	if !c.inCmd {
		handled, err := c.command(line)
		if err != nil || handled {
			return err
		}
	}
	if n, nonSync, ok := literalAtEnd(line); ok && n > preAuthLiteralMax && !c.authenticated() {
		return c.refuseLiteral(n, nonSync)
	}
	c.ready = line
	c.endLine(line)
	return nil
}

// endLine notes how the command goes on after a complete line: with a
// literal, or with a new command.
func (c *Conn) endLine(line []byte) {
	n, nonSync, ok := literalAtEnd(line)
	if !ok {
		c.inCmd = false
		c.discard = false
		return
	}
	c.inCmd = true
	if c.discard {
		if nonSync {
			c.litLeft = n
		} else {
			// The command was answered already; the client does not
			// send a synchronising literal without a continuation.
			c.inCmd, c.discard = false, false
		}
		return
	}
	c.pend = pendingLiteral{active: true, size: n, sync: !nonSync}
	c.resetOutputMarks()
}

// decideLiteral settles a pending literal now that the library wants
// more input: it has either sent a continuation, refused the command
// with a tagged reply, or (non-synchronising) is simply reading on.
func (c *Conn) decideLiteral() {
	p := c.pend
	c.pend = pendingLiteral{}
	c.wmu.Lock()
	refused := c.lastTag != "" && c.lastTag == c.curTag
	c.wmu.Unlock()
	switch {
	case !refused:
		c.litLeft = p.size
	case p.sync:
		c.inCmd = false // the client will not send it
	default:
		c.litLeft, c.discard = p.size, true // sent anyway: drop it
	}
}

func (c *Conn) resetOutputMarks() {
	c.wmu.Lock()
	c.lastTag = ""
	c.wmu.Unlock()
}

// command inspects a line that starts a command. It reports whether the
// line was handled here (and must not reach the library).
func (c *Conn) command(line []byte) (bool, error) {
	text := strings.TrimRight(string(line), "\r\n")
	tag, rest, ok := strings.Cut(text, " ")
	if !ok || tag == "" {
		// DONE, a SASL response, or garbage for the library.
		c.idleTag = ""
		return false, nil
	}
	if c.idleTag != "" {
		// The line after IDLE is DONE, unless the library refused the
		// IDLE (then it is a new command).
		c.wmu.Lock()
		refused := c.lastTag == c.idleTag
		c.wmu.Unlock()
		c.idleTag = ""
		if !refused {
			return false, nil
		}
	}
	name, args, _ := strings.Cut(rest, " ")
	c.curTag = tag
	switch strings.ToUpper(name) {
	case "ID":
		return true, c.handleID(tag, line)
	case "STARTTLS":
		return c.handleStartTLS(tag, args)
	case "LOGIN", "AUTHENTICATE":
		if c.TLS() || c.opts.AllowInsecureAuth || c.authenticated() {
			return false, nil
		}
		if err := c.writeOwn(tag + " NO [PRIVACYREQUIRED] TLS is required before login: turn on SSL/TLS or STARTTLS in your mail client\r\n"); err != nil {
			return true, err
		}
		c.discard = true
		c.endLine(line)
		return true, nil
	case "IDLE":
		c.idleTag = tag
		c.resetOutputMarks()
	}
	return false, nil
}

// handleStartTLS performs STARTTLS (RFC 3501 §6.2.1) when it applies.
func (c *Conn) handleStartTLS(tag, args string) (bool, error) {
	cfg := c.opts.TLSConfig
	switch {
	case cfg == nil:
		return false, nil // the library answers that it is not supported
	case args != "":
		return true, c.writeOwn(tag + " BAD STARTTLS takes no arguments\r\n")
	case c.TLS():
		return true, c.writeOwn(tag + " BAD the connection already uses TLS\r\n")
	case c.authenticated():
		return true, c.writeOwn(tag + " BAD STARTTLS is only allowed before login\r\n")
	case c.in.Buffered() > 0:
		// Commands sent behind STARTTLS would be taken for protected
		// ones (the STARTTLS command injection of CVE-2011-0411).
		return true, c.writeOwn(tag + " BAD nothing may follow STARTTLS before the TLS handshake\r\n")
	}
	if err := c.writeOwn(tag + " OK Begin TLS negotiation now\r\n"); err != nil {
		return true, err
	}
	tc := tls.Server(c.raw, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), tlsHandshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return true, fmt.Errorf("STARTTLS handshake: %w", err)
	}
	c.mu.Lock()
	c.cur, c.isTLS = tc, true
	c.mu.Unlock()
	c.in.Reset(tc)
	return true, nil
}

// refuseLiteral answers a literal over preAuthLiteralMax announced
// before login (no command then takes more than a username or a
// password): at once, as the client's error, rather than waiting for
// octets the client will not send. A synchronising literal on a
// command's first line is refused and the command dropped; otherwise
// the library has seen part of the command, or the client sends the
// octets anyway, so the connection ends.
func (c *Conn) refuseLiteral(n int64, nonSync bool) error {
	text := fmt.Sprintf(" [LIMIT] a literal of %d octets before login: at most %d\r\n", n, preAuthLiteralMax)
	if !c.inCmd && !nonSync {
		return c.writeOwn(c.curTag + " NO" + text)
	}
	err := c.writeOwn(c.curTag + " BAD" + text + "* BYE too much data before login\r\n")
	c.current().Close()
	return errors.Join(errLiteralTooBig, err)
}

var errLiteralTooBig = errors.New("imap: a literal over the limit before login")

// writeOwn writes a reply of the filter itself. The library is waiting
// for input then, so its output is between lines.
func (c *Conn) writeOwn(s string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.flushLocked(); err != nil {
		return err
	}
	w := c.current()
	w.SetWriteDeadline(time.Now().Add(ownWriteTimeout))
	_, err := io.WriteString(w, s)
	w.SetWriteDeadline(time.Time{})
	return err
}

// literalAtEnd finds a literal announcement ({n}, {n+}, or literal8
// ~{n}) at the end of a line.
func literalAtEnd(line []byte) (n int64, nonSync, ok bool) {
	b := bytes.TrimRight(line, "\r\n")
	if len(b) < 3 || b[len(b)-1] != '}' {
		return 0, false, false
	}
	i := bytes.LastIndexByte(b, '{')
	if i < 0 {
		return 0, false, false
	}
	digits := b[i+1 : len(b)-1]
	if len(digits) > 0 && digits[len(digits)-1] == '+' {
		nonSync = true
		digits = digits[:len(digits)-1]
	}
	if len(digits) == 0 || len(digits) > 18 {
		return 0, false, false
	}
	for _, d := range digits {
		if d < '0' || d > '9' {
			return 0, false, false
		}
		n = n*10 + int64(d-'0')
	}
	return n, nonSync, true
}

// Write implements net.Conn for the library: its output passes through
// unchanged except for capability lists.
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	var out net.Buffers
	rest := p
	for len(rest) > 0 {
		if c.outLit > 0 {
			n := min(int64(len(rest)), c.outLit)
			out = append(out, rest[:n])
			c.outLit -= n
			rest = rest[n:]
			continue
		}
		i := bytes.IndexByte(rest, '\n')
		piece := rest
		if i >= 0 {
			piece = rest[:i+1]
		}
		rest = rest[len(piece):]
		if c.decided {
			out = append(out, piece)
			c.keepTail(piece)
			if i >= 0 {
				c.endOutputLine(c.otail)
			}
			continue
		}
		if i >= 0 {
			line := append(c.head, piece...)
			c.head = line[:0]
			c.classify(line)
			if c.isCap && len(line) <= capLineMax {
				out = append(out, c.editCaps(line))
			} else {
				out = append(out, bytes.Clone(line))
			}
			c.endOutputLine(line)
			if c.byeTag != "" && c.lastTag == c.byeTag {
				out = append(out, []byte("* BYE "+c.byeText+"\r\n"))
				c.byeTag, c.closing = "", true
				rest = nil
			}
			continue
		}
		n := len(c.head) + len(piece)
		if n > headMax {
			c.classify(append(c.head, piece...))
		}
		if n <= headMax || c.isCap && n <= capLineMax {
			c.head = append(c.head, piece...)
			continue
		}
		// Long and not to be edited: stream the rest of the line.
		out = append(out, bytes.Clone(c.head), piece)
		c.keepTail(c.head)
		c.keepTail(piece)
		c.head = c.head[:0]
		c.decided = true
	}
	if c.werr != nil {
		return 0, c.werr
	}
	for _, b := range out {
		c.obuf = append(c.obuf, b...)
	}
	if c.closing || len(c.obuf) >= outBufMax {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
	} else if len(c.obuf) > 0 {
		if c.flushArm == nil {
			c.flushArm = time.AfterFunc(outDelay, c.delayedFlush)
		} else {
			c.flushArm.Reset(outDelay)
		}
	}
	if c.closing {
		c.current().Close()
	}
	return len(p), nil
}

// ByeAfterReply ends the connection with an untagged BYE right after the
// reply to the command being handled. Called from a session method.
func (c *Conn) ByeAfterReply(text string) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.byeTag, c.byeText = c.curTag, text
}

func (c *Conn) keepTail(b []byte) {
	c.otail = append(c.otail, b...)
	if len(c.otail) > tailMax {
		c.otail = append(c.otail[:0], c.otail[len(c.otail)-tailMax:]...)
	}
}

// classify notes the first two tokens of an output line and whether it
// lists capabilities: "* CAPABILITY ..." or a status reply with a
// [CAPABILITY ...] code.
func (c *Conn) classify(line []byte) {
	if c.classified {
		return
	}
	c.classified = true
	s := strings.TrimRight(string(line[:min(len(line), headMax)]), "\r\n")
	var rest string
	c.tok1, rest, _ = strings.Cut(s, " ")
	c.tok2, rest, _ = strings.Cut(rest, " ")
	switch {
	case c.tok1 == "*" && strings.EqualFold(c.tok2, "CAPABILITY"):
		c.isCap = true
	case isStatus(c.tok2):
		c.isCap = len(rest) >= len("[CAPABILITY ") && strings.EqualFold(rest[:len("[CAPABILITY ")], "[CAPABILITY ")
	}
}

func isStatus(tok string) bool {
	switch tok {
	case "OK", "NO", "BAD", "BYE", "PREAUTH":
		return true
	}
	return false
}

// endOutputLine notes what a finished output line means for the reader
// side, and whether a literal follows it.
func (c *Conn) endOutputLine(line []byte) {
	defer func() {
		c.tok1, c.tok2, c.isCap, c.classified = "", "", false, false
		c.decided = false
		c.otail = c.otail[:0]
	}()
	switch {
	case c.tok1 == "+":
		// A continuation: for a pending literal, the library accepted it.
	case isStatus(c.tok2):
		if c.tok1 != "*" {
			c.lastTag = c.tok1
		}
	default:
		if n, _, ok := literalAtEnd(line); ok {
			c.outLit = n
		}
	}
}

// editCaps rewrites a capability list: ID is always added (the library
// does not know it); on a plain connection before login STARTTLS is
// added when available, and unless insecure logins are allowed the AUTH=
// mechanisms are replaced by LOGINDISABLED (RFC 3501 §6.2.3, §7.2.1).
func (c *Conn) editCaps(line []byte) []byte {
	s := strings.TrimRight(string(line), "\r\n")
	start := strings.Index(strings.ToUpper(s), "CAPABILITY ")
	if start < 0 {
		return bytes.Clone(line)
	}
	start += len("CAPABILITY ")
	end := len(s)
	if c.tok1 != "*" || !strings.EqualFold(c.tok2, "CAPABILITY") {
		end = strings.IndexByte(s[start:], ']')
		if end < 0 {
			return bytes.Clone(line)
		}
		end += start
	}
	plain := !c.TLS() && !c.authenticated()
	var caps []string
	has := map[string]bool{}
	for _, cp := range strings.Fields(s[start:end]) {
		up := strings.ToUpper(cp)
		if plain && !c.opts.AllowInsecureAuth && strings.HasPrefix(up, "AUTH=") {
			continue
		}
		has[up] = true
		caps = append(caps, cp)
	}
	add := func(cp string) {
		if !has[cp] {
			has[cp] = true
			caps = append(caps, cp)
		}
	}
	if plain && c.opts.TLSConfig != nil {
		add("STARTTLS")
	}
	if plain && !c.opts.AllowInsecureAuth {
		add("LOGINDISABLED")
	}
	add("ID")
	return []byte(s[:start] + strings.Join(caps, " ") + s[end:] + "\r\n")
}
