package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"mailsetup/server"
	"mailsetup/server/mailstore"
)

// TestCrashKeepsEveryAcknowledgedMessage submits mail from many clients
// while the server is killed with SIGKILL at random moments, several
// rounds; after a restart every message that got a 250 is in the mailbox
// exactly once and intact, and no partial message is visible.
func TestCrashKeepsEveryAcknowledgedMessage(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	dir := t.TempDir()
	ports := server.DefaultPorts()
	ports.HTTP, ports.HTTPS, ports.DNS, ports.Admin = freePort(t), freePort(t), freePort(t), freePort(t)
	ports.SMTP, ports.Submission, ports.Submissions = freePort(t), freePort(t), freePort(t)
	ports.IMAP, ports.IMAPS, ports.POP3, ports.POP3S = freePort(t), freePort(t), freePort(t), freePort(t)
	created, err := server.EnsureDefault(dir, ports)
	if err != nil {
		t.Fatal(err)
	}
	submission := fmt.Sprintf("127.0.0.1:%d", ports.Submission)

	var (
		mu       sync.Mutex
		acked    = map[string]bool{}
		seq      int
		firstErr error
	)
	const clients, rounds = 12, 4
	rng := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < rounds; round++ {
		svc := startServe(t, "--config", created.ConfigPath)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for c := 0; c < clients; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					mu.Lock()
					seq++
					token := fmt.Sprintf("r%d-m%d", round, seq)
					mu.Unlock()
					err := submit(submission, created.DemoPassword, token)
					mu.Lock()
					if err == nil {
						acked[token] = true
					} else if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}()
		}
		// Let deliveries get going (the first login of each run pays for
		// argon2id, slow on a loaded machine), then kill at a random moment.
		mu.Lock()
		start := len(acked)
		mu.Unlock()
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			mu.Lock()
			n := len(acked)
			mu.Unlock()
			if n >= start+5 {
				break
			}
		}
		time.Sleep(time.Duration(100+rng.IntN(900)) * time.Millisecond)
		// SIGKILL: no graceful shutdown, no deferred cleanup.
		if err := svc.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-svc.done
		close(stop)
		wg.Wait()
	}
	if len(acked) < 20 {
		t.Fatalf("only %d messages acknowledged; the test did not exercise delivery (first error: %v)", len(acked), firstErr)
	}

	// Restart once so recovery runs, then read the mailbox directly.
	svc := startServe(t, "--config", created.ConfigPath)
	svc.stop(t)
	store, err := mailstore.Open(filepath.Join(dir, "mail"), mailstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	u, err := store.User(server.DemoAddress)
	if err != nil {
		t.Fatal(err)
	}
	mb, err := u.Mailbox("INBOX")
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := mb.Messages()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	tokenRE := regexp.MustCompile(`(?m)^Subject: crash (\S+)\r$`)
	for _, m := range msgs {
		f, err := mb.Open(m.UID)
		if err != nil {
			t.Fatalf("uid %d listed but not readable: %v", m.UID, err)
		}
		data, _ := io.ReadAll(f)
		f.Close()
		if int64(len(data)) != m.Size {
			t.Errorf("uid %d: size %d, index says %d", m.UID, len(data), m.Size)
		}
		match := tokenRE.FindSubmatch(data)
		if match == nil || !strings.HasSuffix(string(data), "end of "+string(match[1])+"\r\n") {
			t.Errorf("uid %d is partial or foreign:\n%.300s", m.UID, data)
			continue
		}
		seen[string(match[1])]++
	}
	for token := range acked {
		if seen[token] != 1 {
			t.Errorf("acknowledged message %s is in the mailbox %d times", token, seen[token])
		}
	}
	for token, n := range seen {
		if n > 1 {
			t.Errorf("message %s stored %d times", token, n)
		}
	}
	t.Logf("%d rounds: %d messages acknowledged, %d in the mailbox (unacknowledged ones may or may not be there)", rounds, len(acked), len(msgs))
}

// submit sends one message over STARTTLS with AUTH PLAIN to the demo
// account itself.
func submit(addr, password, token string) error {
	return submitTo(addr, password, token, server.DemoAddress)
}

// submitTo sends one message as the demo account over STARTTLS with AUTH
// PLAIN.
func submitTo(addr, password, token, to string) error {
	c, err := smtp.DialStartTLS(addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", server.DemoAddress, password)); err != nil {
		return err
	}
	body := fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: crash %s\r\n\r\n%s\r\nend of %s\r\n",
		server.DemoAddress, to, token, strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n", 64), token)
	if err := c.SendMail(server.DemoAddress, []string{to}, strings.NewReader(body)); err != nil {
		return err
	}
	return c.Quit()
}
