package migrate

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"time"
)

// A read-only POP3 client (RFC 1939, RFC 2449 CAPA, RFC 2595 STLS, RFC
// 5034 AUTH PLAIN) for taking mail over from an old server. It sends only
// CAPA, STLS, AUTH/USER/PASS, UIDL, LIST, RETR and QUIT: never DELE, never
// anything that changes the source. Every read and write runs under an
// idle deadline, and the connection is closed when the context ends, so
// no step can hang.

// Security is how the connection to the old server is protected.
type Security string

// The security modes of a POP3 source.
const (
	SecurityTLS      Security = "tls"      // implicit TLS (port 995)
	SecuritySTARTTLS Security = "starttls" // STLS after the greeting (port 110)
	SecurityNone     Security = "none"     // plain text: loopback only unless forced
)

// POP3Source is an old POP3 server to import from or verify against.
type POP3Source struct {
	// Addr is HOST:PORT.
	Addr     string
	Security Security
	// TLS is the TLS configuration; nil: the system roots and HOST as
	// the server name.
	TLS *tls.Config
	// Timeout bounds every network step (connect, TLS handshake, each
	// read and write). Zero: DefaultTimeout.
	Timeout time.Duration
}

// DefaultTimeout is the deadline of one network step.
const DefaultTimeout = time.Minute

// maxLine bounds a status or listing line of the old server.
const maxLine = 8 << 10

// pop3Error is a -ERR reply of the old server.
type pop3Error struct{ cmd, text string }

func (e *pop3Error) Error() string {
	return fmt.Sprintf("the old server answered %s with -ERR %s", e.cmd, e.text)
}

// idleConn puts a fresh deadline on every read and write.
type idleConn struct {
	net.Conn
	timeout time.Duration
}

func (c idleConn) Read(p []byte) (int, error) {
	if err := c.Conn.SetReadDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

func (c idleConn) Write(p []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

// dialed is a connection to the old server (POP3 or IMAP).
type dialed struct {
	raw  net.Conn
	conn net.Conn    // raw with the idle deadline on every read and write
	tls  *tls.Config // for the connection: a copy, with the server name
	stop func() bool // ends closing raw when the context ends
}

// dialSource connects to addr (HOST:PORT) under timeout (zero:
// DefaultTimeout); the connection is closed when ctx ends. conf nil:
// the system roots.
func dialSource(ctx context.Context, addr string, conf *tls.Config, timeout time.Duration) (dialed, error) {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return dialed{}, fmt.Errorf("source %q: want HOST:PORT: %w", addr, err)
	}
	d := net.Dialer{Timeout: timeout}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return dialed{}, fmt.Errorf("connecting to the old server: %w", err)
	}
	if conf == nil {
		conf = &tls.Config{}
	}
	conf = conf.Clone()
	if conf.ServerName == "" {
		conf.ServerName = host
	}
	return dialed{raw: raw, conn: idleConn{raw, timeout}, tls: conf, stop: context.AfterFunc(ctx, func() { raw.Close() })}, nil
}

// pop3Client is one session with the old server.
type pop3Client struct {
	raw  net.Conn
	conn net.Conn // raw, or TLS over raw; reads and writes have deadlines
	br   *bufio.Reader
	capa map[string]string // capability name (upper case) -> its arguments
	stop func() bool
}

// dialPOP3 connects, reads the greeting, protects the session as src
// asks and reads CAPA.
func dialPOP3(ctx context.Context, src POP3Source) (*pop3Client, error) {
	dl, err := dialSource(ctx, src.Addr, src.TLS, src.Timeout)
	if err != nil {
		return nil, err
	}
	c := &pop3Client{raw: dl.raw, conn: dl.conn, stop: dl.stop}
	fail := func(err error) (*pop3Client, error) {
		c.close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	tlsConf := dl.tls
	if src.Security == SecurityTLS {
		if err := c.startTLS(tlsConf); err != nil {
			return fail(err)
		}
	}
	c.br = bufio.NewReaderSize(c.conn, maxLine)
	if _, err := c.status("the greeting"); err != nil {
		return fail(err)
	}
	c.readCapa()
	if src.Security == SecuritySTARTTLS {
		if _, ok := c.capa["STLS"]; !ok && c.capa != nil {
			return fail(errors.New("the old server does not offer STLS (CAPA); use --security tls with its POP3S port"))
		}
		if _, err := c.cmd("STLS"); err != nil {
			return fail(err)
		}
		if err := c.startTLS(tlsConf); err != nil {
			return fail(err)
		}
		c.br = bufio.NewReaderSize(c.conn, maxLine)
		c.readCapa()
	}
	return c, nil
}

func (c *pop3Client) startTLS(conf *tls.Config) error {
	tc := tls.Client(c.conn, conf)
	if err := tc.Handshake(); err != nil {
		return fmt.Errorf("TLS with the old server: %w", err)
	}
	c.conn = tc
	return nil
}

func (c *pop3Client) close() {
	c.stop()
	c.raw.Close()
}

// quit ends the session with QUIT (which, without DELE, changes
// nothing) and closes the connection.
func (c *pop3Client) quit() {
	_, _ = c.cmd("QUIT")
	c.close()
}

func (c *pop3Client) readLine() (string, error) {
	line, err := c.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return "", fmt.Errorf("the old server sent a line longer than %d bytes", maxLine)
	}
	if err != nil {
		return "", fmt.Errorf("reading from the old server: %w", err)
	}
	return strings.TrimRight(string(line), "\r\n"), nil
}

// status reads a +OK or -ERR line of the reply to what.
func (c *pop3Client) status(what string) (string, error) {
	line, err := c.readLine()
	if err != nil {
		return "", err
	}
	switch {
	case line == "+OK" || strings.HasPrefix(line, "+OK "):
		return strings.TrimPrefix(line[3:], " "), nil
	case line == "-ERR" || strings.HasPrefix(line, "-ERR "):
		return "", &pop3Error{what, strings.TrimPrefix(line[4:], " ")}
	case line == "+" || strings.HasPrefix(line, "+ "):
		return line, nil
	}
	return "", fmt.Errorf("the old server answered %s with %q, not +OK or -ERR", what, line)
}

// cmd sends one command line and reads its status; what names it in
// errors (never with a password).
func (c *pop3Client) cmdAs(what, line string) (string, error) {
	if _, err := io.WriteString(c.conn, line+"\r\n"); err != nil {
		return "", fmt.Errorf("writing to the old server: %w", err)
	}
	return c.status(what)
}

func (c *pop3Client) cmd(line string) (string, error) { return c.cmdAs(line, line) }

// multiline reads the lines of a multi-line reply up to ".".
func (c *pop3Client) multiline() ([]string, error) {
	var out []string
	for {
		l, err := c.readLine()
		if err != nil {
			return nil, err
		}
		if l == "." {
			return out, nil
		}
		out = append(out, strings.TrimPrefix(l, "."))
	}
}

// readCapa asks CAPA; a server without it leaves capa nil.
func (c *pop3Client) readCapa() {
	c.capa = nil
	if _, err := c.cmd("CAPA"); err != nil {
		return
	}
	lines, err := c.multiline()
	if err != nil {
		return
	}
	c.capa = map[string]string{}
	for _, l := range lines {
		name, args, _ := strings.Cut(l, " ")
		c.capa[strings.ToUpper(name)] = args
	}
}

// login authenticates: AUTH PLAIN when CAPA offers it, USER/PASS
// otherwise.
func (c *pop3Client) login(user, password string) error {
	plain := func(m string) bool { return strings.EqualFold(m, "PLAIN") }
	if slices.ContainsFunc(strings.Fields(c.capa["SASL"]), plain) {
		resp := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + password))
		_, err := c.cmdAs("AUTH PLAIN", "AUTH PLAIN "+resp)
		return err
	}
	if _, err := c.cmd("USER " + user); err != nil {
		return err
	}
	_, err := c.cmdAs("PASS", "PASS "+password)
	return err
}

// listing is one line of UIDL or LIST: a message number and its
// argument (the unique-id or the size), as the server sent it.
type listing struct {
	num int
	arg string
}

// list sends UIDL or LIST without an argument and parses the lines.
func (c *pop3Client) list(cmd string) ([]listing, error) {
	if _, err := c.cmd(cmd); err != nil {
		return nil, err
	}
	lines, err := c.multiline()
	if err != nil {
		return nil, err
	}
	out := make([]listing, 0, len(lines))
	for _, l := range lines {
		n, arg, _ := strings.Cut(l, " ")
		num, err := strconv.Atoi(n)
		if err != nil || num < 1 {
			return nil, fmt.Errorf("the old server sent a %s line %q without a message number", cmd, l)
		}
		out = append(out, listing{num, arg})
	}
	return out, nil
}

// retr sends RETR and returns the message as a reader (dot-unstuffed,
// up to the terminating "."). Read it to the end before the next command.
func (c *pop3Client) retr(num int) (io.Reader, error) {
	if _, err := c.cmd("RETR " + strconv.Itoa(num)); err != nil {
		return nil, err
	}
	return textproto.NewReader(c.br).DotReader(), nil
}
