package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"mailsetup/internal/testkit"
	"mailsetup/server"
)

// writeFiles writes files (path below dir: content), making directories.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestImportQmailAndCourierMaildirs: the real binary imports a qmail
// Maildir and a Courier Maildir (courierpop3dsizelist) into one account;
// our POP3 server then lists the UIDLs the old servers served (curl -X
// UIDL); the message of the Maildir++ folder .Sent is not in the INBOX.
func TestImportQmailAndCourierMaildirs(t *testing.T) {
	src := t.TempDir()
	writeFiles(t, src, map[string]string{
		"qmail/Maildir/cur/1690000001.1.mail.example.net:2,S":       "Subject: q1\n\nbody\n",
		"qmail/Maildir/new/1690000002.2.mail.example.net":           "Subject: q2\n\nbody\n",
		"qmail/Maildir/tmp/.keep":                                   "",
		"qmail/Maildir/.Sent/cur/1690000003.3.mail.example.net:2,S": "Subject: sent\n\nbody\n",
		"courier/Maildir/cur/1600000001.M1P1.host:2,S":              "Subject: c1\n\nbody\n",
		"courier/Maildir/new/1600000002.M2P2.host":                  "Subject: c2\n\nbody\n",
		"courier/Maildir/courierpop3dsizelist":                      "/3 2 1700000000\n1600000001.M1P1.host:2,S 21 1:1700000000:0\n",
	})
	m := prepareMail(t, func(t *testing.T, m *mailService, config string) string { return config })
	for _, srv := range []string{"qmail", "courier"} {
		accts := writeAccounts(t, server.DemoAddress+","+srv+"/Maildir")
		code, out, stderr := runImport(t, m, "--from-maildir", src, "--maildir-server", srv, "--accounts", accts)
		want := "found 2, imported 2, skipped 0"
		if srv == "qmail" {
			want = "found 3, imported 3, skipped 0" // with the folder Sent
		}
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("import --maildir-server %s: exit %d\n%s%s", srv, code, out, stderr)
		}
	}
	code, _, stderr := runImport(t, m, "--from-maildir", src, "--maildir-server", "cyrus", "--accounts", writeAccounts(t, "a@b,c"))
	if code != 2 || !strings.Contains(stderr, "want dovecot, qmail") {
		t.Errorf("--maildir-server cyrus: exit %d\n%s", code, stderr)
	}
	m.service = startServe(t, "--config", m.config)
	defer m.stop(t)
	got := m.uidls(t)
	slices.Sort(got)
	want := []string{"1600000002.M2P2.host", "1690000001.1.mail.example.net", "1690000002.2.mail.example.net", "UID1-1700000000"}
	if !slices.Equal(got, want) {
		t.Errorf("UIDLs over POP3 %q, want %q", got, want)
	}
}

// TestImportMboxXUIDL: the real binary imports an mbox; the X-UIDL
// headers are the UIDLs our POP3 server lists (curl -X UIDL); a message
// without one is refused with a note until --accept-new-uidls (then with
// --from-mbox FILE).
func TestImportMboxXUIDL(t *testing.T) {
	src := t.TempDir()
	writeFiles(t, src, map[string]string{"demo.mbox": "From a@example.org Sat Jan  3 01:05:34 1996\n" +
		"X-UIDL: 19960103010534-qpop\nSubject: 1\n\nbody\n>From quoted\n\n" +
		"From a@example.org Sat Jan  3 02:05:34 1996\n" +
		"Subject: no X-UIDL\n\nbody\n\n" +
		"From a@example.org Sat Jan  3 03:05:34 1996\n" +
		"X-UIDL: <b1e2@old>\nSubject: 3\n\nbody\n"})
	m := prepareMail(t, func(t *testing.T, m *mailService, config string) string { return config })
	code, out, stderr := runImport(t, m, "--from-mbox", src, "--accounts", writeAccounts(t, server.DemoAddress+",demo.mbox"))
	if code != 1 || !strings.Contains(out, "found 3, imported 2, skipped 0, refused 1") ||
		!strings.Contains(out, "note: 1 of 3 messages have no X-UIDL header and were not imported") {
		t.Fatalf("import --from-mbox DIR: exit %d\n%s%s", code, out, stderr)
	}
	file := filepath.Join(src, "demo.mbox")
	code, _, stderr = runImport(t, m, "--from-mbox", file, "--accounts", writeAccounts(t, server.DemoAddress+",demo.mbox"))
	if code != 2 || !strings.Contains(stderr, `the path "-"`) {
		t.Errorf("--from-mbox FILE with a path: exit %d\n%s", code, stderr)
	}
	code, out, stderr = runImport(t, m, "--from-mbox", file, "--accept-new-uidls", "--accounts", writeAccounts(t, server.DemoAddress+",-"))
	if code != 0 || !strings.Contains(out, "found 3, imported 1, skipped 2, refused 0") || !strings.Contains(out, "imported with new UIDLs") {
		t.Fatalf("import --from-mbox FILE --accept-new-uidls: exit %d\n%s%s", code, out, stderr)
	}
	m.service = startServe(t, "--config", m.config)
	defer m.stop(t)
	got := m.uidls(t)
	if len(got) != 3 || got[0] != "19960103010534-qpop" || got[1] != "<b1e2@old>" || !strings.HasPrefix(got[2], "mbox-") {
		t.Errorf("UIDLs over POP3 %q", got)
	}
}

// TestImportMboxContentLength: the real binary imports an mboxcl2 file
// (mutt's): the body line "From the start" after an empty line stays in
// its message, which our POP3 server serves whole (curl RETR); read as
// mboxrd, the same file would have been cut there.
func TestImportMboxContentLength(t *testing.T) {
	body := "first line\n\nFrom the start, this line was never quoted\nlast line\n"
	src := t.TempDir()
	writeFiles(t, src, map[string]string{"demo.mbox": "From a@example.org Sat Jan  3 01:05:34 1996\n" +
		"X-UIDL: cl2-one\nContent-Length: " + strconv.Itoa(len(body)) + "\nSubject: 1\n\n" + body + "\n" +
		"From a@example.org Sat Jan  3 02:05:34 1996\n" +
		"X-UIDL: cl2-two\nContent-Length: 5\nSubject: 2\n\nlast\n"})
	m := prepareMail(t, func(t *testing.T, m *mailService, config string) string { return config })
	accts := writeAccounts(t, server.DemoAddress+",demo.mbox")
	code, out, stderr := runImport(t, m, "--from-mbox", src, "--mbox-format", "mboxcl2", "--accounts", accts)
	if code != 0 || !strings.Contains(out, "found 2, imported 2, skipped 0, refused 0") || strings.Contains(out, "Content-Length") {
		t.Fatalf("import --mbox-format mboxcl2: exit %d\n%s%s", code, out, stderr)
	}
	code, _, stderr = runImport(t, m, "--from-mbox", src, "--mbox-format", "mboxcl3", "--accounts", accts)
	if code != 2 || !strings.Contains(stderr, `"mboxcl3": want mboxrd, mboxo, mboxcl or mboxcl2`) {
		t.Errorf("--mbox-format mboxcl3: exit %d\n%s", code, stderr)
	}
	m.service = startServe(t, "--config", m.config)
	defer m.stop(t)
	if got := m.uidls(t); !slices.Equal(got, []string{"cl2-one", "cl2-two"}) {
		t.Errorf("UIDLs over POP3 %q", got)
	}
	msg, err := exec.Command(testkit.Tool(t, "curl", "curl"), "-sS", "-k", "--max-time", "20",
		"-u", server.DemoAddress+":"+m.password, fmt.Sprintf("pop3s://127.0.0.1:%d/1", m.ports.POP3S)).Output()
	if err != nil {
		t.Fatalf("curl RETR 1: %v", err)
	}
	if !strings.HasSuffix(strings.ReplaceAll(string(msg), "\r\n", "\n"), "\n\n"+body) {
		t.Errorf("message 1 over POP3:\n%s", msg)
	}
}
