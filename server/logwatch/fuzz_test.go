package logwatch

import (
	"bufio"
	"os"
	"testing"
)

// FuzzLine: no line crashes a parser, and what comes out is sane.
func FuzzLine(f *testing.F) {
	for _, name := range []string{"testdata/dovecot.log", "testdata/postfix.log"} {
		fh, err := os.Open(name)
		if err != nil {
			f.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			f.Add(sc.Text())
		}
		fh.Close()
	}
	f.Add("Dec  7 00:48:29 pop3(u@example.test)<1><s>: Disconnected: Logged out retr=-1/0, del=1/-4, size=-9, uidl_hash=5/zz -> x")
	f.Add("2026-12-07T00:47:36Z mail dovecot[: imap-login: Login: user=<, rip=[::1")
	f.Fuzz(func(t *testing.T, line string) {
		for _, kind := range Kinds() {
			p := testParser(kind)
			for range 2 {
				ev, r := p.Line(line)
				if r != ResultEvent && ev.Kind != "" {
					t.Fatalf("%s with an event %+v", r, ev)
				}
				if r == ResultEvent && (ev.Kind == "" || ev.Retrieved < 0 || ev.Messages < 0 || ev.Bytes < 0 || ev.Deleted < 0) {
					t.Fatalf("event %+v", ev)
				}
			}
			if len(p.state.m) > maxSessions {
				t.Fatal("sessions unbounded")
			}
		}
	})
}

// FuzzSyslog: no syslog message crashes the listener's parsing.
func FuzzSyslog(f *testing.F) {
	f.Add("<22>1 2026-12-07T00:47:36.1Z mail dovecot 77 - [a b=\"]\"] imap-login: Login: user=<u@example.test>, rip=192.0.2.7")
	f.Add("<22>Dec  7 00:47:36 mail postfix/smtpd[1]: NOQUEUE: reject: RCPT from x[192.0.2.9]: 554 no; from=<u@example.test> to=<a@b> helo=<h>")
	f.Add("<22>1 - - - - - [")
	f.Add("<9999")
	f.Fuzz(func(t *testing.T, m string) {
		for _, kind := range Kinds() {
			c := &collect{}
			w := New(Options{Name: "fuzz", Kind: kind, Sink: c, Count: c.count, Parser: testParser(kind).opts})
			w.Syslog(m)
			if n := c.get(ResultEvent); n != len(c.evs) || len(c.counts) == 0 {
				t.Fatalf("counts %v, events %d", c.counts, len(c.evs))
			}
		}
	})
}
