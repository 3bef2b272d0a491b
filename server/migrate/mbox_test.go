package migrate

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// split runs splitMbox and returns the messages' data and damage.
func split(t *testing.T, in string, format MboxFormat) ([]mboxMessage, error) {
	t.Helper()
	return splitMboxMessages(t, strings.NewReader(in), format)
}

func TestSplitMbox(t *testing.T) {
	in := "From a@example.org Sat Jan  3 01:05:34 1996\n" +
		"X-UIDL: one\nSubject: 1\n\nbody\n>From me\n>>From you\nFrom here, not a separator\n\n" +
		"From b@example.org Sun Jan  4 01:05:34 1996\r\n" +
		"Subject: 2\r\n\r\nbody 2\r\n\r\n" +
		"From c@example.org Mon Jan  5 01:05:34 1996\n" +
		"Subject: 3\n\nlast\n"
	msgs, err := split(t, in, MboxRD)
	if err != nil || len(msgs) != 3 {
		t.Fatalf("%d messages, %v", len(msgs), err)
	}
	if got, want := string(msgs[0].data), "X-UIDL: one\nSubject: 1\n\nbody\nFrom me\n>From you\nFrom here, not a separator\n"; got != want {
		t.Errorf("mboxrd message 1 %q, want %q", got, want)
	}
	if got, want := string(msgs[1].data), "Subject: 2\r\n\r\nbody 2\r\n"; got != want {
		t.Errorf("message 2 %q, want %q", got, want)
	}
	if got, want := string(msgs[2].data), "Subject: 3\n\nlast\n"; got != want || msgs[2].line != 15 || msgs[2].damaged != "" {
		t.Errorf("message 3 %q line %d damaged %q", got, msgs[2].line, msgs[2].damaged)
	}
	if want := time.Date(1996, 1, 3, 1, 5, 34, 0, time.Local); !msgs[0].date.Equal(want) {
		t.Errorf("date %v, want %v", msgs[0].date, want)
	}
	msgs, _ = split(t, in, MboxO)
	if got := string(msgs[0].data); !strings.Contains(got, "\nFrom me\n>>From you\n") {
		t.Errorf("mboxo message 1 %q", got)
	}

	// Damaged: not an mbox at all; a message cut off inside the body or
	// the header: the earlier ones are whole.
	if _, err := split(t, "Subject: no From_ line\n\nbody\n", MboxRD); err == nil || !strings.Contains(err.Error(), `does not start with a "From " line`) {
		t.Errorf("no From_ line: %v", err)
	}
	for cut, want := range map[string]string{
		"From x Mon Jan  5 01:05:34 1996\nSubject: 4\n\ncut off in the mid": "its last line has no newline",
		"From x Mon Jan  5 01:05:34 1996\nSubject: 4\nTo: som":              "its last line has no newline",
		"From x Mon Jan  5 01:05:34 1996\nSubject: 4\n":                     "ends inside its header",
		"From x Mon Jan  5 01:05:34 1996":                                   "right after this message's From_ line",
	} {
		msgs, err := split(t, in+"\n"+cut, MboxRD)
		if err != nil || len(msgs) != 4 || msgs[2].damaged != "" || !strings.Contains(msgs[3].damaged, want) {
			t.Errorf("%q: %v %d messages, last damaged %q", cut, err, len(msgs), msgs[len(msgs)-1].damaged)
		}
	}
	if msgs, err := split(t, "", MboxRD); err != nil || len(msgs) != 0 {
		t.Errorf("empty file: %v %d", err, len(msgs))
	}
}

// TestSplitMboxContentLength: mboxcl and mboxcl2 bodies are exactly
// their Content-Length, so an unquoted "From " line after an empty line
// stays in the body; mboxcl still unquotes ">From "; a missing or wrong
// Content-Length falls back to From_ lines and marks the message.
func TestSplitMboxContentLength(t *testing.T) {
	body1 := "line\n\nFrom the start, a body line\n>From quoted\n"
	in := "From a@example.org Sat Jan  3 01:05:34 1996\n" +
		"X-UIDL: one\nContent-Length: " + strconv.Itoa(len(body1)) + "\n\n" + body1 + "\n" +
		"From b@example.org Sun Jan  4 01:05:34 1996\n" +
		"Content-Length: 5\n\nlast\n" // no separator before the end
	msgs, err := split(t, in, MboxCL2)
	if err != nil || len(msgs) != 2 {
		t.Fatalf("mboxcl2: %d messages, %v", len(msgs), err)
	}
	if got, want := string(msgs[0].data), "X-UIDL: one\nContent-Length: "+strconv.Itoa(len(body1))+"\n\n"+body1; got != want || msgs[0].unframed {
		t.Errorf("mboxcl2 message 1 %q (unframed %v), want %q", got, msgs[0].unframed, want)
	}
	if got := string(msgs[1].data); got != "Content-Length: 5\n\nlast\n" || msgs[1].unframed || msgs[1].line != 10 {
		t.Errorf("mboxcl2 message 2 %q line %d unframed %v", got, msgs[1].line, msgs[1].unframed)
	}
	msgs, _ = split(t, in, MboxCL)
	if len(msgs) != 2 || !strings.Contains(string(msgs[0].data), "\nFrom quoted\n") {
		t.Errorf("mboxcl: %+v", msgs)
	}
	// The same file read as mboxrd splits at the body's From_ line.
	if msgs, _ = split(t, in, MboxRD); len(msgs) != 3 {
		t.Errorf("mboxrd of a Content-Length file: %d messages, want 3", len(msgs))
	}

	// Wrong (too short, too long) or missing: split at From_ lines, marked.
	for _, cl := range []string{"Content-Length: 3\n", "Content-Length: 400\n", "Content-Length: x\n", ""} {
		in := "From a Sat Jan  3 01:05:34 1996\n" + cl + "\nbody\n\nFrom b Sat Jan  3 01:05:34 1996\nContent-Length: 3\n\nab\n"
		msgs, err := split(t, in, MboxCL2)
		if err != nil || len(msgs) != 2 || !msgs[0].unframed || msgs[1].unframed {
			t.Errorf("%q: %v %+v", cl, err, msgs)
			continue
		}
		if got := string(msgs[0].data); got != cl+"\nbody\n" {
			t.Errorf("%q: message 1 %q", cl, got)
		}
	}
	// Without a file to check the length against, From_ lines split.
	msgs, err = splitMboxMessages(t, io.MultiReader(strings.NewReader(in)), MboxCL2)
	if err != nil || len(msgs) != 3 || !msgs[0].unframed {
		t.Errorf("not a file: %v %d messages", err, len(msgs))
	}
}

func splitMboxMessages(t *testing.T, r io.Reader, format MboxFormat) ([]mboxMessage, error) {
	t.Helper()
	var out []mboxMessage
	err := splitMbox(r, format, 1<<20, func(m mboxMessage) error {
		out = append(out, m)
		return nil
	})
	return out, err
}

// TestImportMbox: X-UIDL is the UIDL (the header kept), Status/X-Status
// the flags, the From_ line the date; without X-UIDL a message is
// refused with a note unless AcceptNewUIDLs, then a second import skips
// it; a repeated X-UIDL, a bad one, a message over the limit and a
// cut-off last message are refused with the reason, the rest imports;
// a file that is no mbox fails the account.
func TestImportMbox(t *testing.T) {
	dir := t.TempDir()
	mbox := "From a@example.org Sat Jan  3 01:05:34 1996\n" +
		"X-UIDL: 3a1b2c3d4e\nStatus: RO\nX-Status: AF\nSubject: 1\n\nbody\n>From quoted\n\n" +
		"From a@example.org Sat Jan  3 02:05:34 1996\n" +
		"Subject: no uidl\n\nbody\n\n" +
		"From a@example.org Sat Jan  3 03:05:34 1996\n" +
		"X-UIDL: 3a1b2c3d4e\nSubject: again\n\nbody\n\n" +
		"From a@example.org Sat Jan  3 03:05:34 1996\n" +
		"X-UIDL: " + strings.Repeat("u", 71) + "\nSubject: long\n\nbody\n\n" +
		"From a@example.org Sat Jan  3 03:05:34 1996\n" +
		"X-UIDL: big\nSubject: big\n\n" + strings.Repeat("0123456789\n", 200) + "\n" +
		"From a@example.org Sat Jan  3 04:05:34 1996\n" +
		"X-UIDL: ok-2\nSubject: 2\n\nbody\n\n" +
		"From a@example.org Sat Jan  3 05:05:34 1996\n" +
		"X-UIDL: cut\nSubject: cut\n\nthe disk was fu"
	path := filepath.Join(dir, "demo.mbox")
	if err := os.WriteFile(path, []byte(mbox), 0o600); err != nil {
		t.Fatal(err)
	}
	tg, _ := target(t, 1024)
	list := []MboxAccount{{Address: "demo@example.test", Path: path}}
	rep := ImportMbox(context.Background(), tg, MboxSource{Format: MboxRD}, list, Options{})
	a := rep.Accounts[0]
	if a.Found != 7 || a.Imported != 2 || len(a.Refused) != 5 || a.Error != "" || len(a.Notes) != 1 || !strings.Contains(a.Notes[0], "1 of 7 messages have no X-UIDL header and were not imported") {
		t.Fatalf("%+v", a)
	}
	reasons := map[string]string{}
	for _, r := range a.Refused {
		reasons[r.Message] = r.Reason
	}
	for msg, want := range map[string]string{
		"message 2 (line 10)":  "no X-UIDL header",
		"message 3 (line 15)":  "message 1 (line 1) has this X-UIDL too",
		"message 4 (line 21)":  "at most 70",
		"message 5 (line 27)":  "larger than mail.max_message_bytes (1024)",
		"message 7 (line 238)": "its last line has no newline",
	} {
		if !strings.Contains(reasons[msg], want) {
			t.Errorf("%s: %q, want %q (all %q)", msg, reasons[msg], want, reasons)
		}
	}
	msgs := inboxMessages(t, tg)
	if len(msgs) != 2 || msgs[0].UIDL != "3a1b2c3d4e" || msgs[1].UIDL != "ok-2" {
		t.Fatalf("%+v", msgs)
	}
	if want := []string{`\Answered`, `\Flagged`, `\Seen`}; !slices.Equal(sorted(msgs[0].Flags), want) {
		t.Errorf("flags %q, want %q", msgs[0].Flags, want)
	}
	if want := time.Date(1996, 1, 3, 1, 5, 34, 0, time.Local); !msgs[0].InternalDate.Equal(want) {
		t.Errorf("date %v, want %v", msgs[0].InternalDate, want)
	}
	u, _ := tg.Mail.User("demo@example.test")
	mb, _ := u.Mailbox("INBOX")
	f, err := mb.Open(msgs[0].UID)
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	_, _ = body.ReadFrom(f)
	f.Close()
	if got := body.String(); !strings.HasPrefix(got, "X-UIDL: 3a1b2c3d4e\r\n") || !strings.Contains(got, "\r\nFrom quoted\r\n") || strings.HasSuffix(got, "\r\n\r\n") {
		t.Errorf("stored %q", got)
	}

	for range 2 {
		rep = ImportMbox(context.Background(), tg, MboxSource{Format: MboxRD, AcceptNewUIDLs: true}, list, Options{})
		if a := rep.Accounts[0]; len(a.Notes) != 1 || !strings.Contains(a.Notes[0], "imported with new UIDLs") {
			t.Errorf("--accept-new-uidls: %+v", a)
		}
	}
	if a := rep.Accounts[0]; a.Imported != 0 || a.Skipped != 3 {
		t.Errorf("second import with new UIDLs: %+v", a)
	}
	if got := inboxUIDLs(t, tg); len(got) != 3 || !strings.HasPrefix(got[2], "mbox-") {
		t.Errorf("UIDLs %q", got)
	}

	uw := filepath.Join(dir, "uw")
	if err := os.WriteFile(uw, []byte("From MAILER-DAEMON Sat Jan  3 01:05:34 1996\n"+
		"Subject: DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA\nX-IMAP: 1234567890 0000000002\n\nThis text is part of the internal format of your mail folder.\n\n"+
		"From a@example.org Sat Jan  3 02:05:34 1996\nX-UIDL: uw-1\nSubject: real\n\nbody\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rep = ImportMbox(context.Background(), tg, MboxSource{Format: MboxRD}, []MboxAccount{{Address: "demo@example.test", Path: uw}}, Options{})
	if a := rep.Accounts[0]; a.Found != 1 || a.Imported != 1 || len(a.Notes) != 1 || !strings.Contains(a.Notes[0], "internal data") {
		t.Errorf("UW IMAP's internal data message: %+v", a)
	}

	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("garbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rep = ImportMbox(context.Background(), tg, MboxSource{Format: MboxRD}, []MboxAccount{{Address: "demo@example.test", Path: bad}}, Options{})
	if a := rep.Accounts[0]; !strings.Contains(a.Error, "not an mbox") || !strings.Contains(a.Error, bad) {
		t.Errorf("not an mbox: %+v", a)
	}
}

// FuzzSplitMbox: the splitter never fails on an mbox, gives each
// message in order, and what it gives re-quoted is the input again.
func FuzzSplitMbox(f *testing.F) {
	f.Add([]byte("From a Sat Jan  3 01:05:34 1996\nSubject: 1\n\n>From x\n\nFrom b\nSubject: 2\n\nbody"))
	f.Add([]byte("From a\r\n\r\n>>From\r\n\r\nFrom b\r\n"))
	f.Add([]byte("From \n\n\n\nFrom \nFrom \n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, format := range []MboxFormat{MboxRD, MboxO, MboxCL, MboxCL2} {
			var msgs []mboxMessage
			err := splitMbox(bytes.NewReader(data), format, 1<<20, func(m mboxMessage) error {
				msgs = append(msgs, m)
				return nil
			})
			if len(data) > 0 && !bytes.HasPrefix(data, []byte("From ")) {
				if err == nil {
					t.Fatalf("%q: no error for a file without a From_ line", data)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%q: %v", data, err)
			}
			var total int64
			for i, m := range msgs {
				if m.n != i+1 || int64(len(m.data)) != m.size {
					t.Fatalf("%q: message %d: n %d, %d bytes of %d", data, i, m.n, len(m.data), m.size)
				}
				total += m.size
			}
			if total > int64(len(data)) {
				t.Fatalf("%q: %d bytes of messages from %d", data, total, len(data))
			}
			if format == MboxRD {
				// Written again as mboxrd (the whole messages), the
				// messages split into the same messages.
				var b bytes.Buffer
				var whole [][]byte
				for _, m := range msgs {
					if m.damaged == "" {
						b.WriteString("From x\n")
						b.Write(quoteFrom(m.data))
						b.WriteString("\n")
						whole = append(whole, m.data)
					}
				}
				var again [][]byte
				if err := splitMbox(&b, MboxRD, 1<<20, func(m mboxMessage) error {
					again = append(again, m.data)
					return nil
				}); err != nil {
					t.Fatalf("%q: written again: %v", data, err)
				}
				if !slices.EqualFunc(whole, again, bytes.Equal) {
					t.Fatalf("%q: written again and split: %q, want %q", data, again, whole)
				}
			}
		}
	})
}

// quoteFrom quotes body lines as mboxrd does.
func quoteFrom(data []byte) []byte {
	lines := bytes.SplitAfter(data, []byte("\n"))
	var b bytes.Buffer
	for _, l := range lines {
		if bytes.HasPrefix(bytes.TrimLeft(l, ">"), []byte("From ")) {
			b.WriteByte('>')
		}
		b.Write(l)
	}
	return b.Bytes()
}

// TestImportMboxUIDLFormat: with the old server's pop3_uidl_format the
// UIDL comes from X-UID and the first message's X-IMAPbase (X-UIDL is
// not used, as Dovecot ignores it without pop3_reuse_xuidl); a message
// without X-UID, or an mbox without X-IMAPbase when %v is needed, is
// refused with the reason.
func TestImportMboxUIDLFormat(t *testing.T) {
	dir := t.TempDir()
	withBase := filepath.Join(dir, "a.mbox")
	if err := os.WriteFile(withBase, []byte("From a Sat Jan  3 01:05:34 2004\nX-IMAPbase: 1796610489 0000000003\nX-UID: 1      \nX-UIDL: ignored\nSubject: 1\n\nbody\n\n"+
		"From a Sat Jan  3 02:05:34 2004\nSubject: 2, never seen by the old server\n\nbody\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	noBase := filepath.Join(dir, "b.mbox")
	if err := os.WriteFile(noBase, []byte("From a Sat Jan  3 01:05:34 2004\nX-UID: 5\nSubject: 1\n\nbody\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := ParseUIDLFormat("%08Xu%08Xv")
	if err != nil {
		t.Fatal(err)
	}
	tg, _ := target(t, 0)
	rep := ImportMbox(context.Background(), tg, MboxSource{Format: MboxRD, UIDLFormat: &f}, []MboxAccount{{Address: "demo@example.test", Path: withBase}}, Options{})
	a := rep.Accounts[0]
	if a.Imported != 1 || len(a.Refused) != 1 || !strings.Contains(a.Refused[0].Reason, "no X-UID header") {
		t.Fatalf("%+v", a)
	}
	if msgs := inboxMessages(t, tg); len(msgs) != 1 || msgs[0].UIDL != "000000016b1619b9" {
		t.Errorf("UIDLs %+v, want 000000016b1619b9", msgs)
	}
	rep = ImportMbox(context.Background(), tg, MboxSource{Format: MboxRD, UIDLFormat: &f}, []MboxAccount{{Address: "demo@example.test", Path: noBase}}, Options{})
	if a := rep.Accounts[0]; a.Imported != 0 || len(a.Refused) != 1 || !strings.Contains(a.Refused[0].Reason, "no X-IMAPbase header") {
		t.Errorf("without X-IMAPbase: %+v", a)
	}
}
