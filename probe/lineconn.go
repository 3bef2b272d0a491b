package probe

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
)

// maxLine bounds one protocol line read from a server.
const maxLine = 8192

// lineConn reads and writes CRLF lines on a connection; the text
// protocols' inspection dialogues and the POP3 client use it.
type lineConn struct {
	c net.Conn
	r *bufio.Reader
}

func newLineConn(c net.Conn) *lineConn {
	return &lineConn{c: c, r: bufio.NewReaderSize(c, 4096)}
}

// readLine returns one line without its line ending.
func (l *lineConn) readLine() (string, error) {
	var b []byte
	for {
		chunk, isPrefix, err := l.r.ReadLine()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return "", fmt.Errorf("server closed the connection: %w", io.ErrUnexpectedEOF)
			}
			return "", err
		}
		b = append(b, chunk...)
		if len(b) > maxLine {
			return "", fmt.Errorf("server line longer than %d bytes", maxLine)
		}
		if !isPrefix {
			return string(b), nil
		}
	}
}

func (l *lineConn) writeLine(s string) error {
	if strings.ContainsAny(s, "\r\n") {
		return errors.New("line contains CR or LF")
	}
	_, err := io.WriteString(l.c, s+"\r\n")
	return err
}
