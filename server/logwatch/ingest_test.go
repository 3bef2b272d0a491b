package logwatch

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mailsetup/server/events"
)

// The ingestion benchmark (.ci/bench-observe.sh): LOGWATCH_GENERATE=FILE
// writes LOGWATCH_LINES lines of a realistic Debian mail.log (Dovecot
// and Postfix through syslog into one file, as Debian's packages do);
// LOGWATCH_INGEST=FILE reads it with a Dovecot and a Postfix source, as
// a config with both pointing at mail.log does, and prints the rate and
// the peak memory.

// TestGenerateLog writes the benchmark's log.
func TestGenerateLog(t *testing.T) {
	path := os.Getenv("LOGWATCH_GENERATE")
	if path == "" {
		t.Skip("LOGWATCH_GENERATE=FILE writes the ingestion benchmark's log")
	}
	n, _ := strconv.Atoi(os.Getenv("LOGWATCH_LINES"))
	if n <= 0 {
		n = 1_000_000
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	rnd := rand.New(rand.NewPCG(1, 2))
	at := time.Now().Add(-2 * time.Hour)
	written := 0
	line := func(format string, args ...any) {
		if written < n {
			fmt.Fprintf(w, "%s mail %s\n", at.Format(time.Stamp), fmt.Sprintf(format, args...))
			written++
		}
	}
	for i := 0; written < n; i++ {
		at = at.Add(7 * time.Millisecond)
		user := fmt.Sprintf("user%d@example.test", rnd.IntN(20000))
		ip := fmt.Sprintf("198.51.%d.%d", rnd.IntN(256), rnd.IntN(256))
		sess := strconv.FormatUint(rnd.Uint64(), 36)
		pid := 1000 + rnd.IntN(30000)
		switch r := rnd.IntN(100); {
		case r < 35: // a POP3 session that keeps mail
			line("dovecot: pop3-login: Login: user=<%s>, method=PLAIN, rip=%s, lip=192.0.2.1, mpid=%d, TLS, session=<%s>", user, ip, pid, sess)
			m := 1 + rnd.IntN(300)
			line("dovecot: pop3(%s)<%d><%s>: Disconnected: Logged out top=0/0, retr=%d/%d, del=0/%d, size=%d, uidl_hash=%d/%08x", user, pid, sess, 1, 4000, m, m*9000, m, rnd.Uint32())
		case r < 60: // IMAP with its ID
			line("dovecot: imap-login: ID sent: name=Thunderbird, version=115.%d: user=<>, rip=%s, lip=192.0.2.1, TLS, session=<%s>", rnd.IntN(9), ip, sess)
			line("dovecot: imap-login: Login: user=<%s>, method=PLAIN, rip=%s, lip=192.0.2.1, mpid=%d, TLS, session=<%s>", user, ip, pid, sess)
			line("dovecot: imap(%s)<%d><%s>: Disconnected: Logged out in=%d out=%d deleted=0 expunged=0 trashed=0 hdr_count=0 hdr_bytes=0 body_count=0 body_bytes=0", user, pid, sess, rnd.IntN(9999), rnd.IntN(99999))
		case r < 68: // a wrong password, or the bare local part
			u := user
			if r < 64 {
				u = strings.TrimSuffix(user, "@example.test")
			}
			line("dovecot: auth: passwd-file(%s,%s,<%s>): Password mismatch", u, ip, sess)
			line("dovecot: imap-login: Disconnected: Connection closed (auth failed, 1 attempts in 2 secs): user=<%s>, method=PLAIN, rip=%s, lip=192.0.2.1, TLS, session=<%s>", u, ip, sess)
		case r < 88: // a submission
			id := fmt.Sprintf("%X", rnd.Uint64()>>24)
			line("postfix/submission/smtpd[%d]: connect from unknown[%s]", pid, ip)
			line("postfix/submission/smtpd[%d]: Anonymous TLS connection established from unknown[%s]: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)", pid, ip)
			line("postfix/submission/smtpd[%d]: %s: client=unknown[%s], sasl_method=PLAIN, sasl_username=%s", pid, id, ip, user)
			line("postfix/cleanup[%d]: %s: message-id=<%s@example.test>", pid+1, id, sess)
			line("postfix/qmgr[900]: %s: from=<%s>, size=%d, nrcpt=1 (queue active)", id, user, 1000+rnd.IntN(90000))
			line("postfix/smtp[%d]: %s: to=<someone@example.org>, relay=mx.example.org[203.0.113.5]:25, delay=0.4, delays=0.01/0/0.2/0.2, dsn=2.0.0, status=sent (250 2.0.0 Ok)", pid+2, id)
			line("postfix/qmgr[900]: %s: removed", id)
			line("postfix/submission/smtpd[%d]: disconnect from unknown[%s] ehlo=2 starttls=1 auth=1 mail=1 rcpt=1 data=1 quit=1 commands=8", pid, ip)
		case r < 95: // no AUTH, a SASL failure
			line("postfix/smtpd[%d]: connect from unknown[%s]", pid, ip)
			line("postfix/smtpd[%d]: NOQUEUE: reject: RCPT from unknown[%s]: 454 4.7.1 <x@example.org>: Relay access denied; from=<%s> to=<x@example.org> proto=ESMTP helo=<pc>", pid, ip, user)
			line("postfix/smtpd[%d]: warning: unknown[%s]: SASL LOGIN authentication failed: UGFzc3dvcmQ6, sasl_username=%s", pid, ip, user)
			line("postfix/smtpd[%d]: disconnect from unknown[%s] ehlo=1 mail=1 rcpt=0/1 quit=1 commands=3/4", pid, ip)
		default: // the rest of a mail server's day
			line("dovecot: lmtp(%s)<%d><%s>: msgid=<%s@example.org>: saved mail to INBOX", user, pid, sess, sess)
			line("kernel: [%d.%06d] TCP: request_sock_TCP: Possible SYN flooding on port 25.", rnd.IntN(99999), rnd.IntN(999999))
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestIngestFile reads LOGWATCH_INGEST with a Dovecot and a Postfix
// source (the follower from the file's start, the parsers, the counts,
// the events into a counting sink) and prints the rate.
func TestIngestFile(t *testing.T) {
	path := os.Getenv("LOGWATCH_INGEST")
	if path == "" {
		t.Skip("LOGWATCH_INGEST=FILE measures the ingestion of a log")
	}
	var mu sync.Mutex
	counts := map[Result]int{}
	sink := &countSink{}
	start := time.Now()
	var wg sync.WaitGroup
	for _, kind := range Kinds() {
		w := New(Options{Name: string(kind), Kind: kind, Sink: sink,
			Parser: ParserOptions{IsLocal: func(d string) bool { return d == "example.test" }},
			Count: func(_ string, r Result) {
				mu.Lock()
				counts[r]++
				mu.Unlock()
			}})
		wg.Go(func() {
			f := &follower{w: w, path: path, buf: make([]byte, chunk)}
			if !f.open(false) {
				t.Error("cannot open", path)
				return
			}
			f.drain()
			f.close()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	lines := 0
	for _, n := range counts {
		lines += n
	}
	lines /= 2 // each line is read by both sources
	status, _ := os.ReadFile("/proc/self/status")
	var hwm string
	for _, l := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			hwm = strings.Join(strings.Fields(l)[1:], " ")
		}
	}
	fmt.Printf("ingest: %d lines in %.2f s: %.0f lines/s (both sources); events %d; results %v; peak RSS %s\n",
		lines, elapsed.Seconds(), float64(lines)/elapsed.Seconds(), sink.n.Load(), counts, hwm)
}

type countSink struct{ n atomic.Int64 }

func (s *countSink) Emit(events.Event) { s.n.Add(1) }
