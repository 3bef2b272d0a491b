package pop3d

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// dotEncoder turns message content into the body of a POP3 multi-line
// response while it streams (RFC 1939 §3): every line ends in CRLF (a bare
// LF becomes CRLF; a CR not followed by LF stays as it is), a line that
// starts with "." gets one more ".", and finish adds a final CRLF when the
// content lacks one, then the terminating ".\r\n". It keeps no more than
// two flags of state, so a message of any size passes through a fixed
// buffer.
//
// For TOP it stops after the header, the blank line that ends it, and
// bodyLines lines of the body (RFC 1939 §7).
type dotEncoder struct {
	w   *bufio.Writer
	err error // first write error

	atLineStart bool // the next byte starts a line
	pendingCR   bool // a CR ended the last chunk; written once we know whether LF follows
	lineEmpty   bool // the current line has no content yet

	top       bool  // TOP: stop after the header and bodyLines lines
	inHeader  bool  // TOP: still in the header
	bodyLines int64 // TOP: body lines still to send
	done      bool  // TOP: everything asked for was sent
}

func newDotEncoder(w *bufio.Writer, top bool, bodyLines int64) *dotEncoder {
	return &dotEncoder{w: w, atLineStart: true, top: top, inHeader: top, bodyLines: bodyLines}
}

// write encodes p and returns how many bytes of it were consumed: all of
// them, unless TOP is done, or a write failed (then e.err is set).
func (e *dotEncoder) write(p []byte) int {
	consumed := 0
	for len(p) > 0 && !e.done && e.err == nil {
		if e.pendingCR {
			e.pendingCR = false
			if p[0] == '\n' {
				e.endLine()
				p = p[1:]
				consumed++
				continue
			}
			e.writeByte('\r') // a bare CR inside a line stays
			e.lineEmpty = false
		}
		if e.atLineStart {
			e.atLineStart = false
			e.lineEmpty = true
			if p[0] == '.' {
				// RFC 1939 §3: byte-stuff a line starting with the
				// termination octet.
				e.writeByte('.')
			}
		}
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			seg := p
			if seg[len(seg)-1] == '\r' {
				e.pendingCR = true
				seg = seg[:len(seg)-1]
			}
			e.writeSeg(seg)
			return consumed + len(p)
		}
		seg := p[:i]
		if len(seg) > 0 && seg[len(seg)-1] == '\r' {
			seg = seg[:len(seg)-1]
		}
		e.writeSeg(seg)
		e.endLine()
		consumed += i + 1
		p = p[i+1:]
	}
	return consumed
}

// finish completes the last line and writes the terminating line.
func (e *dotEncoder) finish() error {
	if e.pendingCR {
		// A CR at the very end ends the last line.
		e.pendingCR = false
		e.endLine()
	}
	if !e.atLineStart {
		e.writeString("\r\n")
	}
	e.writeString(".\r\n")
	return e.err
}

func (e *dotEncoder) endLine() {
	e.writeString("\r\n")
	e.atLineStart = true
	if !e.top {
		return
	}
	if e.inHeader {
		if e.lineEmpty {
			e.inHeader = false
			e.done = e.bodyLines == 0
		}
		return
	}
	e.bodyLines--
	e.done = e.bodyLines == 0
}

func (e *dotEncoder) writeSeg(b []byte) {
	if len(b) == 0 || e.err != nil {
		return
	}
	e.lineEmpty = false
	_, e.err = e.w.Write(b)
}

func (e *dotEncoder) writeByte(b byte) {
	if e.err == nil {
		e.err = e.w.WriteByte(b)
	}
}

func (e *dotEncoder) writeString(s string) {
	if e.err == nil {
		_, e.err = e.w.WriteString(s)
	}
}

// errStreamAborted ends a connection whose message stream failed after the
// "+OK": the client must not see a terminator after a truncated message.
var errStreamAborted = errors.New("message stream aborted")

// sendMessage answers RETR (top false) or TOP (top true, bodyLines lines
// of body) for message i, streaming from the Session. It returns an error
// only when the connection must end.
func (c *conn) sendMessage(i int, top bool, bodyLines int64) error {
	rc, err := c.sess.Open(i)
	if err != nil {
		c.replyBackendErr(err, "opening message", "message not available")
		return nil
	}
	defer rc.Close()
	bufp := c.s.bufPool.Get().(*[]byte)
	defer c.s.bufPool.Put(bufp)
	buf := *bufp

	// Read the first piece before answering, so that a message that
	// cannot be read at all gets a proper -ERR.
	n, rerr := readSome(rc, buf)
	if rerr != nil && rerr != io.EOF {
		c.replyBackendErr(rerr, "reading message", "message not available")
		return nil
	}
	if top {
		c.writeLine("+OK top of message follows")
	} else {
		c.bw.WriteString("+OK ")
		c.writeNum(c.drop.size(i))
		c.writeLine(" octets")
	}
	enc := newDotEncoder(c.bw, top, bodyLines)
	whole := true
	for {
		if n > 0 {
			k := enc.write(buf[:n])
			if enc.err != nil {
				return enc.err
			}
			if enc.done {
				// TOP sent all it was asked for; it was the whole
				// message if nothing is left.
				switch {
				case k < n:
					whole = false
				case rerr == nil:
					m, err := readSome(rc, buf)
					whole = m == 0 && err == io.EOF
				default:
					whole = rerr == io.EOF
				}
				break
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			c.log.Warn("pop3 message read failed mid-stream, closing connection",
				"msg", i+1, "error", rerr)
			return fmt.Errorf("%w: reading message %d: %w", errStreamAborted, i+1, rerr)
		}
		n, rerr = readSome(rc, buf)
	}
	if err := enc.finish(); err != nil {
		return err
	}
	if whole {
		c.pendingRetrieved = append(c.pendingRetrieved, i)
		if len(c.pendingRetrieved) >= maxPendingRetrieved {
			// A long pipeline of RETRs: flush now rather than keep a
			// growing list.
			return c.flush()
		}
	}
	return nil
}

// maxPendingRetrieved bounds the messages sent but not yet flushed.
const maxPendingRetrieved = 64

// readSome reads until it gets data or an error, as io.Reader allows
// (0, nil) returns.
func readSome(r io.Reader, buf []byte) (int, error) {
	for range 100 {
		n, err := r.Read(buf)
		if n > 0 || err != nil {
			return n, err
		}
	}
	return 0, io.ErrNoProgress
}
