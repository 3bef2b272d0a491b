package pop3d

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"strconv"
	"time"
)

// state is a POP3 session state (RFC 1939 §3), as a bit so that a command
// can list the states it is allowed in. UPDATE is entered by QUIT and
// reads no further commands, so no command needs it.
type state uint8

const (
	stateAuthorization state = 1 << iota
	stateTransaction
)

// maxKeyword is the longest command keyword (RFC 1939 §3: three or four
// characters).
const maxKeyword = 4

// Errors that end a connection, with their end reason.
var (
	errQuit        = errors.New("quit")
	errClosing     = &endError{EndShutdown, errors.New("server shutting down")}
	errLineTooLong = errors.New("line too long")
)

// endError ends the connection with the given reason.
type endError struct {
	reason string
	err    error
}

func (e *endError) Error() string { return e.reason + ": " + e.err.Error() }
func (e *endError) Unwrap() error { return e.err }

// connWriter is the bottom of the output buffer: a write deadline per
// write, and a byte count.
type connWriter struct {
	nc      net.Conn
	timeout time.Duration
	n       int64
}

func (w *connWriter) Write(p []byte) (int, error) {
	if err := w.nc.SetWriteDeadline(time.Now().Add(w.timeout)); err != nil {
		return 0, err
	}
	n, err := w.nc.Write(p)
	w.n += int64(n)
	return n, err
}

// conn is one client connection and its POP3 session.
type conn struct {
	s      *Server
	policy loginPolicy // the server's when the connection started
	tc     *trackedConn
	nc     net.Conn // the raw conn, or the *tls.Conn after STLS
	br     *bufio.Reader
	cw     connWriter
	bw     *bufio.Writer
	log    *slog.Logger
	debug  bool
	ctx    context.Context
	cancel context.CancelFunc
	id     string
	tls    bool

	state            state
	user             string // from USER, waiting for PASS
	sess             Session
	drop             *maildrop
	expire           string   // CAPA EXPIRE value after login
	nerr             int      // protocol errors so far
	scratch          [24]byte // for number formatting
	pendingRetrieved []int    // RETR/TOP sent, Retrieved to be told after the next flush

	// for the SessionEvent
	start         time.Time
	evUser        string
	authenticated bool
	authFailures  int
	listed        int
	committed     bool
	reason        string
	linger        bool // the server ends the conversation: lingerClose
}

func newConn(s *Server, tc *trackedConn) *conn {
	c := &conn{
		s:      s,
		tc:     tc,
		nc:     tc.raw,
		id:     s.newID(),
		state:  stateAuthorization,
		start:  time.Now(),
		tls:    s.opts.ImplicitTLS,
		policy: *s.login.Load(),
	}
	c.ctx, c.cancel = context.WithCancel(s.baseCtx)
	c.log = s.log.With(slog.String("cid", c.id), slog.String("remote", addrString(tc.raw.RemoteAddr())))
	c.debug = c.log.Enabled(c.ctx, slog.LevelDebug)
	c.br = bufio.NewReaderSize(c.nc, s.opts.MaxLineLength)
	c.cw = connWriter{nc: c.nc, timeout: s.opts.WriteTimeout}
	c.bw = bufio.NewWriterSize(&c.cw, writeBufferSize)
	return c
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// serve runs the session until it ends, then closes the Session and the
// connection and reports the session.
func (c *conn) serve() {
	defer c.finish()
	defer func() {
		if r := recover(); r != nil {
			c.reason = EndError
			c.log.Error("pop3 panic", "panic", r, "stack", string(debug.Stack()))
			c.writeLine(errLine(CodeSysTemp, "internal error"))
			c.bw.Flush()
		}
	}()
	c.reason = c.run()
}

// run is the command loop; it returns the end reason.
func (c *conn) run() string {
	if tc, ok := c.nc.(*tls.Conn); ok {
		timeout := min(handshakeTimeout, c.s.idleTimeout())
		tc.SetDeadline(time.Now().Add(timeout))
		if err := tc.HandshakeContext(c.ctx); err != nil {
			c.log.Info("pop3 tls handshake failed", "error", err)
			return EndError
		}
		tc.SetDeadline(time.Time{})
		c.tls = true
	}
	if c.s.closing.Load() {
		c.writeLine(errLine(CodeSysTemp, "server shutting down"))
		return c.end(errClosing)
	}
	c.writeLine("+OK POP3 server ready")
	for {
		// Pipelining (RFC 2449 §6.6): flush only when no complete
		// command is waiting, so that a batch of commands gets its
		// answers in as few writes as possible.
		if !c.lineBuffered() {
			if err := c.flush(); err != nil {
				return c.end(err)
			}
		}
		line, err := c.readLine()
		if err != nil {
			return c.end(err)
		}
		if c.s.closing.Load() {
			c.writeLine(errLine(CodeSysTemp, "server shutting down"))
			return c.end(errClosing)
		}
		if c.nerr >= c.s.opts.MaxErrors {
			c.writeLine("-ERR too many errors, closing connection")
			return c.end(&endError{EndError, errors.New("too many errors")})
		}
		if err := c.dispatch(line); err != nil {
			return c.end(err)
		}
	}
}

// end finishes the conversation after err: it answers an over-long line,
// sends what is still buffered, and returns the end reason. When the
// server ended the conversation with a reply (QUIT, an over-long line,
// too many errors, shutdown), the close lingers so that the reply
// arrives (see lingerClose).
func (c *conn) end(err error) string {
	var ee *endError
	own := errors.Is(err, errQuit) || errors.As(err, &ee) || errors.Is(err, errLineTooLong)
	if errors.Is(err, errLineTooLong) {
		c.writeLine("-ERR line too long")
	}
	// After a read timeout or a broken connection the buffer is empty
	// or the write fails at once.
	if c.flush() == nil && own {
		c.linger = true
	}
	return c.endReason(err)
}

// endReason maps an error that ends the connection to its reason.
func (c *conn) endReason(err error) string {
	var ee *endError
	switch {
	case errors.Is(err, errQuit):
		return EndQuit
	case errors.As(err, &ee):
		return ee.reason
	case errors.Is(err, errStreamAborted), errors.Is(err, errLineTooLong):
		return EndError
	}
	return c.ioReason(err)
}

// ioReason classifies a read or write error.
func (c *conn) ioReason(err error) string {
	if c.s.closing.Load() {
		return EndShutdown
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		// RFC 1939 §3: on the inactivity timer the server closes the
		// connection without a response and without entering UPDATE.
		return EndTimeout
	}
	return EndDrop
}

// readLine reads one line, waiting at most IdleTimeout, and returns it
// without its line ending. The line is valid until the next read.
func (c *conn) readLine() ([]byte, error) {
	if err := c.nc.SetReadDeadline(time.Now().Add(c.s.idleTimeout())); err != nil {
		return nil, err
	}
	// Shutdown sets closing, then a past read deadline that ends the
	// reads of idle sessions. We check closing after setting our
	// deadline, so a session that was busy when Shutdown started (it
	// missed that deadline) sees the flag: it gives the client a short
	// grace to send its next command, which run answers with
	// "-ERR [SYS/TEMP] server shutting down".
	if c.s.closing.Load() {
		grace := min(shutdownGrace, c.s.idleTimeout())
		if err := c.nc.SetReadDeadline(time.Now().Add(grace)); err != nil {
			return nil, err
		}
	}
	line, err := c.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		// A line of more than MaxLineLength octets, CRLF included
		// (default 512; RFC 2449 §4 allows commands of 255): end answers
		// "-ERR line too long" and the connection is closed, since the
		// rest of the line cannot be told apart from a next command.
		return nil, errLineTooLong
	}
	if err != nil {
		// io.EOF with a partial line: the client went away mid-command.
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// lineBuffered reports whether a complete line is waiting in the input
// buffer.
func (c *conn) lineBuffered() bool {
	n := c.br.Buffered()
	if n == 0 {
		return false
	}
	b, _ := c.br.Peek(n)
	return bytes.IndexByte(b, '\n') >= 0
}

// flush writes the buffered output, then tells the Session about the
// messages whose last byte it carried.
func (c *conn) flush() error {
	if err := c.bw.Flush(); err != nil {
		c.pendingRetrieved = c.pendingRetrieved[:0]
		return err
	}
	for _, i := range c.pendingRetrieved {
		c.drop.retrieved.set(i)
		c.sess.Retrieved(i)
	}
	c.pendingRetrieved = c.pendingRetrieved[:0]
	return nil
}

// dispatch looks the command up in the table, checks the state and runs
// it.
func (c *conn) dispatch(line []byte) error {
	kw, args := line, []byte(nil)
	if i := bytes.IndexByte(line, ' '); i >= 0 {
		kw, args = line[:i], line[i+1:]
	}
	if len(kw) == 0 {
		c.protoErr("empty command")
		return nil
	}
	var upper [maxKeyword]byte
	cmd, ok := command{}, false
	if len(kw) <= maxKeyword {
		for i, b := range kw {
			if 'a' <= b && b <= 'z' {
				b -= 'a' - 'A'
			}
			upper[i] = b
		}
		cmd, ok = commands[string(upper[:len(kw)])]
	}
	if !ok {
		if c.state == stateAuthorization {
			// An unknown command before login ends the connection: it is
			// most likely another protocol (e.g. an HTTP request a web
			// page made a browser send), and cross-protocol attacks rely
			// on the server reading on.
			c.writeLine("-ERR unknown command, closing connection")
			return &endError{EndError, errors.New("unknown command before authentication")}
		}
		c.protoErr("unknown command")
		return nil
	}
	if c.debug {
		// The keyword only: arguments of PASS and AUTH are secrets.
		c.log.LogAttrs(c.ctx, slog.LevelDebug, "pop3 command", slog.String("cmd", string(upper[:len(kw)])))
	}
	if cmd.states&c.state == 0 {
		c.protoErr("command not valid in this state")
		return nil
	}
	return cmd.run(c, args)
}

// Replies.

func (c *conn) writeLine(s string) {
	c.bw.WriteString(s)
	c.bw.WriteString("\r\n")
}

func (c *conn) writeNum(n int64) {
	c.bw.Write(strconv.AppendInt(c.scratch[:0], n, 10))
}

// protoErr answers a client mistake and counts it toward MaxErrors.
func (c *conn) protoErr(text string) {
	c.nerr++
	c.writeLine(errLine("", text))
}

// replyBackendErr answers an error from the Backend or Session: an *Error
// with its code and text, anything else as "-ERR [SYS/TEMP] fallback".
func (c *conn) replyBackendErr(err error, op, fallback string) {
	var pe *Error
	if errors.As(err, &pe) {
		if pe.Err != nil {
			c.log.Info("pop3 backend refused", "op", op, "error", err)
		}
		text := pe.Text
		if text == "" {
			text = defaultText(pe.Code)
		}
		c.writeLine(errLine(pe.Code, text))
		return
	}
	c.log.Error("pop3 backend failed", "op", op, "error", err)
	c.writeLine(errLine(CodeSysTemp, fallback))
}

func defaultText(code string) string {
	switch code {
	case CodeAuth:
		return "authentication failed"
	case CodeInUse:
		return "maildrop in use by another session"
	case CodeLoginDelay:
		return "logged in too recently, try again later"
	case CodeSysTemp:
		return "temporary failure, try again later"
	}
	return "failed"
}

// lingerClose half-closes the connection and reads and drops what the
// client still sends, for at most lingerTimeout and lingerMaxBytes: closing
// a socket with unread input makes the kernel send a reset, which can
// destroy our last reply (e.g. "-ERR line too long") before the client
// reads it.
func (c *conn) lingerClose() {
	cw, ok := c.nc.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	c.nc.SetReadDeadline(time.Now().Add(lingerTimeout))
	io.CopyN(io.Discard, c.nc, lingerMaxBytes)
}

// finish closes the Session (never committing: only QUIT commits) and
// the connection, frees the connection's place in the limits, and logs
// and reports the session.
func (c *conn) finish() {
	end := time.Now()
	if c.sess != nil {
		c.closeSession(c.sess)
	}
	if c.linger {
		c.lingerClose()
	}
	c.nc.Close() // the *tls.Conn after STLS
	c.s.release(c.tc)
	c.cancel()
	ev := SessionEvent{
		ConnID:        c.id,
		Remote:        c.tc.raw.RemoteAddr(),
		User:          c.evUser,
		Authenticated: c.authenticated,
		AuthFailures:  c.authFailures,
		TLS:           c.tls,
		Listed:        c.listed,
		Committed:     c.committed,
		BytesSent:     c.cw.n,
		Start:         c.start,
		End:           end,
		EndReason:     c.reason,
	}
	if d := c.drop; d != nil {
		ev.RetrievedIDs = d.retrieved.list(0)
		ev.Retrieved = len(ev.RetrievedIDs)
		ev.Deleted = d.deletedCount
		ev.Messages = d.count()
		ev.Bytes = d.total
	}
	c.log.LogAttrs(context.Background(), slog.LevelInfo, "pop3 session end",
		slog.String("reason", ev.EndReason),
		slog.String("user", ev.User),
		slog.Bool("authenticated", ev.Authenticated),
		slog.Int("auth_failures", ev.AuthFailures),
		slog.Bool("tls", ev.TLS),
		slog.Int("messages", ev.Messages),
		slog.Int64("bytes", ev.Bytes),
		slog.Int("listed", ev.Listed),
		slog.Int("retrieved", ev.Retrieved),
		slog.Int("deleted", ev.Deleted),
		slog.Bool("committed", ev.Committed),
		slog.Int64("sent", ev.BytesSent),
		slog.Duration("duration", ev.End.Sub(ev.Start)),
	)
	if f := c.s.opts.Events; f != nil {
		defer func() {
			if r := recover(); r != nil {
				c.log.Error("pop3 panic in Events callback", "panic", r, "stack", string(debug.Stack()))
			}
		}()
		f(ev)
	}
}

var _ io.Writer = (*connWriter)(nil)
