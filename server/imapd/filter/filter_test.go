package filter

// Fuzz tests of the filter's parsers; they need its unexported parts.

import (
	"bufio"
	"bytes"
	"net"
	"os"
	"path/filepath"
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
		c := New(sink, Options{})
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
	c := New(sink, Options{TLSConfig: nil})
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

// TestLibraryVersion: the filter knows what go-imap writes and expects
// as of LibraryVersion; another version in go.mod needs a review of the
// filter (then change LibraryVersion).
func TestLibraryVersion(t *testing.T) {
	mod, err := os.ReadFile(filepath.Join("..", "..", "..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(mod), "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && f[0] == "github.com/emersion/go-imap/v2" {
			if f[1] != LibraryVersion {
				t.Errorf("go.mod has go-imap %s; the filter was written against %s: review it (what the library writes, when it reads, its literal limits) and update LibraryVersion", f[1], LibraryVersion)
			}
			return
		}
	}
	t.Error("go.mod does not require github.com/emersion/go-imap/v2")
}

// pipeConn connects the filter to a client over net.Pipe; the test plays
// the library through the filter's Read and Write.
func pipeConn(t *testing.T, opts Options, sess Session) (client net.Conn, lib *Conn) {
	t.Helper()
	client, server := net.Pipe()
	t.Cleanup(func() { client.Close(); server.Close() })
	lib = New(server, opts)
	if sess != nil {
		lib.SetSession(sess)
	}
	_ = client.SetDeadline(time.Now().Add(5 * time.Second))
	_ = server.SetDeadline(time.Now().Add(5 * time.Second))
	return client, lib
}

type fakeSession struct {
	loggedIn bool
	id       map[string]string
}

func (f *fakeSession) Authenticated() bool               { return f.loggedIn }
func (f *fakeSession) ClientID(params map[string]string) { f.id = params }

// readLine reads one line the filter sent to the client.
func readLine(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	l, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("reading: %v (got %q)", err, l)
	}
	return l
}

// Transcript: ID is answered by the filter and handed to the session; a
// LOGIN before TLS is refused by the filter; a plain command passes to
// the library unchanged.
func TestTranscript(t *testing.T) {
	sess := &fakeSession{}
	client, lib := pipeConn(t, Options{ServerName: "test"}, sess)
	r := bufio.NewReader(client)
	libGot := make(chan string, 1)
	go func() {
		b := make([]byte, 512)
		n, _ := lib.Read(b) // the library reads the next command
		libGot <- string(b[:n])
	}()
	client.Write([]byte("a1 ID (\"name\" \"Thunderbird\" \"version\" \"128.0\")\r\n"))
	if l := readLine(t, r); l != "* ID (\"name\" \"test\")\r\n" {
		t.Errorf("ID reply %q", l)
	}
	if l := readLine(t, r); l != "a1 OK ID completed\r\n" {
		t.Errorf("ID completion %q", l)
	}
	if sess.id["name"] != "Thunderbird" || sess.id["version"] != "128.0" {
		t.Errorf("session got %v", sess.id)
	}
	client.Write([]byte("a2 LOGIN john secret\r\n"))
	if l := readLine(t, r); l[:20] != "a2 NO [PRIVACYREQUIR" {
		t.Errorf("LOGIN before TLS: %q", l)
	}
	client.Write([]byte("a3 NOOP\r\n"))
	if got := <-libGot; got != "a3 NOOP\r\n" {
		t.Errorf("the library read %q, want only the NOOP", got)
	}
}

// Transcript: a synchronising literal over the limit before login is
// refused at once; the library never sees the command.
func TestTranscriptOversizedLiteral(t *testing.T) {
	client, lib := pipeConn(t, Options{AllowInsecureAuth: true}, &fakeSession{})
	r := bufio.NewReader(client)
	libGot := make(chan string, 1)
	go func() {
		b := make([]byte, 512)
		n, _ := lib.Read(b)
		libGot <- string(b[:n])
	}()
	client.Write([]byte("a1 LOGIN {999999999}\r\n"))
	if l := readLine(t, r); l[:14] != "a1 NO [LIMIT] " {
		t.Errorf("oversized literal: %q", l)
	}
	client.Write([]byte("a2 NOOP\r\n"))
	if got := <-libGot; got != "a2 NOOP\r\n" {
		t.Errorf("the library read %q", got)
	}
}
