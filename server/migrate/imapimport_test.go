package migrate

import (
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// TestIMAPFolders: how the old server's LIST becomes our mailboxes:
// special-use attributes (RFC 6154) and names give ours, subfolders
// follow their superior, virtual folders, other users' and shared ones
// (NAMESPACE) and \Noselect ones are left out, and a level holding our
// delimiter is refused.
func TestIMAPFolders(t *testing.T) {
	list := []*imap.ListData{
		{Mailbox: "INBOX", Delim: '.'},
		{Mailbox: "Gesendet", Delim: '.', Attrs: []imap.MailboxAttr{`\HasChildren`, `\Sent`}},
		{Mailbox: "Gesendet.2024", Delim: '.'},
		{Mailbox: "Papierkorb", Delim: '.', Attrs: []imap.MailboxAttr{`\trash`}},
		{Mailbox: "Spam", Delim: '.'},
		{Mailbox: "Sent Items", Delim: '.'},
		{Mailbox: "Work", Delim: '.', Attrs: []imap.MailboxAttr{`\Noselect`}},
		{Mailbox: "Work.A/B", Delim: '.'},
		{Mailbox: "Work.Q1", Delim: '.'},
		{Mailbox: "[Gmail]/All Mail", Delim: '/', Attrs: []imap.MailboxAttr{`\All`}},
		{Mailbox: "[Gmail]/Starred", Delim: '/', Attrs: []imap.MailboxAttr{`\Flagged`}},
		{Mailbox: "INBOX.Lists", Delim: '.'},
		{Mailbox: "Flat", Delim: 0},
		{Mailbox: "shared", Delim: '/', Attrs: []imap.MailboxAttr{`\Noselect`}},
		{Mailbox: "shared/boss/INBOX", Delim: '/'},
		{Mailbox: "Public/News", Delim: '/'},
		{Mailbox: "Publications", Delim: '/'},
	}
	var rep AccountReport
	var got []string
	for _, f := range imapFolders(list, []string{"shared/", "Public/"}, &rep) {
		if f.refusal != "" {
			got = append(got, f.source+" refused")
			continue
		}
		got = append(got, f.source+" -> "+f.ours)
	}
	want := []string{
		"INBOX -> INBOX", "Gesendet -> Sent", "Gesendet.2024 -> Sent/2024", "Papierkorb -> Trash",
		"Spam -> Junk", "Sent Items -> Sent", "Work.A/B refused", "Work.Q1 -> Work/Q1",
		"INBOX.Lists -> INBOX/Lists", "Flat -> Flat", "Publications -> Publications",
	}
	if !slices.Equal(got, want) {
		t.Errorf("folders:\n got %q\nwant %q", got, want)
	}
	if len(rep.Notes) != 4 || !strings.Contains(rep.Notes[0], "[Gmail]/All Mail is a virtual folder") ||
		!strings.Contains(rep.Notes[2], `folder shared/boss/INBOX is in the old server's namespace "shared/"`) {
		t.Errorf("notes: %q", rep.Notes)
	}
}

// TestStorableFlags: \Recent and unknown system flags are the old
// server's own; the other system flags and every keyword come along.
func TestStorableFlags(t *testing.T) {
	got := storableFlags([]imap.Flag{`\Seen`, `\Recent`, `\answered`, `\X-Unknown`, "$Forwarded", "Work"})
	if want := []string{`\Seen`, `\answered`, "$Forwarded", "Work"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}
