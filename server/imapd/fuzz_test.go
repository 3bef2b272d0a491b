package imapd

// Fuzz tests of the filter's parsers; they need its unexported parts.

import (
	"bytes"
	"net"
	"strings"
	"testing"
	"time"
)

func FuzzParseID(f *testing.F) {
	f.Add([]byte("a1 ID NIL\r\n"))
	f.Add([]byte("a1 ID (\"name\" \"Thunderbird\" \"version\" \"115.0\")\r\n"))
	f.Add([]byte("a1 ID (\"name\" {5}\r\nmutt \"os\" NIL)\r\n"))
	f.Add([]byte("a1 ID (\"na\\\"me\" \"x\")\r\n"))
	f.Fuzz(func(t *testing.T, cmd []byte) {
		params, err := parseID(cmd)
		if err != nil {
			return
		}
		if len(params) > 30 {
			t.Errorf("%d params", len(params))
		}
		for k, v := range params {
			if len(k) > 30 || strings.ContainsAny(v, "\r\n\x00") {
				t.Errorf("param %q=%q", k, v)
			}
		}
	})
}

func FuzzLiteralAtEnd(f *testing.F) {
	for _, s := range []string{"a APPEND INBOX {12}\r\n", "a LOGIN {3+}\r\n", "* 1 FETCH (BINARY[] ~{0}\r\n", "{}\r\n", "{+}\n", "x {99999999999999999999}\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		n, _, ok := literalAtEnd(line)
		if ok && n < 0 {
			t.Errorf("negative literal size %d for %q", n, line)
		}
	})
}

// FuzzOutput checks that the library's output passes through the filter
// unchanged, whatever it is and however it is split into writes, except
// for capability lists.
func FuzzOutput(f *testing.F) {
	f.Add([]byte("* 1 FETCH (UID 1 BODY[] {5}\r\n* OK \r\n)\r\nt1 OK done\r\n"), uint8(3))
	f.Add([]byte("+ idling\r\n* 2 EXISTS\r\n"), uint8(1))
	f.Add([]byte("* LIST () \"/\" {3}\r\na\r\n\r\n"), uint8(7))
	f.Fuzz(func(t *testing.T, out []byte, split uint8) {
		if bytes.Contains(bytes.ToUpper(out), []byte("CAPABILITY")) {
			return
		}
		sink := &sinkConn{}
		c := newConn(sink, New(Options{}))
		step := int(split%64) + 1
		for i := 0; i < len(out); i += step {
			if _, err := c.Write(out[i:min(i+step, len(out))]); err != nil {
				t.Fatal(err)
			}
		}
		// A line not yet ended is held back; end it.
		if _, err := c.Write([]byte("\r\n")); err != nil {
			t.Fatal(err)
		}
		if err := c.flush(); err != nil { // what the library would trigger by reading
			t.Fatal(err)
		}
		if want := append(bytes.Clone(out), "\r\n"...); !bytes.Equal(sink.buf.Bytes(), want) {
			t.Errorf("output changed:\n got %q\nwant %q", sink.buf.Bytes(), want)
		}
	})
}

func TestCapabilityEdit(t *testing.T) {
	sink := &sinkConn{}
	c := newConn(sink, New(Options{TLSConfig: nil}))
	c.Write([]byte("* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL- AUTH=PLAIN] IMAP server ready\r\n* CAP"))
	c.Write([]byte("ABILITY IMAP4rev1 AUTH=PLAIN\r\n"))
	want := "* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL- LOGINDISABLED ID] IMAP server ready\r\n* CAPABILITY IMAP4rev1 LOGINDISABLED ID\r\n"
	c.flush()
	if got := sink.buf.String(); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// sinkConn records what is written to it.
type sinkConn struct {
	buf bytes.Buffer
}

func (s *sinkConn) Read([]byte) (int, error)         { return 0, net.ErrClosed }
func (s *sinkConn) Write(p []byte) (int, error)      { return s.buf.Write(p) }
func (s *sinkConn) Close() error                     { return nil }
func (s *sinkConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (s *sinkConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (s *sinkConn) SetDeadline(time.Time) error      { return nil }
func (s *sinkConn) SetReadDeadline(time.Time) error  { return nil }
func (s *sinkConn) SetWriteDeadline(time.Time) error { return nil }
