package migrate

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailsetup/server/accounts"
	"mailsetup/server/mailstore"
)

// fakePOP3 is an old server on loopback with one mailbox, listing the
// given UIDLs; it fails the test on DELE. stall makes it stop answering
// after the greeting.
type fakePOP3 struct {
	addr  string
	uidls []string
	msgs  []string
	stall bool
}

func startFake(t *testing.T, f *fakePOP3) *fakePOP3 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	f.addr = ln.Addr().String()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go f.serve(t, c)
		}
	}()
	return f
}

func (f *fakePOP3) serve(t *testing.T, c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	w := func(s string) { fmt.Fprintf(c, "%s\r\n", s) }
	w("+OK fake")
	if f.stall {
		time.Sleep(3 * time.Second)
		return
	}
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(strings.TrimSpace(line), " ")
		switch strings.ToUpper(verb) {
		case "CAPA":
			w("+OK")
			w("USER")
			w("UIDL")
			w(".")
		case "USER":
			w("+OK")
		case "PASS":
			if arg != "secret" {
				w("-ERR [AUTH] wrong")
				continue
			}
			w("+OK")
		case "UIDL", "LIST":
			w("+OK")
			for i, u := range f.uidls {
				if verb == "LIST" {
					u = fmt.Sprint(len(f.msgs[i]) + strings.Count(f.msgs[i], "\n"))
				}
				w(fmt.Sprintf("%d %s", i+1, u))
			}
			w(".")
		case "RETR":
			var n int
			fmt.Sscan(arg, &n)
			w("+OK")
			for _, l := range strings.Split(f.msgs[n-1], "\n") {
				if strings.HasPrefix(l, ".") {
					l = "." + l
				}
				w(l)
			}
			w(".")
		case "QUIT":
			w("+OK bye")
			return
		default:
			t.Errorf("the import sent %q", line)
			w("-ERR no")
		}
	}
}

// target is an empty storage with the account demo@example.test, and
// its root.
func target(t *testing.T, maxSize int64) (Target, string) {
	t.Helper()
	dir := t.TempDir()
	accts, err := accounts.Open(filepath.Join(dir, "accounts.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := accts.Add("demo@example.test", "a password"); err != nil {
		t.Fatal(err)
	}
	store, err := mailstore.Open(filepath.Join(dir, "mail"), mailstore.Options{NoSync: true, Hostname: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return Target{Mail: store, Accounts: accts, MaxMessageBytes: maxSize}, filepath.Join(dir, "mail")
}

func inboxUIDLs(t *testing.T, tg Target) []string {
	t.Helper()
	var out []string
	for _, m := range inboxMessages(t, tg) {
		out = append(out, m.UIDL)
	}
	return out
}

// TestImportPOP3BadUIDLsAndLimits: UIDLs RFC 1939 forbids and a UIDL
// listed twice are refused with the reason, a message over the size
// limit too, the rest imports; a second run skips what is there; verify
// counts the refused ones as downloads again and reads the UIDLs from
// the file names as the store names them.
func TestImportPOP3BadUIDLsAndLimits(t *testing.T) {
	long := strings.Repeat("x", 71)
	f := startFake(t, &fakePOP3{
		uidls: []string{"good-1", long, "sp\x7fce", "good-1", "big", "good-2"},
		msgs: []string{"Subject: 1\n\nbody\n.dot line\n", "Subject: 2\n\nb\n", "Subject: 3\n\nb\n", "Subject: 4\n\nb\n",
			"Subject: 5\n\n" + strings.Repeat("y", 2000) + "\n", "Subject: 6\n\nb\n"},
	})
	tg, root := target(t, 1024)
	src := POP3Source{Addr: f.addr, Security: SecurityNone, Timeout: 5 * time.Second}
	list := []POP3Account{{Address: "demo@example.test", Username: "demo", Password: "secret"}, {Address: "nobody@example.test", Username: "x", Password: "secret"}}
	rep := ImportPOP3(context.Background(), tg, src, list, Options{})
	a := rep.Accounts[0]
	if a.Found != 6 || a.Imported != 2 || a.Skipped != 0 || len(a.Refused) != 4 || a.Error != "" {
		t.Fatalf("%+v", a)
	}
	for i, want := range []string{"71 characters", "byte 0x7f", "also for message 1", "larger than mail.max_message_bytes"} {
		if !strings.Contains(a.Refused[i].Reason, want) {
			t.Errorf("refusal %d: %+v, want %q", i, a.Refused[i], want)
		}
	}
	if !strings.Contains(rep.Accounts[1].Error, "no account nobody@example.test") {
		t.Errorf("missing account: %+v", rep.Accounts[1])
	}
	if got := strings.Join(inboxUIDLs(t, tg), " "); got != "good-1 good-2" {
		t.Errorf("INBOX UIDLs %q", got)
	}
	if rep.OK() || rep.Totals.Imported != 2 || rep.Totals.Failed != 1 || rep.Totals.Refused != 4 {
		t.Errorf("totals %+v", rep.Totals)
	}

	rep = ImportPOP3(context.Background(), tg, src, list[:1], Options{})
	if a := rep.Accounts[0]; a.Imported != 0 || a.Skipped != 2 {
		t.Errorf("second run: %+v", a)
	}

	v := VerifyPOP3(context.Background(), root, tg.Accounts, src, list[:1], Options{})
	if v.Messages != 6 || v.Redownload != 4 || len(v.Differ) != 1 || v.Checked[0].Ours != 2 {
		t.Errorf("verify: %+v", v)
	}
}

// TestImportPOP3WrongPasswordAndStall: a refused login and a server that
// stops answering each fail their account with the reason, within the
// deadline.
func TestImportPOP3WrongPasswordAndStall(t *testing.T) {
	f := startFake(t, &fakePOP3{uidls: []string{"a"}, msgs: []string{"Subject: a\n\nb\n"}})
	stalled := startFake(t, &fakePOP3{stall: true})
	tg, _ := target(t, 0)
	list := []POP3Account{{Address: "demo@example.test", Username: "demo", Password: "wrong"}}
	rep := ImportPOP3(context.Background(), tg, POP3Source{Addr: f.addr, Security: SecurityNone, Timeout: 5 * time.Second}, list, Options{})
	if e := rep.Accounts[0].Error; !strings.Contains(e, "PASS with -ERR [AUTH] wrong") || strings.Contains(e, "wrong\"") {
		t.Errorf("wrong password: %q", e)
	}
	start := time.Now()
	rep = ImportPOP3(context.Background(), tg, POP3Source{Addr: stalled.addr, Security: SecurityNone, Timeout: 300 * time.Millisecond}, list, Options{})
	if e := rep.Accounts[0].Error; !strings.Contains(e, "timeout") {
		t.Errorf("stalled server: %q", e)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("stalled server: took %v with a 300ms deadline", d)
	}
}

// TestUIDLOfFileAgreesWithStore: verify's reading of file names gives
// the UIDLs the store serves.
func TestUIDLOfFileAgreesWithStore(t *testing.T) {
	tg, root := target(t, 0)
	u, err := tg.Mail.User("demo@example.test")
	if err != nil {
		t.Fatal(err)
	}
	for _, uidl := range []string{"", "000000016b15eee9", "with,comma:colon=eq", ""} {
		if _, err := u.Deliver(mailstore.Inbox, strings.NewReader("Subject: x\n\nb\n"), mailstore.DeliverOptions{UIDL: uidl, Flags: []string{`\Seen`}}); err != nil {
			t.Fatal(err)
		}
	}
	uidls := inboxUIDLs(t, tg)
	got, err := StoredUIDLs(root, "Demo@Example.test")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(uidls) {
		t.Errorf("%d UIDLs from file names, %d messages", len(got), len(uidls))
	}
	for _, uidl := range uidls {
		if !got[uidl] {
			t.Errorf("UIDL %q not read from the file names %v", uidl, got)
		}
	}
}
