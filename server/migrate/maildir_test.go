package migrate

import (
	"context"
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
