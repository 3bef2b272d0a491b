package smtpd

import (
	"bytes"
	"errors"
	"net"
	"sync/atomic"
)

// guardListener hands go-smtp connections that end where go-smtp (as of
// v0.25) would carry on:
//
//   - A read that times out closes the connection. go-smtp reads lines
//     with net/textproto, whose bufio.Reader.ReadLine returns a partial
//     line without its CRLF and without the error when the deadline
//     passes mid-line; go-smtp then executes that partial line as a
//     command and starts a fresh deadline, so one byte every few seconds
//     kept a connection open for ever. Closed, the connection's next
//     read fails; the session methods refuse the partial command
//     (session.closed).
//   - A failed STARTTLS handshake closes the connection. go-smtp answers
//     "550 5.0.0 Handshake error" and carries on in plain text, parsing
//     the client's TLS records as commands.
type guardListener struct{ net.Listener }

func (l guardListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &guardConn{Conn: c}, nil
}

type guardConn struct {
	net.Conn
	closed atomic.Bool
}

// handshakeFailed is go-smtp's reply to a failed STARTTLS handshake.
var handshakeFailed = []byte("550 5.0.0 Handshake error")

func (c *guardConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	var ne net.Error
	if err != nil && errors.As(err, &ne) && ne.Timeout() {
		c.Close()
	}
	return n, err
}

func (c *guardConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if bytes.HasPrefix(b, handshakeFailed) {
		c.Close()
	}
	return n, err
}

func (c *guardConn) Close() error {
	c.closed.Store(true)
	return c.Conn.Close()
}

// Closed reports whether the connection was closed.
func (c *guardConn) Closed() bool { return c.closed.Load() }

// NetConn returns the connection underneath.
func (c *guardConn) NetConn() net.Conn { return c.Conn }
