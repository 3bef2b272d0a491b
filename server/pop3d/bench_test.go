package pop3d_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"mailsetup/server/pop3d"
)

// bigSession is a maildrop of many messages whose listing the backend
// has cached, so that the benchmarks measure the server, not the fake.
type bigSession struct{ infos []pop3d.MessageInfo }

func (s bigSession) Messages() ([]pop3d.MessageInfo, error) { return s.infos, nil }
func (s bigSession) Open(n int) (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader("Subject: x\r\n\r\nbody\r\n")), nil
}
func (bigSession) Retrieved(int)      {}
func (bigSession) Commit([]int) error { return nil }
func (bigSession) Close() error       { return nil }

// bigServer serves a maildrop of n messages with 24-character UIDLs (a
// 32-bit UIDVALIDITY and a 64-bit id in hex) on 127.0.0.1.
func bigServer(tb testing.TB, n int) (addr string, events chan pop3d.SessionEvent) {
	tb.Helper()
	infos := make([]pop3d.MessageInfo, n)
	for i := range infos {
		infos[i] = pop3d.MessageInfo{Size: int64(2000 + i%50000), UIDL: fmt.Sprintf("%08x%016x", 0x5f3a1b2c, i+1)}
	}
	backend := pop3d.BackendFunc(func(_ context.Context, _ pop3d.ConnInfo, user, pass string) (pop3d.Session, error) {
		if user != testUser || pass != testPass {
			return nil, pop3d.ErrAuthFailed
		}
		return bigSession{infos}, nil
	})
	events = make(chan pop3d.SessionEvent, 1000)
	srv := pop3d.NewServer(backend, pop3d.Options{
		AllowInsecureAuth: true,
		MaxPerIP:          -1,
		Logger:            slog.New(slog.DiscardHandler),
		Events:            func(ev pop3d.SessionEvent) { events <- ev },
	})
	ln := mustListen(tb)
	go srv.Serve(ln)
	tb.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), events
}

// BenchmarkSession10k is one polling client's session on a maildrop of
// 10,000 messages: USER, PASS, STAT, UIDL, QUIT over loopback TCP, one
// command at a time. ns/msg is the time per message in the maildrop.
func BenchmarkSession10k(b *testing.B) {
	const n = 10000
	addr, _ := bigServer(b, n)
	buf := bufio.NewReaderSize(nil, 64<<10)
	expect := func(prefix string) {
		line, err := buf.ReadSlice('\n')
		if err != nil || !strings.HasPrefix(string(line), prefix) {
			b.Fatalf("got %q, %v; want %q", line, err, prefix)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		buf.Reset(nc)
		expect("+OK")
		io.WriteString(nc, "USER "+testUser+"\r\n")
		expect("+OK")
		io.WriteString(nc, "PASS "+testPass+"\r\n")
		expect("+OK maildrop has 10000 messages")
		io.WriteString(nc, "STAT\r\n")
		expect("+OK 10000 ")
		io.WriteString(nc, "UIDL\r\n")
		expect("+OK")
		lines := 0
		for {
			line, err := buf.ReadSlice('\n')
			if err != nil {
				b.Fatal(err)
			}
			if string(line) == ".\r\n" {
				break
			}
			lines++
		}
		if lines != n {
			b.Fatalf("UIDL listed %d messages", lines)
		}
		io.WriteString(nc, "QUIT\r\n")
		expect("+OK")
		nc.Close()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/msg")
}

// measureSessions logs in sessions clients on a maildrop of n messages
// and returns the growth of the heap (and of goroutine stacks) per
// message and per session, client side included.
func measureSessions(tb testing.TB, n, sessions int) (perMsg, perSession float64) {
	tb.Helper()
	addr, events := bigServer(tb, n)
	mem := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc + ms.StackInuse
	}
	before := mem()
	conns := make([]net.Conn, sessions)
	for i := range conns {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			tb.Fatal(err)
		}
		conns[i] = nc
		io.WriteString(nc, "USER "+testUser+"\r\nPASS "+testPass+"\r\n")
		r := bufio.NewReader(nc)
		for range 3 {
			if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "+OK") {
				tb.Fatalf("login: %q %v", line, err)
			}
		}
	}
	after := mem()
	for _, nc := range conns {
		nc.Close()
	}
	for range sessions {
		select {
		case <-events:
		case <-time.After(5 * time.Second):
			tb.Fatal("sessions did not end")
		}
	}
	grew := float64(after) - float64(before)
	return grew / float64(n*sessions), grew / float64(sessions)
}

// BenchmarkSessionMemory10k reports what a logged-in session on a
// maildrop of 10,000 messages costs: B/msg is the heap and stack growth
// per message, B/session per session (both with the test client's side).
func BenchmarkSessionMemory10k(b *testing.B) {
	var perMsg, perSession float64
	for b.Loop() {
		perMsg, perSession = measureSessions(b, 10000, 20)
	}
	b.ReportMetric(perMsg, "B/msg")
	b.ReportMetric(perSession, "B/session")
}

// TestSessionMemory10k bounds the per-session memory that doc.go states:
// 8 bytes + the UIDL + 2 bits per message (here 24-byte UIDLs, so about
// 32 bytes), plus a few KiB per connection.
func TestSessionMemory10k(t *testing.T) {
	perMsg, perSession := measureSessions(t, 10000, 20)
	t.Logf("10,000 messages: %.1f bytes/message, %.0f bytes/session", perMsg, perSession)
	if perMsg > 48 {
		t.Errorf("%.1f bytes/message, want at most 48 (8 + 24-byte UIDL + per-connection share)", perMsg)
	}
}
