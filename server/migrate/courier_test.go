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

// writeMaildir makes a Maildir at dir with files (path below dir:
// content), all with the modification time date.
func writeMaildir(t *testing.T, dir string, date time.Time, files map[string]string) {
	t.Helper()
	for _, d := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, date, date); err != nil {
			t.Fatal(err)
		}
	}
}

// TestImportQmailMaildir: qmail-pop3d (and vpopmail) serve the file
// name's unique part; flags and date come along; a unique part RFC 1939
// forbids is refused with the reason.
func TestImportQmailMaildir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "Maildir")
	date := time.Date(2023, 1, 2, 3, 4, 5, 0, time.UTC)
	writeMaildir(t, dir, date, map[string]string{
		"cur/1690000001.12345.mail.example.net:2,RS": "Subject: one\n\nbody\n",
		"new/1690000002.12346.mail.example.net":      "Subject: two\n\nbody\n",
		"new/" + strings.Repeat("x", 71):             "Subject: long\n\nbody\n",
	})
	tg, _ := target(t, 0)
	list := []MaildirAccount{{Address: "demo@example.test", Path: dir}}
	rep := ImportMaildir(context.Background(), tg, MaildirSource{Server: ServerQmail}, list, Options{})
	a := rep.Accounts[0]
	if a.Found != 3 || a.Imported != 2 || len(a.Refused) != 1 || !strings.Contains(a.Refused[0].Reason, "at most 70") || a.Error != "" {
		t.Fatalf("%+v", a)
	}
	if !strings.Contains(rep.Source, "qmail") {
		t.Errorf("source %q", rep.Source)
	}
	msgs := inboxMessages(t, tg)
	got := map[string][]string{}
	for _, m := range msgs {
		got[m.UIDL] = sorted(m.Flags)
		if !m.InternalDate.Equal(date) {
			t.Errorf("%s: date %v, want %v", m.UIDL, m.InternalDate, date)
		}
	}
	if f, ok := got["1690000001.12345.mail.example.net"]; !ok || !slices.Equal(f, []string{`\Answered`, `\Seen`}) {
		t.Errorf("first: %v", got)
	}
	if _, ok := got["1690000002.12346.mail.example.net"]; !ok {
		t.Errorf("second: %v", got)
	}
	rep = ImportMaildir(context.Background(), tg, MaildirSource{Server: ServerQmail}, list, Options{})
	if a := rep.Accounts[0]; a.Skipped != 2 || a.Imported != 0 {
		t.Errorf("second run: %+v", a)
	}
}

// TestImportCourierMaildir: a listed message gets UID<uid>-<uidv> from
// courierpop3dsizelist (version 3, a file name with a space and a stale
// flags suffix), a version 2 line too; an unlisted message and one with
// UID 0 get the escaped unique part; a line that does not parse is
// skipped. Keywords come from courierimapkeywords/: ":list", then the
// newest update file (".<n>.<name>", a not yet renamed "<name>" newest).
func TestImportCourierMaildir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "Maildir")
	date := time.Date(2022, 6, 7, 8, 9, 10, 0, time.UTC)
	writeMaildir(t, dir, date, map[string]string{
		"cur/1600000001.M1P1.host:2,S":        "Subject: one\n\nbody\n",
		"cur/1600000002.M2P2.my host:2,FS":    "Subject: two\n\nbody\n",
		"cur/1600000003.M3P3.host:2,":         "Subject: zero\n\nbody\n",
		"new/1600000004.M4P4.host+\"quoted\"": "Subject: unlisted\n\nbody\n",
		"courierpop3dsizelist": "/3 9 1234567890\n" +
			"1600000001.M1P1.host:2, 21 7:1234567890:0\n" +
			"1600000002.M2P2.my host 22 8:1234567890:0\n" +
			"1600000003.M3P3.host 23 0:1234567890:0\n" +
			"garbage line\n",
		"courierimapkeywords/:list": "$Label1\nNonJunk\n$Forwarded\n\n" +
			"1600000001.M1P1.host:0 2\n" +
			"1600000002.M2P2.my host:1\n" +
			"1600000003.M3P3.host:0 9\n", // 9: no such keyword
		"courierimapkeywords/.3.1600000002.M2P2.my host":  "Old\n",
		"courierimapkeywords/.12.1600000002.M2P2.my host": "$Label2\nNonJunk\n",
		"courierimapkeywords/.4.1600000003.M3P3.host":     "Stale\n",
		"courierimapkeywords/1600000003.M3P3.host":        "Newest\n",
		"courierimapkeywords/.tmp.99.1600000004.M4P4.x":   "Temp\n",
	})
	tg, _ := target(t, 0)
	list := []MaildirAccount{{Address: "demo@example.test", Path: dir}}
	rep := ImportMaildir(context.Background(), tg, MaildirSource{Server: ServerCourier}, list, Options{})
	if a := rep.Accounts[0]; a.Found != 4 || a.Imported != 4 || len(a.Refused) != 0 || a.Error != "" {
		t.Fatalf("%+v", a)
	}
	got := map[string][]string{}
	for _, m := range inboxMessages(t, tg) {
		got[m.UIDL] = sorted(m.Flags)
	}
	want := map[string][]string{
		"UID7-1234567890":                     {`$Forwarded`, `$Label1`, `\Seen`},
		"UID8-1234567890":                     {`$Label2`, `NonJunk`, `\Flagged`, `\Seen`},
		"1600000003.M3P3.host":                {`Newest`},
		"1600000004.M4P4.host+2B+22quoted+22": nil,
	}
	if len(got) != len(want) {
		t.Fatalf("UIDLs %v, want %v", got, want)
	}
	for u, f := range want {
		if g, ok := got[u]; !ok || !slices.Equal(g, f) {
			t.Errorf("UIDL %s: flags %v (present %v), want %v", u, g, ok, f)
		}
	}
}

func TestParseCourierSizelist(t *testing.T) {
	for _, tc := range []struct {
		in   string
		uidl map[string]string
	}{
		{"/2 5 77\nname1 10 3:77\nname2 11 4:0\n", map[string]string{"name1": "UID3-77", "name2": "UID4"}},
		{"/3 5 77\nname1 10 3:77:1\nbad 10 x:77:0\nname3 10 9:77:0", map[string]string{"name1": "UID3-77", "bad": "bad", "name3": "name3"}},
		// Versions Courier ignores: every message is version 0.
		{"/1 5 77\nname1 10 3:77\n", map[string]string{"name1": "name1"}},
		{"name1 10\n", map[string]string{"name1": "name1"}},
		{"", map[string]string{"a b": "a+20b"}},
	} {
		l, err := parseCourierSizelist(strings.NewReader(tc.in))
		if err != nil {
			t.Fatalf("%q: %v", tc.in, err)
		}
		for base, want := range tc.uidl {
			if got := l.uidl(base); got != want {
				t.Errorf("%q: uidl(%q) = %q, want %q", tc.in, base, got, want)
			}
		}
	}
}

// inboxMessages lists the INBOX of demo@example.test.
func inboxMessages(t *testing.T, tg Target) []mailstore.Message {
	t.Helper()
	u, err := tg.Mail.User("demo@example.test")
	if err != nil {
		t.Fatal(err)
	}
	mb, err := u.Mailbox(mailstore.Inbox)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := mb.Messages()
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}
