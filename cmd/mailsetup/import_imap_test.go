package main

import (
	"encoding/base32"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"mailsetup/internal/testkit"
	"mailsetup/server"
	"mailsetup/server/mailstore"
)

// putFiles writes message files into user's Maildir on the old server
// (name below the Maildir: content), each with its modification time (the
// internal date Dovecot serves), owned by nobody as Dovecot's mail
// processes run.
func (d *oldDovecot) putFiles(t *testing.T, user string, files map[string]string, dates map[string]time.Time) {
	t.Helper()
	md := d.maildir(user)
	writeFiles(t, md, files)
	for name, date := range dates {
		if err := os.Chtimes(filepath.Join(md, name), date, date); err != nil {
			t.Fatal(err)
		}
	}
	for dir := range files {
		for _, sub := range []string{"cur", "new", "tmp"} {
			os.MkdirAll(filepath.Join(md, filepath.Dir(filepath.Dir(dir)), sub), 0o700)
		}
	}
	if out, err := exec.Command("chown", "-R", "65534:65534", filepath.Dir(md)).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v %s", err, out)
	}
}

// imapCurl runs curl's IMAP client over IMAPS on port: the URL path is
// the mailbox (none: LIST), args the request (-X ...).
func imapCurl(t *testing.T, port int, user, password, mailbox string, args ...string) string {
	t.Helper()
	path := testkit.Tool(t, "curl", "curl")
	u := fmt.Sprintf("imaps://127.0.0.1:%d/", port)
	if mailbox != "" {
		u += url.PathEscape(mailbox)
	}
	all := append([]string{"-sS", "-k", "--max-time", "20", "-u", user + ":" + password}, args...)
	out, err := exec.Command(path, append(all, u)...).CombinedOutput()
	if err != nil {
		t.Fatalf("curl %s %v: %v\n%s", u, args, err, out)
	}
	return strings.ReplaceAll(string(out), "\r", "")
}

var (
	listLine  = regexp.MustCompile(`(?m)^\* LIST \(([^)]*)\) (?:"(.)"|NIL) "?([^"\n]*)"?$`)
	fetchLine = regexp.MustCompile(`(?m)^\* \d+ FETCH \((.*)\)$`)
	flagsItem = regexp.MustCompile(`FLAGS \(([^)]*)\)`)
	dateItem  = regexp.MustCompile(`INTERNALDATE "([^"]*)"`)
)

// imapMailboxes lists the selectable mailboxes over IMAP (curl LIST),
// each name with "/" as the delimiter.
func imapMailboxes(t *testing.T, port int, user, password string) []string {
	t.Helper()
	var out []string
	for _, m := range listLine.FindAllStringSubmatch(imapCurl(t, port, user, password, "", "-X", `LIST "" "*"`), -1) {
		if strings.Contains(strings.ToLower(m[1]), `\noselect`) {
			continue
		}
		name := m[3]
		if m[2] != "" && m[2] != "/" {
			name = strings.ReplaceAll(name, m[2], "/")
		}
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// imapMessages lists a mailbox's messages over IMAP (curl FETCH) as
// "FLAGS|INTERNALDATE" in order, without \Recent (the server's own).
func imapMessages(t *testing.T, port int, user, password, mailbox string) []string {
	t.Helper()
	var out []string
	body := imapCurl(t, port, user, password, mailbox, "-X", "FETCH 1:* (FLAGS INTERNALDATE)")
	for _, m := range fetchLine.FindAllStringSubmatch(body, -1) {
		f, d := flagsItem.FindStringSubmatch(m[1]), dateItem.FindStringSubmatch(m[1])
		if f == nil || d == nil {
			t.Fatalf("FETCH of %s: %s", mailbox, m[0])
		}
		flags := slices.DeleteFunc(strings.Fields(f[1]), func(s string) bool { return strings.EqualFold(s, `\Recent`) })
		slices.Sort(flags)
		// RFC 3501 date-day-fixed: " 5" and "05" are the same day.
		out = append(out, strings.Join(flags, " ")+"|"+strings.TrimLeft(d[1], " 0"))
	}
	return out
}

// readmeImport runs the command of the README's migration block that
// has all of words, with repl putting this test's old server, data
// directory and accounts files in place of the examples'.
func readmeImport(t *testing.T, repl *strings.Replacer, words ...string) (int, string, string) {
	t.Helper()
	for _, c := range readmeBlock(t, "## Migrating from another server") {
		cmd, ok := strings.CutPrefix(c, "mailsetup import ")
		if !ok || slices.ContainsFunc(words, func(w string) bool { return !strings.Contains(c, w) }) {
			continue
		}
		return runCmd(t, exec.Command("sh", "-c", fmt.Sprintf("exec '%s' import %s", binary, repl.Replace(cmd))))
	}
	t.Fatalf("the README's migration block has no command with %q", words)
	return 0, "", ""
}

// TestImportFromDovecotIMAP takes an account over from a real Dovecot's
// IMAP (--from-imap): its folders (nested, special-use by name, one whose
// name cannot be a mailbox here), flags, keywords and internal dates are
// compared on both sides with curl's IMAP client; fetchmail, which had
// fetched the INBOX from Dovecot's POP3 in keep mode, downloads nothing
// from us. A wrong password, an unreachable server and a message over
// mail.max_message_bytes are reported per account while the rest
// imports; a second import imports nothing.
func TestImportFromDovecotIMAP(t *testing.T) {
	old := startOldDovecot(t)
	day := func(d int) time.Time { return time.Date(2021, 3, d, 10, 30, 0, 0, time.UTC) }
	long := strings.Repeat("x", 210)
	files := map[string]string{
		"new/1700000001.M1P1.old":                     "From: a@example.org\nSubject: in 1\nMessage-ID: <in1@example.org>\n\nbody 1\n",
		"cur/1700000002.M2P1.old:2,S":                 "From: a@example.org\nSubject: in 2\nMessage-ID: <in2@example.org>\n\nbody 2\n",
		"cur/1700000003.M3P1.old:2,FRSab":             "From: a@example.org\nSubject: in 3\nMessage-ID: <in3@example.org>\n\nbody 3\n",
		"dovecot-keywords":                            "0 $Forwarded\n1 Work\n",
		".Sent Messages/cur/1700000004.M4P1.old:2,S":  "From: user1@example.test\nSubject: sent\n\nsent\n",
		".Work/cur/1700000005.M5P1.old:2,FS":          "From: a@example.org\nSubject: work\n\nwork\n",
		".Work.Projects/cur/1700000006.M6P1.old:2,D":  "From: a@example.org\nSubject: project\n\ndraft\n",
		".Deleted Items/cur/1700000007.M7P1.old:2,ST": "From: a@example.org\nSubject: gone\n\ngone\n",
		".Locked/cur/1700000010.M10P1.old:2,S":        "Subject: locked\n\nlocked\n",
		".Entw&APw-rfe/cur/1700000009.M9P1.old:2,D":   "From: a@example.org\nSubject: Entwurf\n\ndraft\n",
		"." + long + "/cur/1700000008.M8P1.old:2,S":   "From: a@example.org\nSubject: long\n\nlong\n",
	}
	dates := map[string]time.Time{}
	i := 1
	for name := range files {
		if strings.Contains(name, "/") {
			dates[name] = day(i)
			i++
		}
	}
	old.putFiles(t, "user1", files, dates)
	// A folder the old server cannot open (EXAMINE fails).
	if err := os.Chmod(filepath.Join(old.maildir("user1"), ".Locked"), 0); err != nil {
		t.Fatal(err)
	}
	old.put(t, "user3", "Subject: small\n\nsmall\n", "Subject: big\n\n"+strings.Repeat("0123456789abcde\n", 400))

	// A POP3 client that keeps mail on the server fetches the old INBOX.
	oldPOP3 := &mailService{ports: server.Ports{POP3S: old.pop3s}}
	work := t.TempDir()
	if got := fetchmailRunAs(t, oldPOP3, work, "user1@example.test", "secret"); got != 3 {
		t.Fatalf("fetchmail from the old Dovecot fetched %d, want 3", got)
	}
	oldBoxes := imapMailboxes(t, old.imaps, "user1@example.test", "secret")
	if want := []string{"Deleted Items", "Entw&APw-rfe", "INBOX", "Locked", "Sent Messages", "Work", "Work/Projects", long}; !slices.Equal(oldBoxes, want) {
		t.Fatalf("the old server lists %q, want %q", oldBoxes, want)
	}
	for _, box := range []string{"Work.Projects", `"Sent Messages"`} {
		imapCurl(t, old.imaps, "user1@example.test", "secret", "", "-X", "SUBSCRIBE "+box)
	}
	oldInbox := imapMessages(t, old.imaps, "user1@example.test", "secret", "INBOX")
	if len(oldInbox) != 3 || !strings.Contains(oldInbox[2], `$Forwarded Work \Answered \Flagged \Seen|`) {
		t.Fatalf("the old INBOX over IMAP: %q (want keywords on the third)", oldInbox)
	}

	m := importTarget(t)
	const password = newPassword
	source := []string{"--from-imap", fmt.Sprintf("127.0.0.1:%d", old.imaps), "--ca", old.ca()}
	all := writeAccounts(t, "address,username,password",
		"user1@example.test,user1@example.test,secret",
		"user2@example.test,user2@example.test,not-the-password",
		"user3@example.test,user3@example.test,secret")
	code, out, stderr := runImport(t, m, append(source, "--accounts", all, "--json")...)
	if code != 1 {
		t.Errorf("import with a failed account: exit %d, want 1\n%s%s", code, out, stderr)
	}
	rep := importReport(t, out)
	a := rep["user1@example.test"]
	if a.Found != 8 || a.Imported != 8 || a.Skipped != 0 || len(a.Refused) != 2 || a.Error != "" || a.Bytes == 0 {
		t.Errorf("user1: %+v", a)
	}
	refused := map[string]string{}
	for _, r := range a.Refused {
		refused[r.Message] = r.Reason
	}
	if r := refused["folder "+long]; !strings.Contains(r, "cannot be a mailbox here") || !strings.Contains(r, "longer than 200 bytes") {
		t.Errorf("user1's folder with a long name: %q", r)
	}
	if r := refused["folder Locked"]; !strings.Contains(r, "the old server refused EXAMINE: ") {
		t.Errorf("user1's folder the old server cannot open: %q", r)
	}
	if a := rep["user2@example.test"]; !strings.Contains(a.Error, "login as user2@example.test") || !strings.Contains(a.Error, "uthentication failed") || strings.Contains(a.Error, "not-the-password") {
		t.Errorf("user2 (wrong password): %+v", a)
	}
	if a := rep["user3@example.test"]; a.Found != 2 || a.Imported != 1 || len(a.Refused) != 1 || !strings.Contains(a.Refused[0].Reason, "larger than mail.max_message_bytes (4096)") {
		t.Errorf("user3 (one message over the limit): %+v", a)
	}

	// The second import, as the README writes it.
	user1 := writeAccounts(t, "user1@example.test,user1@example.test,secret")
	disk := writeAccounts(t, "user1@example.test,example.test/user1/Maildir")
	readme := strings.NewReplacer("DIR", m.dir, "accounts.csv", user1, "maildirs.csv", disk, "/var/vmail", filepath.Join(old.dir, "mail"),
		"old.example.net:993", fmt.Sprintf("127.0.0.1:%d --ca %s", old.imaps, old.ca()),
		"old.example.net:995", fmt.Sprintf("127.0.0.1:%d --ca %s", old.pop3s, old.ca()))
	code, out, stderr = readmeImport(t, readme, "--from-imap")
	if !strings.Contains(out, "user1@example.test: found 8, imported 0, skipped 8 (already here), refused 2, 0 bytes") {
		t.Errorf("second import: exit %d\n%s%s", code, out, stderr)
	}
	for _, security := range []string{"starttls", "none"} {
		code, out, stderr = runImport(t, m, "--from-imap", fmt.Sprintf("127.0.0.1:%d", old.imap), "--security", security, "--ca", old.ca(), "--accounts", user1)
		if !strings.Contains(out, "found 8, imported 0, skipped 8") {
			t.Errorf("import over port 143 with --security %s: exit %d\n%s%s", security, code, out, stderr)
		}
	}
	code, out, _ = runImport(t, m, "--from-imap", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--security", "none", "--timeout", "5s", "--accounts", user1, "--csv")
	if code != 1 || !strings.HasPrefix(out, "address,found,imported,skipped,refused,bytes,refusals,notes,error\nuser1@example.test,0,0,0,0,0,,,connecting to the old server: ") {
		t.Errorf("unreachable source (--csv): exit %d\n%s", code, out)
	}
	// A server that accepts and never speaks: our deadline, not the
	// library's, ends each step.
	tarpit := testkit.Tarpit(t)
	for _, c := range []struct{ security, want string }{{"tls", "TLS with the old server: "}, {"none", "the old server's greeting: "}} {
		start := time.Now()
		code, out, _ = runImport(t, m, "--from-imap", fmt.Sprintf("127.0.0.1:%d", tarpit), "--security", c.security, "--timeout", "2s", "--accounts", user1)
		if took := time.Since(start); code != 1 || !strings.Contains(out, "failed: "+c.want) || !strings.Contains(out, "timeout") || took > 15*time.Second {
			t.Errorf("a silent source with --security %s: exit %d after %v\n%s", c.security, code, took, out)
		}
	}
	code, _, stderr = runImport(t, m, "--from-imap", "192.0.2.1:143", "--security", "none", "--accounts", user1)
	if code != 2 || !strings.Contains(stderr, "not a loopback address") {
		t.Errorf("plain text to another host: exit %d\n%s", code, stderr)
	}

	// Both sides with curl's IMAP client: folders, flags, dates.
	m.service = startServe(t, "--config", m.config)
	ours := imapMailboxes(t, m.ports.IMAPS, "user1@example.test", password)
	for _, want := range []string{"INBOX", "Sent", "Trash", "Work", "Work/Projects", "Entw&APw-rfe"} {
		if !slices.Contains(ours, want) {
			t.Errorf("our mailboxes %q lack %s", ours, want)
		}
	}
	// The old server's subscriptions are ours (LSUB).
	var subscribed []string
	for _, m := range regexp.MustCompile(`(?m)^\* LSUB \([^)]*\) "/" "?([^"\n]*)"?$`).FindAllStringSubmatch(imapCurl(t, m.ports.IMAPS, "user1@example.test", password, "", "-X", `LSUB "" "*"`), -1) {
		subscribed = append(subscribed, m[1])
	}
	if !slices.Contains(subscribed, "Work/Projects") || !slices.Contains(subscribed, "Sent") || slices.Contains(subscribed, "Work") || slices.Contains(subscribed, "Entw&APw-rfe") {
		t.Errorf("subscribed here: %q, want Work/Projects and Sent, not Work or Entw&APw-rfe", subscribed)
	}
	for oldName, ourName := range map[string]string{"INBOX": "INBOX", "Sent Messages": "Sent", "Work": "Work", "Work.Projects": "Work/Projects", "Deleted Items": "Trash", "Entw&APw-rfe": "Entw&APw-rfe"} {
		before := imapMessages(t, old.imaps, "user1@example.test", "secret", oldName)
		after := imapMessages(t, m.ports.IMAPS, "user1@example.test", password, ourName)
		if len(before) == 0 || !slices.Equal(before, after) {
			t.Errorf("%s -> %s: old %q, ours %q", oldName, ourName, before, after)
		}
		if oldName == "INBOX" && !slices.Equal(before, oldInbox) {
			t.Errorf("the import changed the old INBOX: before %q, after %q", oldInbox, before)
		}
	}

	// The POP3 client with its state from the old server downloads
	// nothing: the INBOX kept Dovecot's UIDLs (%08Xu%08Xv).
	if got := fetchmailRunAs(t, m, work, "user1@example.test", password); got != 0 {
		t.Errorf("fetchmail with the old server's UIDL state downloaded %d from mailsetup, want 0", got)
	}
	if got := fetchmailRunAs(t, m, t.TempDir(), "user1@example.test", password); got != 3 {
		t.Errorf("a client without the old state downloaded %d, want 3 (the control)", got)
	}

	// The cutover report as CSV, against the old POP3 server and against
	// its Maildirs on disk, beside the running service, as the README
	// writes it.
	const header = "address,old,ours,would_download_again,missing_uidls,error\n"
	verify := [][]string{{"--verify", "--csv", "--from-pop3"}, {"--verify", "--csv", "--from-maildir"}}
	for _, words := range verify {
		code, out, stderr := readmeImport(t, readme, words...)
		if code != 0 || out != header+"user1@example.test,3,3,0,,\n" {
			t.Errorf("%v: exit %d\n%s%s", words, code, out, stderr)
		}
	}
	m.stop(t)

	// One message's UIDL changes here: both reports name it.
	newDir := filepath.Join(m.dir, "mail", "example.test", "user1", "Maildir", "new")
	unseen, _ := os.ReadDir(newDir)
	if len(unseen) != 1 {
		t.Fatalf("%d files in %s, want the one unseen message", len(unseen), newDir)
	}
	name := unseen[0].Name()
	uidl := mailstore.UIDLOfFile(name)
	changed := name[:strings.Index(name, ",X=")] + ",X=" + base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString([]byte("changed-uidl"))
	if err := os.Rename(filepath.Join(newDir, name), filepath.Join(newDir, changed)); err != nil {
		t.Fatal(err)
	}
	for _, words := range verify {
		code, out, stderr := readmeImport(t, readme, words...)
		if code != 1 || out != header+"user1@example.test,3,3,1,"+uidl+",\n" {
			t.Errorf("%v after a UIDL changed: exit %d\n%s%s", words, code, out, stderr)
		}
	}
	code, out, _ = runImport(t, m, "--verify", "--json", "--from-maildir", filepath.Join(old.dir, "mail"), "--accounts", disk)
	if code != 1 || !strings.Contains(out, `"would_download_again": 1`) || !strings.Contains(out, uidl) {
		t.Errorf("--verify --json --from-maildir: exit %d\n%s", code, out)
	}
}

// TestImportIMAPAfterPOP3AndKilled: an INBOX imported from the old
// server's POP3 first gets no duplicates from a later IMAP import (same
// UIDLs; with a pop3_uidl_format IMAP cannot compute, by Message-ID and
// size), nor do the folders of a Maildir import (by date and size); without that, such an INBOX is refused with the reason until
// --accept-new-uidls, which notes that the clients download again. An
// IMAP import killed (SIGKILL) at three points and run again ends with
// each message exactly once.
func TestImportIMAPAfterPOP3AndKilled(t *testing.T) {
	old := startOldDovecot(t)
	files := map[string]string{".Archive/cur/1700000100.M1P1.old:2,S": "Subject: archived\n\narchived\n"}
	for i := range 3 {
		files[fmt.Sprintf("new/17000000%02d.M%dP1.old", i, i)] = fmt.Sprintf("Subject: in %d\nMessage-ID: <in%d@example.org>\n\nbody %d\n", i, i, i)
	}
	old.putFiles(t, "user1", files, nil)
	const many = 300
	files = map[string]string{}
	for i := range many {
		files[fmt.Sprintf("cur/1700%06d.M%dP1.old:2,S", i, i)] = fmt.Sprintf("Subject: many %d\nMessage-ID: <many%d@example.org>\n\n%s\n", i, i, strings.Repeat("x", i))
		if i%3 == 0 {
			files[fmt.Sprintf(".Folder/cur/1800%06d.M%dP1.old:2,S", i, i)] = fmt.Sprintf("Subject: folder %d\n\n%s\n", i, strings.Repeat("y", i))
		}
	}
	old.putFiles(t, "user2", files, nil)
	imapSrc := []string{"--from-imap", fmt.Sprintf("127.0.0.1:%d", old.imaps), "--ca", old.ca()}
	pop3Src := []string{"--from-pop3", fmt.Sprintf("127.0.0.1:%d", old.pop3s), "--ca", old.ca()}
	user1 := writeAccounts(t, "user1@example.test,user1@example.test,secret")
	run := func(m *mailService, wantCode int, want string, args ...string) {
		t.Helper()
		code, out, stderr := runImport(t, m, append(args, "--accounts", user1)...)
		if code != wantCode || !strings.Contains(out, want) {
			t.Errorf("import %v: exit %d, want %d and %q\n%s%s", args, code, wantCode, want, out, stderr)
		}
	}

	// POP3 first, then IMAP: the INBOX is there under the same UIDLs.
	m := importTarget(t)
	run(m, 0, "found 3, imported 3, skipped 0", pop3Src...)
	run(m, 0, "found 4, imported 1, skipped 3 (already here), refused 0", imapSrc...)
	// With a format IMAP cannot compute, by Message-ID and size.
	m = importTarget(t)
	run(m, 0, "found 3, imported 3, skipped 0", pop3Src...)
	run(m, 0, "found 4, imported 1, skipped 3 (already here), refused 0", append(imapSrc, "--uidl-format", "%m")...)
	// The Maildir on disk first (INBOX and folder), then IMAP: the folder
	// message is here under another UIDL, recognised by its date and
	// size (it has no Message-ID).
	m = importTarget(t)
	disk := writeAccounts(t, "user1@example.test,example.test/user1/Maildir")
	if code, out, stderr := runImport(t, m, "--from-maildir", filepath.Join(old.dir, "mail"), "--accounts", disk); code != 0 || !strings.Contains(out, "found 4, imported 4, skipped 0") {
		t.Errorf("import --from-maildir: exit %d\n%s%s", code, out, stderr)
	}
	run(m, 0, "found 4, imported 0, skipped 4 (already here), refused 0", imapSrc...)
	run(m, 0, "note: 1 messages of folder Archive, such as Archive UID 1, are here already from an earlier import", imapSrc...)
	// Without the POP3 import: refused, then new UIDLs on request.
	m = importTarget(t)
	run(m, 1, "its old POP3 UIDL cannot be computed (pop3_uidl_format %m needs what IMAP does not give", append(imapSrc, "--uidl-format", "%m")...)
	run(m, 0, "3 messages have new UIDLs here, and POP3 clients that keep mail on the server will download them again", append(imapSrc, "--uidl-format", "%m", "--accept-new-uidls")...)
	run(m, 0, "found 4, imported 0, skipped 4", append(imapSrc, "--uidl-format", "%m", "--accept-new-uidls")...)

	// Killed at three points of its progress, then run to the end.
	m = importTarget(t)
	user2 := writeAccounts(t, "user2@example.test,user2@example.test,secret")
	ours := filepath.Join(m.dir, "mail", "example.test", "user2", "Maildir")
	stored := func() int {
		n := 0
		for _, d := range []string{"new", "cur", ".Folder/new", ".Folder/cur"} {
			e, _ := os.ReadDir(filepath.Join(ours, d))
			n += len(e)
		}
		return n
	}
	for _, at := range []int{1, many / 3, many} {
		cmd := exec.Command(binary, append([]string{"import", "--config", m.config, "--accounts", user2}, imapSrc...)...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(60 * time.Second)
		for stored() < at && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		cmd.Process.Kill()
		cmd.Wait()
		t.Logf("killed with %d messages stored", stored())
	}
	code, out, stderr := runImport(t, m, append(imapSrc, "--accounts", user2)...)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("found %d,", many+many/3)) {
		t.Fatalf("import after the kills: exit %d\n%s%s", code, out, stderr)
	}
	m.service = startServe(t, "--config", m.config)
	defer m.stop(t)
	for box, want := range map[string]int{"INBOX": many, "Folder": many / 3} {
		// Every message of a mailbox has a size of its own.
		// In slices: curl counts all of a session's responses against
		// its limit on response headers.
		var sizes []string
		for from := 1; from <= want+50; from += 50 {
			got := imapCurl(t, m.ports.IMAPS, "user2@example.test", newPassword, box, "-X", fmt.Sprintf("FETCH %d:%d (RFC822.SIZE)", from, from+49))
			sizes = append(sizes, regexp.MustCompile(`RFC822\.SIZE \d+`).FindAllString(got, -1)...)
		}
		n := len(sizes)
		slices.Sort(sizes)
		if n != want || len(slices.Compact(sizes)) != want {
			t.Errorf("%s: %d messages, %d distinct, want %d each once", box, n, len(slices.Compact(sizes)), want)
		}
	}
}

// TestImportIMAPSpecialUseAndNamespaces: a Dovecot whose folders have
// RFC 6154 attributes under names of their own (Gesendet is \Sent,
// Papierkorb \Trash) and a public namespace: the IMAP import puts them
// into our Sent (with its subfolder) and Trash, and leaves the public
// folders out with a note.
func TestImportIMAPSpecialUseAndNamespaces(t *testing.T) {
	old := startOldDovecot(t)
	old.putFiles(t, "user1", map[string]string{
		"cur/1700000001.M1P1.old:2,S":                "Subject: in\n\nin\n",
		".Gesendet/cur/1700000002.M2P1.old:2,S":      "Subject: sent\n\nsent\n",
		".Gesendet.2024/cur/1700000003.M3P1.old:2,S": "Subject: sent 2024\n\nsent 2024\n",
		".Papierkorb/cur/1700000004.M4P1.old:2,ST":   "Subject: trash\n\ntrash\n",
	}, nil)
	public := filepath.Join(old.dir, "public")
	writeFiles(t, public, map[string]string{
		"cur/1700000005.M5P1.old:2,S":       "Subject: public\n\npublic\n",
		".News/cur/1700000006.M6P1.old:2,S": "Subject: news\n\nnews\n",
	})
	for _, d := range []string{"new", "tmp", ".News/new", ".News/tmp"} {
		os.MkdirAll(filepath.Join(public, d), 0o700)
	}
	if out, err := exec.Command("chown", "-R", "65534:65534", public).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v %s", err, out)
	}
	conf := filepath.Join(old.dir, "dovecot", "dovecot.conf")
	f, err := os.OpenFile(conf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, `
namespace inbox {
  inbox = yes
  separator = .
  mailbox Gesendet {
    special_use = \Sent
  }
  mailbox Papierkorb {
    special_use = \Trash
  }
}
namespace public {
  type = public
  separator = .
  prefix = Public.
  location = maildir:%s
  list = yes
  subscriptions = no
}
`, public)
	f.Close()
	old.reload(t)
	listed, err := exec.Command(testkit.Tool(t, "curl", "curl"), "-sS", "-k", "--max-time", "10", "-u", "user1@example.test:secret",
		"-X", `LIST "" "*"`, fmt.Sprintf("imaps://127.0.0.1:%d/", old.imaps)).CombinedOutput()
	if list := string(listed); err != nil || !strings.Contains(list, `\Sent`) || !strings.Contains(list, `\Trash`) || !strings.Contains(list, "Public.News") {
		t.Fatalf("the old server's LIST after the reload:\n%s", list)
	}

	m := importTarget(t)
	code, out, stderr := runImport(t, m, "--from-imap", fmt.Sprintf("127.0.0.1:%d", old.imaps), "--ca", old.ca(),
		"--accounts", writeAccounts(t, "user1@example.test,user1@example.test,secret"))
	if code != 0 || !strings.Contains(out, "found 4, imported 4, skipped 0, refused 0") ||
		!strings.Contains(out, `note: folder Public.News is in the old server's namespace "Public." of other users' or shared folders`) {
		t.Fatalf("import: exit %d\n%s%s", code, out, stderr)
	}
	m.service = startServe(t, "--config", m.config)
	defer m.stop(t)
	if boxes := imapMailboxes(t, m.ports.IMAPS, "user1@example.test", newPassword); slices.ContainsFunc(boxes, func(b string) bool {
		return strings.HasPrefix(b, "Public") || b == "Gesendet" || b == "Papierkorb"
	}) {
		t.Errorf("our mailboxes: %q", boxes)
	}
	for box, want := range map[string]string{"Sent": "sent", "Sent/2024": "sent 2024", "Trash": "trash", "INBOX": "in"} {
		// curl shows the literal's size, not its text: the subjects'
		// lengths differ.
		got := imapCurl(t, m.ports.IMAPS, "user1@example.test", newPassword, box, "-X", "FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
		if n := strings.Count(got, " FETCH "); n != 1 || !strings.Contains(got, fmt.Sprintf("{%d}", len("Subject: "+want+"\r\n\r\n"))) {
			t.Errorf("%s: %q, want the one message %q", box, got, want)
		}
	}
}
