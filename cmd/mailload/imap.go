package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

func dialIMAP(addr, user, pass string) (*imapclient.Client, error) {
	// Loopback benchmark against self-signed test certificates.
	c, err := imapclient.DialTLS(addr, &imapclient.Options{TLSConfig: &tls.Config{InsecureSkipVerify: true}})
	if err != nil {
		return nil, err
	}
	if err := c.Login(user, pass).Wait(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// runIMAP times, on a fresh connection each repeat: SELECT INBOX plus
// UID FETCH 1:* (FLAGS RFC822.SIZE), then FETCH 1:N BODY.PEEK[].
func runIMAP(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("imap", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:10993", "IMAPS server")
	user := fs.String("user", "", "username")
	pass := fs.String("pass", "", "password")
	repeat := fs.Int("repeat", 5, "repetitions (median reported)")
	fetchN := fs.Int("fetch", 100, "messages for the full-body FETCH")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *user == "" || *repeat < 1 || *repeat > 100 {
		return errors.New("imap: -user required, -repeat 1..100")
	}
	var selFetch, bodies latencies
	var count int
	for i := 0; i < *repeat && ctx.Err() == nil; i++ {
		c, err := dialIMAP(*addr, *user, *pass)
		if err != nil {
			return err
		}
		start := time.Now()
		if _, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
			return err
		}
		all := imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}
		msgs, err := c.Fetch(all, &imap.FetchOptions{Flags: true, RFC822Size: true, UID: true}).Collect()
		if err != nil {
			return err
		}
		selFetch.add(time.Since(start))
		count = len(msgs)
		start = time.Now()
		var seq imap.SeqSet
		seq.AddRange(1, uint32(*fetchN))
		got, err := c.Fetch(seq, &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
		if err != nil {
			return err
		}
		bodies.add(time.Since(start))
		if len(got) != min(*fetchN, count) {
			return fmt.Errorf("imap: fetched %d bodies, want %d", len(got), min(*fetchN, count))
		}
		c.Logout().Wait()
		c.Close()
	}
	fmt.Fprintf(out, "imap %s: %d messages; SELECT + UID FETCH 1:* (FLAGS RFC822.SIZE) median %v; FETCH 1:%d BODY.PEEK[] median %v (%d runs)\n",
		*addr, count, selFetch.quantile(0.5).Round(time.Microsecond), *fetchN, bodies.quantile(0.5).Round(time.Microsecond), *repeat)
	return nil
}

// runIdle opens conns logged-in IMAP connections with INBOX selected and
// holds them, so the server's memory can be read meanwhile.
func runIdle(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("idle", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:10993", "IMAPS server")
	user := fs.String("user", "", "username")
	pass := fs.String("pass", "", "password")
	conns := fs.Int("conns", 200, "connections")
	hold := fs.Duration("hold", 10*time.Second, "how long to hold them")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *conns > 2000 || *hold > 10*time.Minute {
		return errors.New("idle: at most 2000 connections and 10 minutes")
	}
	var mu sync.Mutex
	var clients []*imapclient.Client
	var wg sync.WaitGroup
	errs := make(chan error, *conns)
	sem := make(chan struct{}, 20)
	for i := 0; i < *conns; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := dialIMAP(*addr, *user, *pass)
			if err == nil {
				_, err = c.Select("INBOX", nil).Wait()
			}
			if err != nil {
				errs <- err
				return
			}
			mu.Lock()
			clients = append(clients, c)
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(errs)
	fmt.Fprintf(out, "idle %s: %d connections open, holding %v\n", *addr, len(clients), *hold)
	for err := range errs {
		fmt.Fprintf(out, "connection failed: %v\n", err)
		break
	}
	select {
	case <-time.After(*hold):
	case <-ctx.Done():
	}
	for _, c := range clients {
		c.Close()
	}
	return nil
}
