package migrate

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"mailsetup/server/mailstore"
)

// TestImportMaildir: a Dovecot Maildir with a saved POP3 UIDL (P wins
// over the format), flags and keywords from the ":2," suffix, the date
// from the mtime, and a file Dovecot has not given a UID yet (refused:
// its UIDL under %u%v is not known).
func TestImportMaildir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "Maildir")
	for _, d := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	write := func(name, content string, mtime time.Time) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	date := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	write("cur/1700000001.M1P1.host:2,FSa", "Subject: one\n\nbody\n", date)
	write("cur/1700000002.M1P1.host,S=20:2,", "Subject: two\n\nbody\n", date)
	write("new/1700000003.M1P1.host", "Subject: new\n\nbody\n", date)
	write("dovecot-uidlist", "3 V1796599529 N3\n1 :1700000001.M1P1.host\n2 Psaved-uidl :1700000002.M1P1.host,S=20\n", date)
	write("dovecot-keywords", "0 $Forwarded\n", date)

	tg, _ := target(t, 0)
	f, err := ParseUIDLFormat(DefaultUIDLFormat)
	if err != nil {
		t.Fatal(err)
	}
	list := []MaildirAccount{{Address: "demo@example.test", Path: dir}}
	rep := ImportMaildir(context.Background(), tg, MaildirSource{UIDLFormat: f}, list, Options{})
	a := rep.Accounts[0]
	if a.Found != 3 || a.Imported != 2 || len(a.Refused) != 1 || !strings.Contains(a.Refused[0].Reason, "not in dovecot-uidlist") || a.Error != "" {
		t.Fatalf("%+v", a)
	}
	u, _ := tg.Mail.User("demo@example.test")
	mb, _ := u.Mailbox(mailstore.Inbox)
	msgs, err := mb.Messages()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 || msgs[0].UIDL != "000000016b15eee9" || msgs[1].UIDL != "saved-uidl" {
		t.Fatalf("%+v", msgs)
	}
	if want := []string{"$Forwarded", `\Flagged`, `\Seen`}; !slices.Equal(sorted(msgs[0].Flags), sorted(want)) {
		t.Errorf("flags %q, want %q", msgs[0].Flags, want)
	}
	if !msgs[0].InternalDate.Equal(date) {
		t.Errorf("date %v, want %v", msgs[0].InternalDate, date)
	}

	// %f needs no UID: the third imports now, the others are the same
	// files under other UIDLs (%f of the first, P of the second).
	f, _ = ParseUIDLFormat("%f")
	rep = ImportMaildir(context.Background(), tg, MaildirSource{UIDLFormat: f}, list, Options{})
	if a := rep.Accounts[0]; a.Imported != 2 || a.Skipped != 1 {
		t.Errorf("%%f: %+v", a)
	}

	// %m: Dovecot served empty UIDLs on a Maildir: refused, except the
	// message with a saved POP3 UIDL (P), which is here already.
	f, _ = ParseUIDLFormat("%m")
	rep = ImportMaildir(context.Background(), tg, MaildirSource{UIDLFormat: f}, list, Options{})
	if a := rep.Accounts[0]; a.Imported != 0 || a.Skipped != 1 || len(a.Refused) != 2 || !strings.Contains(a.Refused[0].Reason, "Dovecot fills only for mbox") {
		t.Errorf("%%m: %+v", a)
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// TestImportBatchesLimits: an import larger than a batch, with the
// account's quota running out in the middle of the third batch and a
// message over mail.max_message_bytes: what fits is imported and
// counted, the rest refused with the reason, each exactly once over
// three runs (the second skips, the third, after the quota is lifted,
// imports the rest).
func TestImportBatchesLimits(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "Maildir")
	for _, d := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	const n, size = 300, 100
	for i := range n {
		body := fmt.Sprintf("Subject: %03d\r\n\r\n", i)
		body += strings.Repeat("x", size-len(body)-2) + "\r\n"
		if i == 10 {
			body += strings.Repeat("y", 5000)
		}
		if err := os.WriteFile(filepath.Join(dir, "cur", fmt.Sprintf("1700000%03d.M1P1.host:2,S", i)), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tg, _ := target(t, 4096)
	const fit = 250 // the quota holds this many
	if err := tg.Accounts.SetQuota("demo@example.test", fit*size); err != nil {
		t.Fatal(err)
	}
	list := []MaildirAccount{{Address: "demo@example.test", Path: dir}}
	src := MaildirSource{Server: ServerQmail}
	check := func(run string, imported, skipped, overQuota int) {
		t.Helper()
		a := ImportMaildir(context.Background(), tg, src, list, Options{}).Accounts[0]
		q, big := 0, 0
		for _, r := range a.Refused {
			switch {
			case strings.Contains(r.Reason, "over the account's quota"):
				q++
			case strings.Contains(r.Reason, "larger than mail.max_message_bytes (4096)") && r.UIDL == "1700000010.M1P1.host":
				big++
			default:
				t.Errorf("%s: refused %+v", run, r)
			}
		}
		if a.Found != n || a.Imported != imported || a.Skipped != skipped || q != overQuota || big != 1 || a.Error != "" || a.Bytes != int64(imported*size) {
			t.Errorf("%s: found %d, imported %d, skipped %d, over quota %d, too large %d, %d bytes, error %q; want imported %d, skipped %d, over quota %d",
				run, a.Found, a.Imported, a.Skipped, q, big, a.Bytes, a.Error, imported, skipped, overQuota)
		}
	}
	check("first", fit, 0, n-1-fit)
	check("again", 0, fit, n-1-fit)
	if err := tg.Accounts.SetQuota("demo@example.test", 0); err != nil {
		t.Fatal(err)
	}
	check("quota lifted", n-1-fit, fit, 0)
	uidls := inboxUIDLs(t, tg)
	if len(uidls) != n-1 || len(slices.Compact(sorted(uidls))) != n-1 {
		t.Errorf("%d messages in the INBOX, %d UIDLs, want %d", len(uidls), len(slices.Compact(sorted(uidls))), n-1)
	}
}
