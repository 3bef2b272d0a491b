package pop3d_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"mailsetup/server/pop3d"
)

// memBackend is a toy Backend: one account whose messages live in memory.
// A real backend checks a password hash, throttles failed logins, locks
// the maildrop in storage and reads messages from disk.
type memBackend struct {
	user, pass string

	mu     sync.Mutex
	msgs   []string // nil: removed
	locked bool
}

func (b *memBackend) Login(ctx context.Context, c pop3d.ConnInfo, user, pass string) (pop3d.Session, error) {
	if !strings.Contains(user, "@") {
		// Say exactly what to change: clients show this text.
		return nil, &pop3d.Error{Code: pop3d.CodeAuth, Text: "use your full email address as the user name"}
	}
	if user != b.user || pass != b.pass {
		return nil, pop3d.ErrAuthFailed
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.locked {
		return nil, &pop3d.Error{Code: pop3d.CodeInUse, Text: "mailbox in use by another client"}
	}
	b.locked = true
	var live []int
	for i, m := range b.msgs {
		if m != "" {
			live = append(live, i)
		}
	}
	return &memSession{b: b, live: live}, nil
}

// memSession maps POP3 message numbers (0-based here) to stored messages.
type memSession struct {
	b    *memBackend
	live []int
}

func (s *memSession) Messages() ([]pop3d.MessageInfo, error) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	infos := make([]pop3d.MessageInfo, len(s.live))
	for n, i := range s.live {
		// The size counts CRLF line ends; the UIDL never changes.
		infos[n] = pop3d.MessageInfo{Size: int64(len(s.b.msgs[i])), UIDL: fmt.Sprintf("msg-%d", i)}
	}
	return infos, nil
}

func (s *memSession) Open(n int) (io.ReadCloser, error) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	return io.NopCloser(strings.NewReader(s.b.msgs[s.live[n]])), nil
}

func (s *memSession) Retrieved(n int) {}

func (s *memSession) Commit(deleted []int) error {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	for _, n := range deleted {
		s.b.msgs[s.live[n]] = ""
	}
	return nil
}

func (s *memSession) Close() error {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.b.locked = false
	return nil
}

// ExampleNewServer wires a Backend into a server and runs one client
// session against it.
func ExampleNewServer() {
	backend := &memBackend{
		user: "demo@example.test",
		pass: "secret",
		msgs: []string{"Subject: hello\r\n\r\nHi!\r\n", "Subject: again\r\n\r\n.signature\r\n"},
	}
	srv := pop3d.NewServer(backend, pop3d.Options{
		// Only because this example talks over loopback without TLS; set
		// TLSConfig (STLS) or serve a TLS listener with ImplicitTLS.
		AllowInsecureAuth: true,
		Expire:            "7",
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	go srv.Serve(ln)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}()

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	readLines := func(multi bool) {
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimSuffix(line, "\r\n")
			fmt.Println(line)
			if !multi || line == "." || strings.HasPrefix(line, "-ERR") {
				return
			}
		}
	}
	readLines(false) // greeting
	for _, cmd := range []struct {
		line  string
		multi bool
	}{
		{"USER demo", false},
		{"PASS secret", false},
		{"USER demo@example.test", false},
		{"PASS secret", false},
		{"UIDL", true},
		{"RETR 2", true},
		{"DELE 1", false},
		{"QUIT", false},
	} {
		fmt.Println("C:", cmd.line)
		fmt.Fprintf(conn, "%s\r\n", cmd.line)
		readLines(cmd.multi)
	}
	// Output:
	// +OK POP3 server ready
	// C: USER demo
	// +OK send PASS
	// C: PASS secret
	// -ERR [AUTH] use your full email address as the user name
	// C: USER demo@example.test
	// +OK send PASS
	// C: PASS secret
	// +OK maildrop has 2 messages (53 octets)
	// C: UIDL
	// +OK unique-id listing follows
	// 1 msg-0
	// 2 msg-1
	// .
	// C: RETR 2
	// +OK 30 octets
	// Subject: again
	//
	// ..signature
	// .
	// C: DELE 1
	// +OK message 1 deleted
	// C: QUIT
	// +OK bye
}

// ExampleBackendFunc adapts a function to Backend, e.g. to refuse every
// login while a maildrop is migrated.
func ExampleBackendFunc() {
	b := pop3d.BackendFunc(func(ctx context.Context, c pop3d.ConnInfo, user, pass string) (pop3d.Session, error) {
		return nil, &pop3d.Error{Code: pop3d.CodeSysTemp, Text: "mailbox being migrated, try again in a few minutes"}
	})
	srv := pop3d.NewServer(b, pop3d.Options{AllowInsecureAuth: true})
	defer srv.Close()
	fmt.Println(srv != nil)
	// Output: true
}
