// Command mailload is the load generator for the mail benchmarks: it
// drives an SMTP submission server or an IMAP server (ours or a reference
// server such as Postfix or Dovecot) on loopback and reports throughput
// and latency. Every run is bounded in time and count and stops by itself.
//
//	mailload submit -addr 127.0.0.1:10587 -user U -pass P -to R [-clients 20] [-duration 15s] [-size 10240] [-per-conn 1] [-implicit]
//	mailload imap -addr 127.0.0.1:10993 -user U -pass P [-repeat 5] [-fetch 100]
//	mailload idle -addr 127.0.0.1:10993 -user U -pass P [-conns 200] [-hold 10s]
//	mailload outbound -addr 127.0.0.1:10587 -user U -pass P -to 'user%d@remote.test' -maildir DIR [-rcpts 100] [-n 10000] [-size 10240] [-clients 10]
//	mailload dns -addr 127.0.0.1:20053 -rr 'remote.test. 60 IN MX 10 mx.remote.test.' [-rr ...] [-duration 30m]
//	mailload pop3 -addr 127.0.0.1:10995 -user 'user%d@example.test' -users 10 -pass P [-clients 50] [-duration 15s]
//
// Imports: the standard library, the mail client libraries and miekg/dns only,
// nothing of the project, so it measures any server alike.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "mailload:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New("want a mode: submit, imap, idle, pop3 or outbound")
	}
	switch args[0] {
	case "submit":
		return runSubmit(ctx, args[1:], out)
	case "imap":
		return runIMAP(ctx, args[1:], out)
	case "idle":
		return runIdle(ctx, args[1:], out)
	case "pop3":
		return runPOP3(ctx, args[1:], out)
	case "outbound":
		return runOutbound(ctx, args[1:], out)
	case "dns":
		return runDNS(ctx, args[1:], out)
	}
	return fmt.Errorf("unknown mode %q: want submit, imap, idle, pop3 or outbound", args[0])
}

// latencies collects per-operation durations.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

func (l *latencies) quantile(q float64) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return 0
	}
	s := slices.Clone(l.d)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

func runSubmit(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("submit", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:10587", "submission server")
	user := fs.String("user", "", "username (full address)")
	pass := fs.String("pass", "", "password")
	from := fs.String("from", "", "envelope sender (default: user)")
	to := fs.String("to", "", "recipient")
	clients := fs.Int("clients", 20, "concurrent clients")
	duration := fs.Duration("duration", 15*time.Second, "how long to send")
	size := fs.Int("size", 10240, "message size in bytes")
	perConn := fs.Int("per-conn", 1, "messages per connection (each connection does STARTTLS and AUTH)")
	implicit := fs.Bool("implicit", false, "implicit TLS (465) instead of STARTTLS")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *user == "" || *to == "" {
		return errors.New("submit: -user and -to are required")
	}
	if *from == "" {
		*from = *user
	}
	if *duration > 10*time.Minute || *clients > 1000 {
		return errors.New("submit: at most 10 minutes and 1000 clients")
	}
	msg := message(*from, *to, *size)
	ctx, cancel := context.WithTimeout(ctx, *duration)
	defer cancel()
	var sent, failed atomic.Int64
	var lat latencies
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < *clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				n, err := submitSession(*addr, *implicit, *user, *pass, *from, *to, msg, *perConn, &lat)
				sent.Add(int64(n))
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
					time.Sleep(10 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	fmt.Fprintf(out, "submit %s: %d clients, %d-byte messages, %d per connection, %v\n", *addr, *clients, *size, *perConn, elapsed.Round(time.Millisecond))
	fmt.Fprintf(out, "messages/s %.1f  sent %d  failed sessions %d  latency per message p50 %v p99 %v\n",
		float64(sent.Load())/elapsed.Seconds(), sent.Load(), failed.Load(), lat.quantile(0.5).Round(time.Microsecond), lat.quantile(0.99).Round(time.Microsecond))
	if e := firstErr.Load(); e != nil {
		fmt.Fprintf(out, "first error: %v\n", e)
	}
	return nil
}

// message builds a message of about size bytes with 76-column lines.
func message(from, to string, size int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: load test\r\nMessage-ID: <load@mailload>\r\n\r\n", from, to)
	line := strings.Repeat("abcdefghij", 7) + "012345\r\n"
	for b.Len() < size {
		b.WriteString(line)
	}
	return []byte(b.String())
}
