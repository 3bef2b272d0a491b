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
