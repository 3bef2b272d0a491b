package imapd_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailsetup/internal/testkit"
	"mailsetup/server/mailstore"
)

// run runs a real client and returns its combined output.
func run(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = nil
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestCurl(t *testing.T) {
	curl := testkit.Tool(t, "curl", "curl")
	r := start(t)
	r.deliver(t, "INBOX", "for curl", "fetched by curl")
	_, port, _ := net.SplitHostPort(r.implicit)
	_, plainPort, _ := net.SplitHostPort(r.starttls)
	base := "imaps://127.0.0.1:" + port + "/"
	creds := john + ":" + password
	curlArgs := func(args ...string) []string {
		return append([]string{"-sS", "-k", "--max-time", "20", "-u", creds}, args...)
	}

	t.Run("list", func(t *testing.T) {
		out, err := run(t, curl, curlArgs(base)...)
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		for _, want := range []string{`"/" INBOX`, `\Sent) "/" "Sent"`, `\Trash) "/" "Trash"`} {
			if !strings.Contains(out, want) {
				t.Errorf("listing lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("fetch", func(t *testing.T) {
		out, err := run(t, curl, curlArgs(base+"INBOX;UID=1")...)
		if err != nil || !strings.Contains(out, "Subject: for curl") || !strings.Contains(out, "fetched by curl") {
			t.Fatalf("%v:\n%s", err, out)
		}
		mb, _ := r.user(t).Mailbox("INBOX")
		msgs, _ := mb.Messages()
		if !msgs[0].HasFlag(mailstore.FlagSeen) {
			t.Errorf("curl's BODY[] fetch did not set \\Seen: %v", msgs[0].Flags)
		}
	})
	t.Run("append", func(t *testing.T) {
		eml := filepath.Join(t.TempDir(), "msg.eml")
		if err := os.WriteFile(eml, []byte(message("appended by curl", "hello from curl")), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := run(t, curl, curlArgs("-T", eml, base+"Drafts")...)
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		out, err = run(t, curl, curlArgs(base+"Drafts", "-X", `SEARCH SUBJECT "appended by curl"`)...)
		if err != nil || !strings.Contains(out, "* SEARCH 1") {
			t.Errorf("search after append: %v %s", err, out)
		}
	})
	t.Run("starttls", func(t *testing.T) {
		out, err := run(t, curl, curlArgs("--ssl-reqd", "imap://127.0.0.1:"+plainPort+"/INBOX", "-X", "STATUS INBOX (MESSAGES UIDNEXT UNSEEN)")...)
		if err != nil || !strings.Contains(out, "* STATUS INBOX (MESSAGES 1 UIDNEXT 2 UNSEEN 0)") {
			t.Errorf("%v: %s", err, out)
		}
	})
	t.Run("local part", func(t *testing.T) {
		out, err := run(t, curl, "-sS", "-k", "--max-time", "20", "-v", "-u", "john:"+password, base)
		if err == nil || !strings.Contains(out, "use your full email address") {
			t.Errorf("login as john: %v\n%s", err, out)
		}
	})
}

func TestMbsync(t *testing.T) {
	mbsync := testkit.Tool(t, "mbsync", "isync")
	r := start(t)
	r.deliver(t, "INBOX", "server one", "first")
	r.deliver(t, "INBOX", "server two", "second")
	_, port, _ := net.SplitHostPort(r.implicit)
	dir := t.TempDir()
	local := filepath.Join(dir, "mail")
	conf := filepath.Join(dir, "mbsyncrc")
	rc := fmt.Sprintf(`IMAPAccount test
Host localhost
Port %s
User %s
Pass "%s"
SSLType IMAPS
CertificateFile %s

IMAPStore test-remote
Account test

MaildirStore test-local
Path %s/
Inbox %s/INBOX
SubFolders Verbatim

Channel test
Far :test-remote:
Near :test-local:
Patterns INBOX Archive
Create Both
Expunge Both
SyncState *
`, port, john, password, r.certFile, local, local)
	if err := os.MkdirAll(local, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, []byte(rc), 0o600); err != nil {
		t.Fatal(err)
	}
	sync := func(step string) {
		t.Helper()
		out, err := run(t, mbsync, "-c", conf, "test")
		if err != nil {
			t.Fatalf("mbsync %s: %v\n%s", step, err, out)
		}
	}
	localFiles := func(box string) []string {
		t.Helper()
		var files []string
		for _, sub := range []string{"new", "cur"} {
			names, _ := filepath.Glob(filepath.Join(local, box, sub, "*"))
			files = append(files, names...)
		}
		return files
	}
	contains := func(files []string, text string) string {
		for _, f := range files {
			b, _ := os.ReadFile(f)
			if strings.Contains(string(b), text) {
				return f
			}
		}
		return ""
	}
	mb, err := r.user(t).Mailbox("INBOX")
	if err != nil {
		t.Fatal(err)
	}

	// Server to local.
	sync("1")
	files := localFiles("INBOX")
	if len(files) != 2 || contains(files, "Subject: server one") == "" {
		t.Fatalf("after the first sync the local INBOX has %v", files)
	}

	// Local to server: a new message and a flag change.
	if err := os.WriteFile(filepath.Join(local, "INBOX", "new", "localmsg.1:2,"), []byte(strings.ReplaceAll(message("made locally", "local"), "\r\n", "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	one := contains(files, "Subject: server one")
	base, info, _ := strings.Cut(filepath.Base(one), ":2,")
	flagged := filepath.Join(local, "INBOX", "cur", base+":2,F"+strings.ReplaceAll(info, "F", ""))
	if err := os.Rename(one, flagged); err != nil {
		t.Fatal(err)
	}
	sync("2")
	msgs, err := mb.Messages()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 3 {
		t.Fatalf("server INBOX has %d messages after pushing", len(msgs))
	}
	if !msgs[0].HasFlag(mailstore.FlagFlagged) {
		t.Errorf("local flag change did not reach the server: %v", msgs[0].Flags)
	}
	f, err := mb.Open(msgs[2].UID)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4096)
	n, _ := f.Read(b)
	f.Close()
	if !strings.Contains(string(b[:n]), "Subject: made locally") {
		t.Errorf("the pushed message is %q", b[:n])
	}

	// Server flag change and a server delivery to local.
	if _, err := mb.StoreFlags([]uint32{msgs[1].UID}, mailstore.FlagsAdd, []string{mailstore.FlagAnswered}); err != nil {
		t.Fatal(err)
	}
	r.deliver(t, "Archive", "archived", "old stuff")
	sync("3")
	two := contains(localFiles("INBOX"), "Subject: server two")
	if _, info, _ := strings.Cut(filepath.Base(two), ":2,"); !strings.Contains(info, "R") {
		t.Errorf("server flag change did not reach the local copy: %s", two)
	}
	if contains(localFiles("Archive"), "Subject: archived") == "" {
		t.Errorf("Archive not synced: %v", localFiles("Archive"))
	}

	// A local deletion propagates as an expunge.
	if err := os.Rename(flagged, flagged+"T"); err != nil {
		t.Fatal(err)
	}
	sync("4")
	msgs, _ = mb.Messages()
	if len(msgs) != 2 {
		t.Errorf("server INBOX has %d messages after a local delete", len(msgs))
	}
}
