package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// runPOP3 runs POP3 sessions USER/PASS/STAT/UIDL/QUIT over implicit TLS
// from many clients at once, the load of the incident: many users with
// many messages left on the server checking mail at the same time.
func runPOP3(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("pop3", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:10995", "POP3S server")
	user := fs.String("user", "", `username; with "%d" and -users N, client i logs in as user number i mod N + 1`)
	users := fs.Int("users", 1, "number of distinct users for a -user with %d")
	pass := fs.String("pass", "", "password")
	clients := fs.Int("clients", 50, "concurrent clients")
	duration := fs.Duration("duration", 15*time.Second, "how long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *user == "" || *clients > 1000 || *duration > 10*time.Minute {
		return errors.New("pop3: -user required; at most 1000 clients and 10 minutes")
	}
	ctx, cancel := context.WithTimeout(ctx, *duration)
	defer cancel()
	var done, failed atomic.Int64
	var lat latencies
	var firstErr atomic.Value
	var msgs atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < *clients; i++ {
		wg.Add(1)
		name := *user
		if strings.Contains(name, "%d") {
			name = fmt.Sprintf(name, i%max(*users, 1)+1)
		}
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				t0 := time.Now()
				n, err := pop3Session(*addr, name, *pass)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
					time.Sleep(10 * time.Millisecond)
					continue
				}
				msgs.Store(int64(n))
				lat.add(time.Since(t0))
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	fmt.Fprintf(out, "pop3 %s: %d clients, %d messages in the maildrop, %v\n", *addr, *clients, msgs.Load(), elapsed.Round(time.Millisecond))
	fmt.Fprintf(out, "sessions/s %.1f  sessions %d  failed %d  p50 %v p99 %v\n", float64(done.Load())/elapsed.Seconds(), done.Load(), failed.Load(),
		lat.quantile(0.5).Round(time.Microsecond), lat.quantile(0.99).Round(time.Microsecond))
	if e := firstErr.Load(); e != nil {
		fmt.Fprintf(out, "first error: %v\n", e)
	}
	return nil
}

// pop3Session runs one session and returns the number of messages.
func pop3Session(addr, user, pass string) (int, error) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 30 * time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true}) // loopback benchmark
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(60 * time.Second))
	r := bufio.NewReaderSize(conn, 64<<10)
	line := func() (string, error) {
		l, err := r.ReadString('\n')
		if err != nil {
			return "", err
		}
		if !strings.HasPrefix(l, "+OK") {
			return "", fmt.Errorf("pop3: %q", strings.TrimSpace(l))
		}
		return l, nil
	}
	cmd := func(c string) (string, error) {
		if _, err := io.WriteString(conn, c+"\r\n"); err != nil {
			return "", err
		}
		return line()
	}
	if _, err := line(); err != nil {
		return 0, err
	}
	if _, err := cmd("USER " + user); err != nil {
		return 0, err
	}
	if _, err := cmd("PASS " + pass); err != nil {
		return 0, err
	}
	stat, err := cmd("STAT")
	if err != nil {
		return 0, err
	}
	var n int
	fmt.Sscanf(stat, "+OK %d", &n)
	if _, err := cmd("UIDL"); err != nil {
		return 0, err
	}
	count := 0
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			return 0, err
		}
		if l == ".\r\n" {
			break
		}
		count++
	}
	if count != n {
		return 0, fmt.Errorf("pop3: UIDL listed %d of %d messages", count, n)
	}
	_, err = cmd("QUIT")
	return n, err
}
