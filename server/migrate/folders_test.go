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

// TestImportMaildirFolders: Maildir++ folders go to the same-named
// mailboxes (the special-use ones to ours, nested and modified UTF-7
// names decoded, missing ones created), with flags and dates; a folder
// name our store cannot hold is refused with the reason; a second import
// skips everything.
func TestImportMaildirFolders(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "Maildir")
	date := time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)
	msg := "Subject: x\n\nbody\n"
	writeMaildir(t, dir, date, map[string]string{"cur/1000.M1P1.host:2,S": msg})
	for folder, file := range map[string]string{
		".Sent":           "cur/1001.M1P1.host:2,S",
		".Sent Messages":  "cur/1002.M1P1.host:2,RS",
		".Drafts":         "cur/1003.M1P1.host:2,D",
		".Spam":           "new/1004.M1P1.host",
		".Deleted Items":  "cur/1005.M1P1.host:2,ST",
		".Work":           "cur/1006.M1P1.host:2,F",
		".Work.Projects":  "cur/1007.M1P1.host:2,",
		".Entw&APw-rfe":   "cur/1008.M1P1.host:2,S",
		".Star*":          "cur/1009.M1P1.host:2,S",
		".INBOX":          "cur/1010.M1P1.host:2,S",
		".Orders.2024.Q1": "cur/" + strings.Repeat("z", 80) + ":2,S",
	} {
		writeMaildir(t, filepath.Join(dir, folder), date, map[string]string{file: msg})
	}
	if err := os.Mkdir(filepath.Join(dir, ".not-a-maildir"), 0o700); err != nil {
		t.Fatal(err)
	}
	tg, _ := target(t, 0)
	list := []MaildirAccount{{Address: "demo@example.test", Path: dir}}
	f, _ := ParseUIDLFormat("%f")
	rep := ImportMaildir(context.Background(), tg, MaildirSource{UIDLFormat: f}, list, Options{})
	a := rep.Accounts[0]
	if a.Found != 10 || a.Imported != 10 || len(a.Refused) != 2 || a.Error != "" {
		t.Fatalf("%+v", a)
	}
	var refused []string
	for _, r := range a.Refused {
		refused = append(refused, r.Message+": "+r.Reason)
	}
	slices.Sort(refused)
	if !strings.HasPrefix(refused[0], ".INBOX/: ") || !strings.HasPrefix(refused[1], `.Star*/: a folder named "Star*" cannot be a mailbox here`) {
		t.Errorf("refused %q", refused)
	}
	u, _ := tg.Mail.User("demo@example.test")
	want := map[string][][]string{
		"INBOX":          {{`\Seen`}},
		"Sent":           {{`\Seen`}, {`\Answered`, `\Seen`}},
		"Drafts":         {{`\Draft`}},
		"Junk":           {nil},
		"Trash":          {{`\Deleted`, `\Seen`}},
		"Work":           {{`\Flagged`}},
		"Work/Projects":  {nil},
		"Entwürfe":       {{`\Seen`}},
		"Orders/2024/Q1": {{`\Seen`}},
		"Orders/2024":    {},
		"Archive":        {},
	}
	for name, flags := range want {
		mb, err := u.Mailbox(name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		msgs, err := mb.Messages()
		if err != nil {
			t.Fatal(err)
		}
		var got [][]string
		for _, m := range msgs {
			got = append(got, sorted(m.Flags))
			if !m.InternalDate.Equal(date) {
				t.Errorf("%s: date %v, want %v", name, m.InternalDate, date)
			}
			if !mailstore.ValidUIDL(m.UIDL) {
				t.Errorf("%s: UIDL %q", name, m.UIDL)
			}
		}
		slices.SortFunc(got, func(a, b []string) int { return slices.Compare(a, b) })
		slices.SortFunc(flags, func(a, b []string) int { return slices.Compare(a, b) })
		if len(got) != len(flags) || !slices.EqualFunc(got, flags, func(a, b []string) bool { return slices.Equal(a, b) }) {
			t.Errorf("%s: flags %q, want %q", name, got, flags)
		}
	}
	rep = ImportMaildir(context.Background(), tg, MaildirSource{UIDLFormat: f}, list, Options{})
	if a := rep.Accounts[0]; a.Imported != 0 || a.Skipped != 10 {
		t.Errorf("second import: %+v", a)
	}
}

func TestFolderName(t *testing.T) {
	for disk, want := range map[string]string{
		"Sent":           "Sent",
		"sent items":     "Sent",
		"Work.Sent":      "Work/Sent",
		"a&-b":           "a&b",
		"Entw&APw-rfe.x": "Entwürfe/x",
		"&ZeVnLIqe-":     "日本語",
		"bad&seq":        "bad&seq",
		"bad&!!-":        "bad&!!-",
		"a..b":           "",
		"inbox":          "",
		"INBOX.Sub":      "INBOX/Sub",
	} {
		if got := folderName(disk); got != want {
			t.Errorf("folderName(%q) = %q, want %q", disk, got, want)
		}
	}
}
