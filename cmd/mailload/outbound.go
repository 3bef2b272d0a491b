package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// runOutbound measures delivery to another domain: it submits n messages
// (each to one of -rcpts recipients, in turn) through a submission
// server that relays them (mailsetup's queue, or a relaying Postfix),
// then waits until the remote MX's Maildirs hold them all. It reports
// messages/s from the first submission to the last delivery, and each
// message's latency from its submission's 250 to its file at the MX
// (the file's modification time).
func runOutbound(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("outbound", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:10587", "submission server")
	user := fs.String("user", "", "username (full address)")
	pass := fs.String("pass", "", "password (empty: no AUTH)")
	to := fs.String("to", "user%d@remote.test", "recipient pattern, %d is 1..rcpts")
	rcpts := fs.Int("rcpts", 100, "recipients")
	n := fs.Int("n", 10000, "messages")
	size := fs.Int("size", 10240, "message size in bytes")
	clients := fs.Int("clients", 10, "concurrent submission sessions")
	perConn := fs.Int("per-conn", 100, "messages per submission session")
	maildir := fs.String("maildir", "", "the MX's Maildir base: DIR/<local part>/new/ holds the delivered files")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *user == "" || *maildir == "" || !strings.Contains(*to, "%d") {
		return errors.New("outbound: -user, -maildir and a -to pattern with %d are required")
	}
	if *n > 100000 || *clients > 200 || *timeout > 30*time.Minute {
		return errors.New("outbound: at most 100000 messages, 200 clients, 30 minutes")
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	acked := make([]time.Time, *n)
	work := make(chan int, *n) // message numbers still to submit
	for i := range *n {
		work <- i
	}
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for range *clients {
		wg.Go(func() {
			for ctx.Err() == nil && len(work) > 0 {
				if err := outboundSession(*addr, *user, *pass, *to, *rcpts, *size, run, *perConn, work, acked); err != nil {
					firstErr.CompareAndSwap(nil, err)
					time.Sleep(50 * time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	submitted := time.Since(start)
	// Wait for the MX to hold every message, then read their times.
	delivered := map[int]time.Time{}
	seen := map[string]bool{}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for len(delivered) < *n && ctx.Err() == nil {
		files, _ := filepath.Glob(filepath.Join(*maildir, "*", "new", "*"))
		for _, f := range files {
			if seen[f] {
				continue
			}
			i, ok := tokenOf(f, run)
			if !ok {
				continue
			}
			fi, err := os.Stat(f)
			if err != nil {
				continue
			}
			seen[f] = true
			if _, dup := delivered[i]; !dup {
				delivered[i] = fi.ModTime()
			}
		}
		if len(delivered) < *n {
			select {
			case <-ctx.Done():
			case <-tick.C:
			}
		}
	}
	var lat latencies
	var last time.Time
	for i, t := range delivered {
		if !acked[i].IsZero() {
			lat.add(t.Sub(acked[i]))
		}
		if t.After(last) {
			last = t
		}
	}
	total := last.Sub(start)
	fmt.Fprintf(out, "outbound via %s: %d messages of %d bytes to %d recipients; submitted in %v, all delivered after %v\n",
		*addr, *n, *size, *rcpts, submitted.Round(time.Millisecond), total.Round(time.Millisecond))
	fmt.Fprintf(out, "messages/s %.1f  delivered %d  latency (250 on submission to the file at the MX) p50 %v p99 %v\n",
		float64(len(delivered))/total.Seconds(), len(delivered), lat.quantile(0.5).Round(time.Millisecond), lat.quantile(0.99).Round(time.Millisecond))
	if e := firstErr.Load(); e != nil {
		fmt.Fprintf(out, "first error: %v\n", e)
	}
	if len(delivered) < *n {
		return fmt.Errorf("outbound: only %d of %d delivered within %v", len(delivered), *n, *timeout)
	}
	return nil
}

// outboundSession submits up to perConn messages over one STARTTLS
// session, taking their numbers from work (and giving back one it could
// not send).
func outboundSession(addr, user, pass, to string, rcpts, size int, run string, perConn int, work chan int, acked []time.Time) error {
	c, err := smtp.DialStartTLS(addr, &tls.Config{InsecureSkipVerify: true}) // loopback benchmark, self-signed certificates
	if err != nil {
		return err
	}
	defer c.Close()
	if pass != "" {
		if err := c.Auth(sasl.NewPlainClient("", user, pass)); err != nil {
			return err
		}
	}
	for range perConn {
		var i int
		select {
		case i = <-work:
		default:
			return c.Quit()
		}
		rcpt := fmt.Sprintf(to, i%rcpts+1)
		msg := message(user, rcpt, size)
		msg = bytes.Replace(msg, []byte("Message-ID: <load@mailload>"), fmt.Appendf(nil, "Message-ID: <%s.%d@mailload>\r\nX-Mailload: %s %d", run, i, run, i), 1)
		if err := c.SendMail(user, []string{rcpt}, bytes.NewReader(msg)); err != nil {
			work <- i // not acknowledged: submitted again
			return err
		}
		acked[i] = time.Now()
	}
	return c.Quit()
}

// tokenOf reads the X-Mailload header of a delivered file: the message's
// number in this run.
func tokenOf(path, run string) (int, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	head := make([]byte, 8192)
	k, _ := io.ReadFull(f, head)
	head = head[:k]
	_, after, ok := bytes.Cut(head, []byte("X-Mailload: "+run+" "))
	if !ok {
		return 0, false
	}
	end := bytes.IndexAny(after, "\r\n")
	if end < 0 {
		return 0, false
	}
	i, err := strconv.Atoi(string(after[:end]))
	return i, err == nil
}
