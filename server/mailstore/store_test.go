package mailstore_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"mailsetup/server/mailstore"
)

const addr = "John.Doe@Example.TEST"

// maildir is where addr's INBOX lives below root.
func maildir(root string) string {
	return filepath.Join(root, "example.test", "john.doe", "Maildir")
}

func openStore(t testing.TB, root string) *mailstore.Store {
	t.Helper()
	s, err := mailstore.Open(root, mailstore.Options{Hostname: "test.example", NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func openUser(t testing.TB, root string) *mailstore.User {
	t.Helper()
	u, err := openStore(t, root).User(addr)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func mailbox(t testing.TB, u *mailstore.User, name string) *mailstore.Mailbox {
	t.Helper()
	m, err := u.Mailbox(name)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func deliver(t testing.TB, u *mailstore.User, box, body string, opts mailstore.DeliverOptions) mailstore.Message {
	t.Helper()
	msg, err := u.Deliver(box, strings.NewReader(body), opts)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func messages(t testing.TB, m *mailstore.Mailbox) []mailstore.Message {
	t.Helper()
	msgs, err := m.Messages()
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

func content(t testing.TB, m *mailstore.Mailbox, uid uint32) string {
	t.Helper()
	f, err := m.Open(uid)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// dirFiles lists the file names in a Maildir sub-directory.
func dirFiles(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// ident is what must survive a rebuild.
type ident struct {
	UID   uint32
	UIDL  string
	Size  int64
	Date  int64
	Flags string
}

func idents(msgs []mailstore.Message) []ident {
	out := make([]ident, len(msgs))
	for i, m := range msgs {
		out[i] = ident{m.UID, m.UIDL, m.Size, m.InternalDate.Unix(), strings.Join(m.Flags, " ")}
	}
	return out
}

func uidls(msgs []mailstore.Message) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, m.UIDL)
	}
	slices.Sort(out)
	return out
}

func TestDeliverRoundTrip(t *testing.T) {
	root := t.TempDir()
	s, err := mailstore.Open(root, mailstore.Options{Hostname: "test.example"}) // with fsync
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.User(addr)
	if err != nil {
		t.Fatal(err)
	}
	if u.Address() != "john.doe@example.test" {
		t.Errorf("Address() = %q", u.Address())
	}
	date := time.Date(2024, 5, 6, 7, 8, 9, 500, time.UTC)
	body := "Subject: hi\r\n\r\nhello\r\n"
	msg := deliver(t, u, "inbox", body, mailstore.DeliverOptions{InternalDate: date})
	if msg.UID != 1 || msg.Size != int64(len(body)) || !msg.InternalDate.Equal(date.Truncate(time.Second)) {
		t.Errorf("Deliver returned %+v", msg)
	}
	if !mailstore.ValidUIDL(msg.UIDL) || !strings.HasSuffix(msg.UIDL, ".test.example") {
		t.Errorf("UIDL %q", msg.UIDL)
	}
	m := mailbox(t, u, "INBOX")
	msgs := messages(t, m)
	if len(msgs) != 1 || msgs[0].UID != 1 || msgs[0].UIDL != msg.UIDL || len(msgs[0].Flags) != 0 {
		t.Fatalf("Messages() = %+v", msgs)
	}
	if got := content(t, m, 1); got != body {
		t.Errorf("content %q", got)
	}
	if m.UIDNext() != 2 || m.UIDValidity() == 0 {
		t.Errorf("UIDNext %d UIDValidity %d", m.UIDNext(), m.UIDValidity())
	}
	if size, err := m.Size(); err != nil || size != int64(len(body)) {
		t.Errorf("Size() = %d, %v", size, err)
	}
	// On disk: one file in new/ with the UID and size in its name, and
	// the internal date as its mtime; nothing left in tmp/.
	files := dirFiles(t, filepath.Join(maildir(root), "new"))
	if len(files) != 1 || !strings.Contains(files[0], ",S=22,U=1,V=") || !strings.HasPrefix(files[0], msg.UIDL+",") {
		t.Errorf("new/ = %q", files)
	}
	fi, err := os.Stat(filepath.Join(maildir(root), "new", files[0]))
	if err != nil || !fi.ModTime().Equal(date.Truncate(time.Second)) {
		t.Errorf("mtime %v, %v", fi.ModTime(), err)
	}
	if tmp := dirFiles(t, filepath.Join(maildir(root), "tmp")); len(tmp) != 0 {
		t.Errorf("tmp/ = %q", tmp)
	}
	if _, err := m.Open(99); !errors.Is(err, mailstore.ErrNoMessage) {
		t.Errorf("Open(99) = %v", err)
	}

	// A second store sees the same.
	m2 := mailbox(t, openUser(t, root), "INBOX")
	if got := idents(messages(t, m2)); !slices.Equal(got, idents(msgs)) {
		t.Errorf("after reopen %+v, want %+v", got, idents(msgs))
	}
	if m2.UIDValidity() != m.UIDValidity() || m2.UIDNext() != 2 {
		t.Errorf("after reopen UIDValidity %d UIDNext %d", m2.UIDValidity(), m2.UIDNext())
	}
}

func TestBareLFNormalised(t *testing.T) {
	u := openUser(t, t.TempDir())
	m := mailbox(t, u, "INBOX")
	tests := []struct{ in, want string }{
		{"a\nb\r\nc\n", "a\r\nb\r\nc\r\n"},
		{"\n\n", "\r\n\r\n"},
		{"x\r\n", "x\r\n"},
		{"lone\rcr\n", "lone\rcr\r\n"},
		{"no newline", "no newline"},
		{"", ""},
	}
	for _, tc := range tests {
		for _, oneByte := range []bool{false, true} {
			var r io.Reader = strings.NewReader(tc.in)
			if oneByte { // CR and LF arrive in different reads
				r = iotest.OneByteReader(r)
			}
			msg, err := m.Append(r, nil, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			if got := content(t, m, msg.UID); got != tc.want || msg.Size != int64(len(tc.want)) {
				t.Errorf("%q (one byte %v): stored %q, size %d", tc.in, oneByte, got, msg.Size)
			}
		}
	}
	big := strings.Repeat("0123456789abcdef\n", 10000)
	msg, err := m.Append(strings.NewReader(big), nil, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if got := content(t, m, msg.UID); got != strings.ReplaceAll(big, "\n", "\r\n") {
		t.Errorf("large message not normalised (%d bytes)", len(got))
	}
}

// nothingVisible checks that a failed delivery left no file behind.
func nothingVisible(t *testing.T, dir string) {
	t.Helper()
	for _, sub := range []string{"tmp", "new", "cur"} {
		if files := dirFiles(t, filepath.Join(dir, sub)); len(files) != 0 {
			t.Errorf("%s/ holds %q", sub, files)
		}
	}
}

func TestMaxSizeAndQuota(t *testing.T) {
	root := t.TempDir()
	u := openUser(t, root)
	_, err := u.Deliver("INBOX", strings.NewReader(strings.Repeat("x", 101)), mailstore.DeliverOptions{MaxSize: 100})
	if !errors.Is(err, mailstore.ErrTooLarge) {
		t.Errorf("101 bytes with MaxSize 100: %v", err)
	}
	// 99 bytes with bare LF become more than 100.
	_, err = u.Deliver("INBOX", strings.NewReader(strings.Repeat("\n", 60)), mailstore.DeliverOptions{MaxSize: 100})
	if !errors.Is(err, mailstore.ErrTooLarge) {
		t.Errorf("60 LF with MaxSize 100: %v", err)
	}
	// A huge stream stops early.
	_, err = u.Deliver("INBOX", io.LimitReader(zeros{}, 1<<30), mailstore.DeliverOptions{MaxSize: 1 << 20})
	if !errors.Is(err, mailstore.ErrTooLarge) {
		t.Errorf("1 GiB with MaxSize 1 MiB: %v", err)
	}
	nothingVisible(t, maildir(root))
	deliver(t, u, "INBOX", strings.Repeat("x", 100), mailstore.DeliverOptions{MaxSize: 100})

	// Quota counts every mailbox.
	deliver(t, u, "Sent", strings.Repeat("y", 50), mailstore.DeliverOptions{QuotaBytes: 200})
	if bytes, n, err := u.Usage(); err != nil || bytes != 150 || n != 2 {
		t.Errorf("Usage() = %d, %d, %v", bytes, n, err)
	}
	deliver(t, u, "INBOX", strings.Repeat("z", 50), mailstore.DeliverOptions{QuotaBytes: 200}) // exactly full
	_, err = u.Deliver("INBOX", strings.NewReader("1"), mailstore.DeliverOptions{QuotaBytes: 200})
	if !errors.Is(err, mailstore.ErrOverQuota) {
		t.Errorf("over quota: %v", err)
	}
	_, err = u.Deliver("INBOX", strings.NewReader(strings.Repeat("q", 60)), mailstore.DeliverOptions{QuotaBytes: 250})
	if !errors.Is(err, mailstore.ErrOverQuota) {
		t.Errorf("over quota by 10: %v", err)
	}
	if files := dirFiles(t, filepath.Join(maildir(root), "tmp")); len(files) != 0 {
		t.Errorf("tmp/ holds %q", files)
	}
	if msgs := messages(t, mailbox(t, u, "INBOX")); len(msgs) != 2 {
		t.Errorf("INBOX holds %d messages, want 2", len(msgs))
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestFlags(t *testing.T) {
	root := t.TempDir()
	u := openUser(t, root)
	m := mailbox(t, u, "INBOX")
	msg := deliver(t, u, "INBOX", "a\r\n", mailstore.DeliverOptions{Flags: []string{`\seen`, "$Forwarded", `\Flagged`, "Junk"}})
	want := []string{"$Forwarded", "Junk", `\Flagged`, `\Seen`}
	if !slices.Equal(msg.Flags, want) {
		t.Errorf("flags %q, want %q", msg.Flags, want)
	}
	cur := filepath.Join(maildir(root), "cur")
	if files := dirFiles(t, cur); len(files) != 1 || !strings.HasSuffix(files[0], ":2,FS") {
		t.Errorf("cur/ = %q", files)
	}
	plain := deliver(t, u, "INBOX", "b\r\n", mailstore.DeliverOptions{})

	tests := []struct {
		op    mailstore.FlagOp
		flags []string
		want  []string
		info  string
	}{
		{mailstore.FlagsAdd, []string{`\Answered`, "$label1"}, []string{"$Forwarded", "$label1", "Junk", `\Answered`, `\Flagged`, `\Seen`}, ":2,FRS"},
		{mailstore.FlagsRemove, []string{`\Flagged`, "junk"}, []string{"$Forwarded", "$label1", `\Answered`, `\Seen`}, ":2,RS"},
		{mailstore.FlagsReplace, []string{`\Deleted`, `\Draft`}, []string{`\Deleted`, `\Draft`}, ":2,DT"},
		{mailstore.FlagsReplace, nil, nil, ":2,"},
	}
	for _, tc := range tests {
		got, err := m.StoreFlags([]uint32{msg.UID, 77}, tc.op, tc.flags)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].UID != msg.UID || !slices.Equal(got[0].Flags, tc.want) {
			t.Errorf("%v %q: got %+v, want flags %q", tc.op, tc.flags, got, tc.want)
		}
		if files := dirFiles(t, cur); len(files) != 1 || !strings.HasSuffix(files[0], tc.info) {
			t.Errorf("%v %q: cur/ = %q, want suffix %q", tc.op, tc.flags, files, tc.info)
		}
		if c := content(t, m, msg.UID); c != "a\r\n" {
			t.Errorf("content after flag change: %q", c)
		}
		if got := messages(t, m)[0]; got.UIDL != msg.UIDL {
			t.Errorf("UIDL changed with flags: %q -> %q", msg.UIDL, got.UIDL)
		}
	}

	// Flagging a message in new/ moves it to cur/.
	if _, err := m.StoreFlags([]uint32{plain.UID}, mailstore.FlagsAdd, []string{`\Seen`, "$Important"}); err != nil {
		t.Fatal(err)
	}
	if files := dirFiles(t, filepath.Join(maildir(root), "new")); len(files) != 0 {
		t.Errorf("new/ = %q", files)
	}
	if _, err := m.StoreFlags([]uint32{msg.UID}, mailstore.FlagsAdd, []string{`\Answered`, "NonJunk"}); err != nil {
		t.Fatal(err)
	}

	for _, bad := range []string{`\Recent`, `\Foo`, "has space", "paren(", `quote"`, "", strings.Repeat("k", 101), "ü"} {
		if _, err := m.StoreFlags([]uint32{msg.UID}, mailstore.FlagsAdd, []string{bad}); !errors.Is(err, mailstore.ErrBadFlag) {
			t.Errorf("flag %q: %v", bad, err)
		}
		if _, err := m.Append(strings.NewReader("x"), []string{bad}, time.Time{}); !errors.Is(err, mailstore.ErrBadFlag) {
			t.Errorf("append with flag %q: %v", bad, err)
		}
	}

	before := idents(messages(t, m))
	// Restart: flags and keywords come from the index.
	m2 := mailbox(t, openUser(t, root), "INBOX")
	if got := idents(messages(t, m2)); !slices.Equal(got, before) {
		t.Errorf("after reopen %+v, want %+v", got, before)
	}
	// Rebuild: system flags from the info suffix, keywords are lost.
	if err := os.Remove(filepath.Join(maildir(root), "mailsetup.index")); err != nil {
		t.Fatal(err)
	}
	got := messages(t, mailbox(t, openUser(t, root), "INBOX"))
	if len(got) != 2 || !slices.Equal(got[0].Flags, []string{`\Answered`}) || !slices.Equal(got[1].Flags, []string{`\Seen`}) {
		t.Errorf("after rebuild %+v", got)
	}
}

func TestExpunge(t *testing.T) {
	root := t.TempDir()
	u := openUser(t, root)
	m := mailbox(t, u, "INBOX")
	for i := range 5 {
		deliver(t, u, "INBOX", fmt.Sprintf("m%d\r\n", i), mailstore.DeliverOptions{})
	}
	if _, err := m.StoreFlags([]uint32{2}, mailstore.FlagsAdd, []string{`\Deleted`}); err != nil {
		t.Fatal(err)
	}
	got, err := m.Expunge([]uint32{4, 2, 9, 2})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []uint32{2, 4}) {
		t.Errorf("Expunge = %v", got)
	}
	var uids []uint32
	for _, msg := range messages(t, m) {
		uids = append(uids, msg.UID)
	}
	if !slices.Equal(uids, []uint32{1, 3, 5}) {
		t.Errorf("left %v", uids)
	}
	if n := len(dirFiles(t, filepath.Join(maildir(root), "new"))) + len(dirFiles(t, filepath.Join(maildir(root), "cur"))); n != 3 {
		t.Errorf("%d files left", n)
	}
	if _, err := m.Open(2); !errors.Is(err, mailstore.ErrNoMessage) {
		t.Errorf("Open(expunged) = %v", err)
	}
	if got, err := m.Expunge([]uint32{2}); err != nil || len(got) != 0 {
		t.Errorf("second Expunge = %v, %v", got, err)
	}
	if size, _ := m.Size(); size != 12 {
		t.Errorf("Size() = %d", size)
	}
	// Expunging the highest UID must not let it be reused, not even after
	// the index is lost.
	if _, err := m.Expunge([]uint32{5}); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(maildir(root), "mailsetup.index")); err != nil {
		t.Fatal(err)
	}
	m2 := mailbox(t, openUser(t, root), "INBOX")
	if m2.UIDNext() != 6 || m2.UIDValidity() != m.UIDValidity() {
		t.Errorf("after rebuild UIDNext %d (want 6), UIDValidity %d (want %d)", m2.UIDNext(), m2.UIDValidity(), m.UIDValidity())
	}
}

func TestCopyTo(t *testing.T) {
	root := t.TempDir()
	u := openUser(t, root)
	src := mailbox(t, u, "INBOX")
	dst := mailbox(t, u, "Archive")
	a := deliver(t, u, "INBOX", "first\r\n", mailstore.DeliverOptions{Flags: []string{`\Seen`, "$Work"}})
	deliver(t, u, "INBOX", "second\r\n", mailstore.DeliverOptions{})
	c := deliver(t, u, "INBOX", "third\r\n", mailstore.DeliverOptions{UIDL: "old-server-uidl-3"})
	deliver(t, u, "Archive", "already there\r\n", mailstore.DeliverOptions{})

	pairs, err := src.CopyTo(dst, []uint32{c.UID, a.UID, 42})
	if err != nil {
		t.Fatal(err)
	}
	if want := [][2]uint32{{1, 2}, {3, 3}}; !slices.Equal(pairs, want) {
		t.Errorf("pairs %v, want %v", pairs, want)
	}
	got := messages(t, dst)
	if len(got) != 3 {
		t.Fatalf("destination holds %+v", got)
	}
	if !slices.Equal(got[1].Flags, []string{"$Work", `\Seen`}) || !got[1].InternalDate.Equal(a.InternalDate) {
		t.Errorf("copy lost flags or date: %+v", got[1])
	}
	if got[1].UIDL == a.UIDL || got[2].UIDL == c.UIDL || !mailstore.ValidUIDL(got[2].UIDL) {
		t.Errorf("copies must get new UIDLs: %q %q", got[1].UIDL, got[2].UIDL)
	}
	if content(t, dst, 2) != "first\r\n" || content(t, dst, 3) != "third\r\n" {
		t.Error("copied content differs")
	}
	// Hard links where possible.
	f1, _ := src.Open(a.UID)
	f2, _ := dst.Open(2)
	fi1, _ := f1.Stat()
	fi2, _ := f2.Stat()
	f1.Close()
	f2.Close()
	if !os.SameFile(fi1, fi2) {
		t.Error("copy is not a hard link")
	}
	// The source is unchanged; expunging it leaves the copy.
	if _, err := src.Expunge([]uint32{a.UID}); err != nil {
		t.Fatal(err)
	}
	if content(t, dst, 2) != "first\r\n" {
		t.Error("copy gone with the original")
	}
	// Copy into the same mailbox.
	pairs, err = dst.CopyTo(dst, []uint32{2})
	if err != nil || !slices.Equal(pairs, [][2]uint32{{2, 4}}) {
		t.Errorf("self copy: %v, %v", pairs, err)
	}
	if dirs := dirFiles(t, filepath.Join(maildir(root), ".Archive", "tmp")); len(dirs) != 0 {
		t.Errorf("tmp/ holds %q", dirs)
	}
}

func TestChanged(t *testing.T) {
	u := openUser(t, t.TempDir())
	m := mailbox(t, u, "INBOX")
	other := mailbox(t, u, "inbox") // another value, same mailbox
	ch := m.Changed()
	select {
	case <-ch:
		t.Fatal("closed before any change")
	default:
	}
	go func() {
		_, _ = other.Append(strings.NewReader("x\r\n"), nil, time.Time{})
	}()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("no notification for a delivery")
	}
	ch2 := m.Changed()
	select {
	case <-ch2:
		t.Fatal("new channel closed without a change")
	default:
	}
	if _, err := other.StoreFlags([]uint32{1}, mailstore.FlagsAdd, []string{`\Seen`}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch2:
	default:
		t.Fatal("no notification for a flag change")
	}
	ch3 := m.Changed()
	if _, err := other.Expunge([]uint32{1}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch3:
	default:
		t.Fatal("no notification for an expunge")
	}
}

// populate delivers a mix of messages and returns INBOX.
func populate(t *testing.T, u *mailstore.User) *mailstore.Mailbox {
	t.Helper()
	m := mailbox(t, u, "INBOX")
	for i := range 20 {
		opts := mailstore.DeliverOptions{InternalDate: time.Unix(1700000000+int64(i)*3600, 0)}
		if i%3 == 0 {
			opts.Flags = []string{`\Seen`}
		}
		if i == 7 {
			opts.UIDL = "imported-7"
		}
		deliver(t, u, "INBOX", fmt.Sprintf("Subject: %d\r\n\r\nbody %d\r\n", i, i), opts)
	}
	if _, err := m.Expunge([]uint32{4, 20}); err != nil { // gaps, and the top UID gone
		t.Fatal(err)
	}
	if _, err := m.StoreFlags([]uint32{5, 6}, mailstore.FlagsAdd, []string{`\Answered`, `\Flagged`}); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestRebuildKeepsUIDs(t *testing.T) {
	root := t.TempDir()
	m := populate(t, openUser(t, root))
	before := messages(t, m)
	uv, next := m.UIDValidity(), m.UIDNext()

	if err := os.Remove(filepath.Join(maildir(root), "mailsetup.index")); err != nil {
		t.Fatal(err)
	}
	m2 := mailbox(t, openUser(t, root), "INBOX")
	if got := idents(messages(t, m2)); !slices.Equal(got, idents(before)) {
		t.Errorf("after rebuild\n%+v\nwant\n%+v", got, idents(before))
	}
	if m2.UIDValidity() != uv || m2.UIDNext() != next {
		t.Errorf("UIDVALIDITY %d UIDNEXT %d, want %d %d", m2.UIDValidity(), m2.UIDNext(), uv, next)
	}
	// The rebuilt index is a normal one.
	msg := deliver(t, openUser(t, root), "INBOX", "new\r\n", mailstore.DeliverOptions{})
	if msg.UID != next {
		t.Errorf("next delivery got UID %d, want %d", msg.UID, next)
	}
	// A damaged (not just torn) index is rebuilt as well.
	idx := filepath.Join(maildir(root), "mailsetup.index")
	data, err := os.ReadFile(idx)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x20
	if err := os.WriteFile(idx, data, 0o600); err != nil {
		t.Fatal(err)
	}
	m3 := mailbox(t, openUser(t, root), "INBOX")
	if got := messages(t, m3); len(got) != len(before)+1 || m3.UIDValidity() != uv || got[len(got)-1].UIDL != msg.UIDL {
		t.Errorf("after damage: %d messages, UIDVALIDITY %d", len(got), m3.UIDValidity())
	}
}

func TestRebuildWithoutUIDValidity(t *testing.T) {
	root := t.TempDir()
	m := populate(t, openUser(t, root))
	before := messages(t, m)
	uv := m.UIDValidity()
	for _, f := range []string{"mailsetup.index", "mailsetup.uidvalidity"} {
		if err := os.Remove(filepath.Join(maildir(root), f)); err != nil {
			t.Fatal(err)
		}
	}
	m2 := mailbox(t, openUser(t, root), "INBOX")
	after := messages(t, m2)
	if !slices.Equal(uidls(after), uidls(before)) {
		t.Errorf("UIDLs changed:\n%q\n%q", uidls(after), uidls(before))
	}
	if m2.UIDValidity() <= uv {
		t.Errorf("UIDVALIDITY %d, want a new one above %d", m2.UIDValidity(), uv)
	}
	for i, msg := range after {
		if msg.UID != uint32(i+1) {
			t.Errorf("message %d has UID %d", i, msg.UID)
		}
	}
	// The new numbering is in the file names now: another index loss
	// keeps it.
	if err := os.Remove(filepath.Join(maildir(root), "mailsetup.index")); err != nil {
		t.Fatal(err)
	}
	m3 := mailbox(t, openUser(t, root), "INBOX")
	if got := idents(messages(t, m3)); !slices.Equal(got, idents(after)) || m3.UIDValidity() != m2.UIDValidity() {
		t.Errorf("second rebuild changed UIDs:\n%+v\n%+v", got, idents(after))
	}
}

func TestGivenUIDL(t *testing.T) {
	root := t.TempDir()
	u := openUser(t, root)
	given := "UID7731-1156000000@old.example.com"
	msg := deliver(t, u, "INBOX", "imported\r\n", mailstore.DeliverOptions{UIDL: given})
	if msg.UIDL != given {
		t.Errorf("UIDL %q, want %q", msg.UIDL, given)
	}
	_, err := u.Deliver("INBOX", strings.NewReader("again\r\n"), mailstore.DeliverOptions{UIDL: given})
	if !errors.Is(err, mailstore.ErrDuplicateUIDL) {
		t.Errorf("duplicate UIDL: %v", err)
	}
	for _, bad := range []string{"has space", strings.Repeat("u", 71), "ctl\x01", "ümlaut"} {
		if _, err := u.Deliver("INBOX", strings.NewReader("x"), mailstore.DeliverOptions{UIDL: bad}); !errors.Is(err, mailstore.ErrBadName) {
			t.Errorf("UIDL %q: %v", bad, err)
		}
	}
	long := strings.Repeat("~", 70)
	deliver(t, u, "INBOX", "long\r\n", mailstore.DeliverOptions{UIDL: long, Flags: []string{`\Seen`}})
	nothingLeft := dirFiles(t, filepath.Join(maildir(root), "tmp"))
	if len(nothingLeft) != 0 {
		t.Errorf("tmp/ holds %q", nothingLeft)
	}
	for _, files := range []string{"mailsetup.index", "mailsetup.uidvalidity"} {
		if err := os.Remove(filepath.Join(maildir(root), files)); err != nil {
			t.Fatal(err)
		}
		got := messages(t, mailbox(t, openUser(t, root), "INBOX"))
		if len(got) != 2 || got[0].UIDL != given || got[1].UIDL != long {
			t.Errorf("after removing %s: %+v", files, got)
		}
	}
}

func TestForeignFiles(t *testing.T) {
	root := t.TempDir()
	u := openUser(t, root)
	m := mailbox(t, u, "INBOX")
	ours := deliver(t, u, "INBOX", "ours\r\n", mailstore.DeliverOptions{})
	dir := maildir(root)
	// Another agent delivers into new/ and cur/.
	write := func(name, body string, mtime time.Time) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	d1 := time.Unix(1600000000, 0)
	write("new/1600000000.M1P2.otherhost", "dropped\n", d1)
	write("cur/1600000001.M3P4.otherhost:2,RS", "seen and answered\n", d1.Add(time.Second))
	write("new/1600000002.M5P6."+strings.Repeat("h", 80), "long name\n", d1.Add(2*time.Second))
	write("new/.hidden", "not mail\n", d1)
	write("cur/1600000003.M7P8.otherhost:1,experimental", "not ours to read\n", d1)

	msgs := messages(t, m)
	if len(msgs) != 4 {
		t.Fatalf("Messages() = %+v", msgs)
	}
	f1, f2, f3 := msgs[1], msgs[2], msgs[3]
	// Bare LF line endings became CRLF (the size is what POP3 and IMAP
	// send); the internal date (mtime) is kept.
	if f1.UID != 2 || f1.UIDL != "1600000000.M1P2.otherhost" || f1.Size != 9 || !f1.InternalDate.Equal(d1) || len(f1.Flags) != 0 {
		t.Errorf("new/ file picked up as %+v", f1)
	}
	if f2.UID != 3 || f2.UIDL != "1600000001.M3P4.otherhost" || !slices.Equal(f2.Flags, []string{`\Answered`, `\Seen`}) {
		t.Errorf("cur/ file picked up as %+v", f2)
	}
	if f3.UID != 4 || !mailstore.ValidUIDL(f3.UIDL) || len(f3.UIDL) != 33 {
		t.Errorf("long-named file picked up as %+v", f3)
	}
	if content(t, m, 2) != "dropped\r\n" {
		t.Error("content of picked-up file")
	}

	// The agent moves a file to cur/ and re-flags another: Open finds
	// them, and the flags are taken.
	if err := os.Rename(filepath.Join(dir, "new/1600000000.M1P2.otherhost"), filepath.Join(dir, "cur/1600000000.M1P2.otherhost:2,S")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "cur/1600000001.M3P4.otherhost:2,RS"), filepath.Join(dir, "cur/1600000001.M3P4.otherhost:2,FR")); err != nil {
		t.Fatal(err)
	}
	if content(t, m, 2) != "dropped\r\n" || content(t, m, 3) != "seen and answered\r\n" {
		t.Error("content after the agent moved files")
	}
	msgs = messages(t, m)
	if !slices.Equal(msgs[1].Flags, []string{`\Seen`}) || !slices.Equal(msgs[2].Flags, []string{`\Answered`, `\Flagged`}) {
		t.Errorf("flags after the agent re-flagged: %q %q", msgs[1].Flags, msgs[2].Flags)
	}
	// Our flag change on a file the agent moved.
	if _, err := m.StoreFlags([]uint32{3}, mailstore.FlagsAdd, []string{`\Deleted`}); err != nil {
		t.Fatal(err)
	}
	// The agent deletes one.
	if err := os.Remove(filepath.Join(dir, "cur/1600000000.M1P2.otherhost:2,S")); err != nil {
		t.Fatal(err)
	}
	msgs = messages(t, m)
	if len(msgs) != 3 || msgs[1].UID != 3 || !slices.Equal(msgs[1].Flags, []string{`\Answered`, `\Deleted`, `\Flagged`}) {
		t.Errorf("after the agent deleted one: %+v", msgs)
	}
	before := messages(t, m)

	// Rebuild: our UID is kept, the foreign files get UIDs above every
	// UID used so far, the UIDLs stay, UIDVALIDITY stays.
	if err := os.Remove(filepath.Join(dir, "mailsetup.index")); err != nil {
		t.Fatal(err)
	}
	m2 := mailbox(t, openUser(t, root), "INBOX")
	after := messages(t, m2)
	if m2.UIDValidity() != m.UIDValidity() || !slices.Equal(uidls(after), uidls(before)) {
		t.Errorf("rebuild: UIDVALIDITY %d->%d, UIDLs %q -> %q", m.UIDValidity(), m2.UIDValidity(), uidls(before), uidls(after))
	}
	if after[0].UID != ours.UID || after[1].UID < 5 || after[2].UID < 5 {
		t.Errorf("rebuild reused UIDs: %+v", after)
	}
}

func TestTornIndexTail(t *testing.T) {
	root := t.TempDir()
	u := openUser(t, root)
	for i := range 3 {
		deliver(t, u, "INBOX", fmt.Sprintf("%d\r\n", i), mailstore.DeliverOptions{})
	}
	idx := filepath.Join(maildir(root), "mailsetup.index")
	f, err := os.OpenFile(idx, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("F 2 \\Seen 1234"); err != nil { // crash mid-append
		t.Fatal(err)
	}
	f.Close()
	u2 := openUser(t, root)
	m := mailbox(t, u2, "INBOX")
	msgs := messages(t, m)
	if len(msgs) != 3 || len(msgs[1].Flags) != 0 {
		t.Fatalf("after torn tail: %+v", msgs)
	}
	deliver(t, u2, "INBOX", "after\r\n", mailstore.DeliverOptions{})
	if got := messages(t, mailbox(t, openUser(t, root), "INBOX")); len(got) != 4 || got[3].UID != 4 {
		t.Errorf("after torn tail and a delivery: %+v", got)
	}
	// A complete line with a bad checksum at the very end is torn too.
	f, err = os.OpenFile(idx, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("X 1 00000000\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if got := messages(t, mailbox(t, openUser(t, root), "INBOX")); len(got) != 4 {
		t.Errorf("after a bad last line: %+v", got)
	}
}

func TestConcurrentDeliver(t *testing.T) {
	root := t.TempDir()
	s := openStore(t, root)
	u, err := s.User(addr)
	if err != nil {
		t.Fatal(err)
	}
	const workers, per = 8, 200
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range workers {
		wg.Go(func() {
			uu, err := s.User(addr) // separate User and Mailbox values
			if err != nil {
				t.Error(err)
				return
			}
			for i := range per {
				body := fmt.Sprintf("From: w%d\r\n\r\nmessage %d/%d\r\n", w, w, i)
				if _, err := uu.Deliver("INBOX", strings.NewReader(body), mailstore.DeliverOptions{}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	// Readers and a POP3-like client at the same time.
	var readers sync.WaitGroup
	readers.Go(func() {
		m := mailbox(t, u, "INBOX")
		for {
			select {
			case <-stop:
				return
			default:
			}
			msgs, err := m.Messages()
			if err != nil {
				t.Error(err)
				return
			}
			var uids []uint32
			for i, msg := range msgs {
				if i > 0 && msg.UID <= msgs[i-1].UID {
					t.Error("snapshot not sorted")
				}
				if i%50 == 0 {
					uids = append(uids, msg.UID)
				}
			}
			if err := m.MarkRetrieved(uids, time.Time{}); err != nil {
				t.Error(err)
			}
			if _, err := m.StoreFlags(uids, mailstore.FlagsAdd, []string{`\Seen`}); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Wait()
	close(stop)
	readers.Wait()

	check := func(m *mailstore.Mailbox) {
		t.Helper()
		msgs := messages(t, m)
		if len(msgs) != workers*per {
			t.Fatalf("%d messages, want %d", len(msgs), workers*per)
		}
		seen := map[string]bool{}
		seenUIDL := map[string]bool{}
		for i, msg := range msgs {
			if msg.UID != uint32(i+1) {
				t.Fatalf("message %d has UID %d", i, msg.UID)
			}
			c := content(t, m, msg.UID)
			if seen[c] || seenUIDL[msg.UIDL] {
				t.Fatalf("duplicate %q / %q", c, msg.UIDL)
			}
			seen[c], seenUIDL[msg.UIDL] = true, true
		}
		for w := range workers {
			for i := range per {
				if !seen[fmt.Sprintf("From: w%d\r\n\r\nmessage %d/%d\r\n", w, w, i)] {
					t.Fatalf("message %d/%d missing", w, i)
				}
			}
		}
	}
	check(mailbox(t, u, "INBOX"))
	check(mailbox(t, openUser(t, root), "INBOX"))
}

func TestMailboxes(t *testing.T) {
	root := t.TempDir()
	u := openUser(t, root)
	list := func() []mailstore.MailboxInfo {
		t.Helper()
		l, err := u.Mailboxes()
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	want := []mailstore.MailboxInfo{
		{"INBOX", "", true}, {"Archive", `\Archive`, true}, {"Drafts", `\Drafts`, true},
		{"Junk", `\Junk`, true}, {"Sent", `\Sent`, true}, {"Trash", `\Trash`, true},
	}
	if got := list(); !slices.Equal(got, want) {
		t.Errorf("Mailboxes() = %+v", got)
	}
	if err := u.CreateMailbox("Projects/2026/Q1"); err != nil {
		t.Fatal(err)
	}
	if err := u.CreateMailbox("Entwürfe & Notizen"); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{".Projects", ".Projects.2026", ".Projects.2026.Q1", ".Entw&APw-rfe &- Notizen"} {
		if _, err := os.Stat(filepath.Join(maildir(root), d, "maildirfolder")); err != nil {
			t.Errorf("folder %s: %v", d, err)
		}
	}
	if err := u.CreateMailbox("Projects/2026"); !errors.Is(err, mailstore.ErrMailboxExists) {
		t.Errorf("creating existing: %v", err)
	}
	if err := u.CreateMailbox("iNbOx"); !errors.Is(err, mailstore.ErrMailboxExists) {
		t.Errorf("creating INBOX: %v", err)
	}
	for _, bad := range []string{"", "a.b", ".hidden", "a/../b", "a//b", "/a", "a/", "tab\there", "del\x7f", "star*", "per%cent", strings.Repeat("x", 201), "\xff"} {
		if err := u.CreateMailbox(bad); !errors.Is(err, mailstore.ErrBadName) {
			t.Errorf("CreateMailbox(%q) = %v", bad, err)
		}
		if _, err := u.Mailbox(bad); !errors.Is(err, mailstore.ErrBadName) {
			t.Errorf("Mailbox(%q) = %v", bad, err)
		}
	}
	if err := u.CreateMailbox(strings.Repeat("x", 200)); err != nil {
		t.Errorf("200-byte name: %v", err)
	}
	if _, err := u.Mailbox("Nope"); !errors.Is(err, mailstore.ErrNoMailbox) {
		t.Errorf("Mailbox(missing) = %v", err)
	}
	if _, err := u.Deliver("Nope", strings.NewReader("x"), mailstore.DeliverOptions{}); !errors.Is(err, mailstore.ErrNoMailbox) {
		t.Errorf("Deliver(missing) = %v", err)
	}
	m := mailbox(t, u, "Entwürfe & Notizen")
	if m.Name() != "Entwürfe & Notizen" || mailbox(t, u, "inBOX").Name() != "INBOX" {
		t.Errorf("names %q", m.Name())
	}

	// Subscriptions.
	if err := u.SetSubscribed("Projects/2026", true); err != nil {
		t.Fatal(err)
	}
	if err := u.SetSubscribed("Junk", false); err != nil {
		t.Fatal(err)
	}
	if err := u.SetSubscribed("Nope", true); !errors.Is(err, mailstore.ErrNoMailbox) {
		t.Errorf("subscribing missing: %v", err)
	}

	// Rename with children, keeping messages and UIDs.
	msg := deliver(t, u, "Projects/2026", "project mail\r\n", mailstore.DeliverOptions{})
	old := mailbox(t, u, "Projects/2026")
	uv := old.UIDValidity()
	if err := u.RenameMailbox("Projects", "Work/Old"); err != nil {
		t.Fatal(err)
	}
	if _, err := old.Messages(); !errors.Is(err, mailstore.ErrNoMailbox) {
		t.Errorf("renamed-away mailbox still usable: %v", err)
	}
	moved := mailbox(t, u, "Work/Old/2026")
	if msgs := messages(t, moved); len(msgs) != 1 || msgs[0].UIDL != msg.UIDL || moved.UIDValidity() != uv {
		t.Errorf("after rename: %+v, UIDVALIDITY %d (was %d)", msgs, moved.UIDValidity(), uv)
	}
	if err := u.RenameMailbox("Work", "Trash"); !errors.Is(err, mailstore.ErrMailboxExists) {
		t.Errorf("rename onto existing: %v", err)
	}
	if err := u.RenameMailbox("Nope", "Other"); !errors.Is(err, mailstore.ErrNoMailbox) {
		t.Errorf("rename missing: %v", err)
	}
	if err := u.RenameMailbox("Work", "Work/Sub"); !errors.Is(err, mailstore.ErrBadName) {
		t.Errorf("rename below itself: %v", err)
	}
	// A new mailbox under the old name is a different mailbox.
	if err := u.CreateMailbox("Projects/2026"); err != nil {
		t.Fatal(err)
	}
	fresh := mailbox(t, u, "Projects/2026")
	if msgs := messages(t, fresh); len(msgs) != 0 || fresh.UIDValidity() == uv {
		t.Errorf("recreated mailbox: %+v, UIDVALIDITY %d", msgs, fresh.UIDValidity())
	}

	// Delete.
	if err := u.DeleteMailbox("INBOX"); !errors.Is(err, mailstore.ErrBadName) {
		t.Errorf("deleting INBOX: %v", err)
	}
	if err := u.DeleteMailbox("Work/Old/2026"); err != nil {
		t.Fatal(err)
	}
	if _, err := moved.Messages(); !errors.Is(err, mailstore.ErrNoMailbox) {
		t.Errorf("deleted mailbox still usable: %v", err)
	}
	select {
	case <-moved.Changed():
	default:
		t.Error("Changed() of a deleted mailbox is not closed")
	}
	if err := u.DeleteMailbox("Work/Old/2026"); !errors.Is(err, mailstore.ErrNoMailbox) {
		t.Errorf("deleting twice: %v", err)
	}
	var names []string
	var subscribed []string
	for _, mi := range list() {
		names = append(names, mi.Name)
		if mi.Subscribed {
			subscribed = append(subscribed, mi.Name)
		}
	}
	wantNames := []string{"INBOX", "Archive", "Drafts", "Entwürfe & Notizen", "Junk", "Projects", "Projects/2026", "Sent", "Trash",
		"Work", "Work/Old", "Work/Old/2026/Q1", strings.Repeat("x", 200)}
	if !slices.Equal(names, wantNames) {
		t.Errorf("names %q\nwant  %q", names, wantNames)
	}
	if want := []string{"INBOX", "Archive", "Drafts", "Sent", "Trash"}; !slices.Equal(subscribed, want) {
		t.Errorf("subscribed %q, want %q", subscribed, want)
	}

	// RENAME INBOX moves the messages (RFC 3501 §6.3.5).
	deliver(t, u, "INBOX", "inbox mail\r\n", mailstore.DeliverOptions{})
	if err := u.RenameMailbox("INBOX", "Old Inbox"); err != nil {
		t.Fatal(err)
	}
	if n := len(messages(t, mailbox(t, u, "INBOX"))); n != 0 {
		t.Errorf("INBOX holds %d after rename", n)
	}
	if msgs := messages(t, mailbox(t, u, "Old Inbox")); len(msgs) != 1 {
		t.Errorf("Old Inbox holds %+v", msgs)
	}
}

func TestUserAddress(t *testing.T) {
	s := openStore(t, t.TempDir())
	for _, bad := range []string{"", "nobody", "@example.test", "a@", "../x@example.test", "a@..", "a/b@example.test", "a@ex\x00ample"} {
		if _, err := s.User(bad); !errors.Is(err, mailstore.ErrBadName) {
			t.Errorf("User(%q) = %v", bad, err)
		}
	}
	a, err := s.User("A@X.TEST")
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.User("a@x.test")
	if err != nil {
		t.Fatal(err)
	}
	deliver(t, a, "INBOX", "x", mailstore.DeliverOptions{})
	if n := len(messages(t, mailbox(t, b, "INBOX"))); n != 1 {
		t.Errorf("case-folded address sees %d messages", n)
	}
}

func TestMarkRetrieved(t *testing.T) {
	root := t.TempDir()
	u := openUser(t, root)
	m := mailbox(t, u, "INBOX")
	deliver(t, u, "INBOX", "1", mailstore.DeliverOptions{})
	deliver(t, u, "INBOX", "2", mailstore.DeliverOptions{})
	t1 := time.Unix(1750000000, 0)
	if err := m.MarkRetrieved([]uint32{1, 5}, t1); err != nil {
		t.Fatal(err)
	}
	if err := m.MarkRetrieved([]uint32{1, 2}, t1.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	check := func(m *mailstore.Mailbox) {
		t.Helper()
		msgs := messages(t, m)
		if !msgs[0].Retrieved.Equal(t1) || !msgs[1].Retrieved.Equal(t1.Add(time.Hour)) {
			t.Errorf("Retrieved %v %v", msgs[0].Retrieved, msgs[1].Retrieved)
		}
	}
	check(m)
	check(mailbox(t, openUser(t, root), "INBOX"))
}

func TestCompaction(t *testing.T) {
	root := t.TempDir()
	u := openUser(t, root)
	m := mailbox(t, u, "INBOX")
	deliver(t, u, "INBOX", "keep\r\n", mailstore.DeliverOptions{})
	for i := range 300 {
		op := mailstore.FlagsAdd
		if i%2 == 1 {
			op = mailstore.FlagsRemove
		}
		if _, err := m.StoreFlags([]uint32{1}, op, []string{`\Seen`, "$k"}); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(filepath.Join(maildir(root), "mailsetup.index"))
	if err != nil {
		t.Fatal(err)
	}
	if lines := bytes.Count(data, []byte("\n")); lines > 70 {
		t.Errorf("index has %d lines after 300 flag changes of one message", lines)
	}
	got := messages(t, mailbox(t, openUser(t, root), "INBOX"))
	if len(got) != 1 || len(got[0].Flags) != 0 {
		t.Errorf("after compaction %+v", got)
	}
}

func TestTmpCleanup(t *testing.T) {
	root := t.TempDir()
	openUser(t, root)
	tmp := filepath.Join(maildir(root), "tmp")
	old, recent := filepath.Join(tmp, "old"), filepath.Join(tmp, "recent")
	for _, p := range []string{old, recent} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// A file still being delivered has the message's internal date as
	// its mtime, often long past; its ctime says it is recent.
	long := time.Now().Add(-37 * time.Hour)
	if err := os.Chtimes(recent, long, long); err != nil {
		t.Fatal(err)
	}
	mailbox(t, openUser(t, root), "INBOX")
	if _, err := os.Stat(recent); err != nil {
		t.Errorf("recent tmp file with an old mtime removed: %v", err)
	}
	// 37 hours later (the ctime cannot be set back, the clock can) both
	// are stale.
	later := time.Now().Add(37 * time.Hour)
	s, err := mailstore.Open(root, mailstore.Options{Hostname: "test.example", NoSync: true, Now: func() time.Time { return later }})
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.User(addr)
	if err != nil {
		t.Fatal(err)
	}
	mailbox(t, u, "INBOX")
	for _, p := range []string{old, recent} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("stale tmp file %s kept: %v", filepath.Base(p), err)
		}
	}
}

func TestEvict(t *testing.T) {
	root := t.TempDir()
	s := openStore(t, root)
	u, err := s.User(addr)
	if err != nil {
		t.Fatal(err)
	}
	m := mailbox(t, u, "INBOX")
	deliver(t, u, "INBOX", "x", mailstore.DeliverOptions{})
	if n := s.Evict(0); n == 0 {
		t.Error("nothing evicted")
	}
	if msgs := messages(t, m); len(msgs) != 1 {
		t.Errorf("after eviction %+v", msgs)
	}
}

// A crash after the file reached new/ but before its index record was
// written: the next load picks the message up with the UID in its name.
func TestCrashBeforeIndexRecord(t *testing.T) {
	root := t.TempDir()
	u := openUser(t, root)
	deliver(t, u, "INBOX", "one\r\n", mailstore.DeliverOptions{})
	idx := filepath.Join(maildir(root), "mailsetup.index")
	saved, err := os.ReadFile(idx)
	if err != nil {
		t.Fatal(err)
	}
	two := deliver(t, u, "INBOX", "two\r\n", mailstore.DeliverOptions{Flags: []string{`\Seen`}})
	if err := os.WriteFile(idx, saved, 0o600); err != nil { // the record never made it
		t.Fatal(err)
	}
	m := mailbox(t, openUser(t, root), "INBOX")
	msgs := messages(t, m)
	if len(msgs) != 2 || msgs[1].UID != two.UID || msgs[1].UIDL != two.UIDL || !slices.Equal(msgs[1].Flags, []string{`\Seen`}) {
		t.Fatalf("after crash %+v, want UID %d UIDL %q", msgs, two.UID, two.UIDL)
	}
	if m.UIDNext() != 3 {
		t.Errorf("UIDNext %d", m.UIDNext())
	}
}

// A file another agent moved here from a folder of ours carries a UID
// that means nothing here: it gets a new one.
func TestFileMovedFromOtherFolder(t *testing.T) {
	root := t.TempDir()
	u := openUser(t, root)
	inbox := mailbox(t, u, "INBOX")
	deliver(t, u, "INBOX", "inbox 1\r\n", mailstore.DeliverOptions{})
	deliver(t, u, "INBOX", "inbox 2\r\n", mailstore.DeliverOptions{})
	sent := deliver(t, u, "Sent", "sent 1\r\n", mailstore.DeliverOptions{}) // UID 1 in Sent
	if _, err := inbox.Expunge([]uint32{2}); err != nil {
		t.Fatal(err)
	}
	files := dirFiles(t, filepath.Join(maildir(root), ".Sent", "new"))
	if err := os.Rename(filepath.Join(maildir(root), ".Sent", "new", files[0]), filepath.Join(maildir(root), "new", files[0])); err != nil {
		t.Fatal(err)
	}
	msgs := messages(t, inbox)
	if len(msgs) != 2 || msgs[1].UID != 3 || msgs[1].UIDL != sent.UIDL {
		t.Errorf("moved file picked up as %+v, want UID 3", msgs)
	}
	if msgs := messages(t, mailbox(t, u, "Sent")); len(msgs) != 0 {
		t.Errorf("Sent still lists %+v", msgs)
	}
	// And a rebuild does not trust its U field either.
	if err := os.Remove(filepath.Join(maildir(root), "mailsetup.index")); err != nil {
		t.Fatal(err)
	}
	after := messages(t, mailbox(t, openUser(t, root), "INBOX"))
	if len(after) != 2 || after[0].UID != 1 || after[1].UID < 3 || after[1].UIDL != sent.UIDL {
		t.Errorf("after rebuild %+v", after)
	}
}

func TestLongHostname(t *testing.T) {
	s, err := mailstore.Open(t.TempDir(), mailstore.Options{Hostname: strings.Repeat("very-long-host-name.", 10), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.User(addr)
	if err != nil {
		t.Fatal(err)
	}
	msg := deliver(t, u, "INBOX", "x", mailstore.DeliverOptions{})
	if !mailstore.ValidUIDL(msg.UIDL) || !strings.Contains(msg.UIDL, ".very-long-host") {
		t.Errorf("UIDL %q", msg.UIDL)
	}
}

func TestHasUser(t *testing.T) {
	root := t.TempDir()
	s := openStore(t, root)
	if ok, err := s.HasUser(addr); ok || err != nil {
		t.Fatalf("HasUser before any mail = %v, %v; want false, nil", ok, err)
	}
	if _, err := os.Stat(filepath.Join(root, "example.test")); !os.IsNotExist(err) {
		t.Errorf("HasUser created storage: %v", err)
	}
	if _, err := s.User(addr); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.HasUser(strings.ToLower(addr)); !ok || err != nil {
		t.Errorf("HasUser after User = %v, %v; want true, nil", ok, err)
	}
	if _, err := s.HasUser("no-at-sign"); !errors.Is(err, mailstore.ErrBadName) {
		t.Errorf("HasUser(bad address) error = %v, want ErrBadName", err)
	}
}

// TestForeignLineEndings: another agent's file with bare LF gets CRLF
// line endings when picked up (so LIST, STAT and RFC822.SIZE are the
// octets sent), its internal date kept; a file already in CRLF, or with
// mixed endings, is handled alike, and nothing is left in tmp/.
func TestForeignLineEndings(t *testing.T) {
	root := t.TempDir()
	u := openUser(t, root)
	m := mailbox(t, u, "INBOX")
	dir := maildir(root)
	d := time.Unix(1600000000, 0)
	for name, body := range map[string]string{
		"new/1600000000.M1P1.other": "Subject: lf\n\nline 1\nline 2\n",
		"new/1600000001.M1P2.other": "Subject: crlf\r\n\r\nline 1\r\n",
		"new/1600000002.M1P3.other": "Subject: mixed\r\n\nline 1\n",
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, d, d); err != nil {
			t.Fatal(err)
		}
	}
	msgs := messages(t, m)
	want := []string{"Subject: lf\r\n\r\nline 1\r\nline 2\r\n", "Subject: crlf\r\n\r\nline 1\r\n", "Subject: mixed\r\n\r\nline 1\r\n"}
	if len(msgs) != 3 {
		t.Fatalf("messages: %+v", msgs)
	}
	for i, msg := range msgs {
		if got := content(t, m, msg.UID); got != want[i] || msg.Size != int64(len(want[i])) || !msg.InternalDate.Equal(d) {
			t.Errorf("message %d: %q, size %d, date %v", i, got, msg.Size, msg.InternalDate)
		}
	}
	if left, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(left) != 0 {
		t.Errorf("left in tmp/: %v", left)
	}
}
