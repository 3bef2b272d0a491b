package imapd_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"mailsetup/server/events"
	"mailsetup/server/imapd"
	"mailsetup/server/mailstore"
)

func TestLogin(t *testing.T) {
	r := start(t)
	c := r.dial(t, nil)
	caps := c.Caps()
	for _, want := range []imap.Cap{imap.CapIMAP4rev1, imap.CapIdle, imap.CapMove, imap.CapUIDPlus, imap.CapSpecialUse, imap.CapNamespace, imap.CapID, "APPENDLIMIT=1048576"} {
		if !caps.Has(want) {
			t.Errorf("capability %s missing: %v", want, caps)
		}
	}
	if caps.Has(imap.CapLoginDisabled) || caps.Has(imap.CapStartTLS) {
		t.Errorf("capabilities after login: %v", caps)
	}
	ns, err := c.Namespace().Wait()
	if err != nil || len(ns.Personal) != 1 || ns.Personal[0].Delim != '/' {
		t.Errorf("namespace %+v %v", ns, err)
	}
	if err := c.Logout().Wait(); err != nil {
		t.Errorf("logout: %v", err)
	}
}

func TestLoginWrongForms(t *testing.T) {
	r := start(t)
	for _, tc := range []struct{ user, pass, code, text string }{
		{"john", password, "AUTHENTICATIONFAILED", "use your full email address"},
		{"john/johndoe.com", password, "AUTHENTICATIONFAILED", `john@johndoe.com, not "john/johndoe.com"`},
		{john, "wrong", "AUTHENTICATIONFAILED", "wrong username or password"},
	} {
		c, err := imapclient.DialTLS(r.implicit, &imapclient.Options{TLSConfig: r.clientTLS()})
		if err != nil {
			t.Fatal(err)
		}
		err = c.Login(tc.user, tc.pass).Wait()
		var ie *imap.Error
		if !errors.As(err, &ie) || ie.Type != imap.StatusResponseTypeNo || string(ie.Code) != tc.code || !strings.Contains(ie.Text, tc.text) {
			t.Errorf("login %q: %v, want NO [%s] %q", tc.user, err, tc.code, tc.text)
		}
		c.Close()
	}
}

func TestLoginThrottled(t *testing.T) {
	r := start(t)
	var got string
	for range 4 {
		rc := dialRaw(t, r.implicit, r.clientTLS())
		for range 5 {
			got = last(rc.cmd(`LOGIN john@johndoe.com "wrong password"`))
			if strings.Contains(got, "UNAVAILABLE") {
				break
			}
		}
		if strings.Contains(got, "UNAVAILABLE") {
			break
		}
		// After five failures the connection ends.
		if l := rc.line(); l != "* BYE too many failed logins" {
			t.Errorf("after five failed logins: %q", l)
		}
		if _, err := rc.r.ReadString('\n'); err == nil {
			t.Errorf("connection open after five failed logins")
		}
	}
	if !strings.Contains(got, "NO [UNAVAILABLE] too many failed logins") {
		t.Errorf("after repeated failures: %q", got)
	}
}

func TestPlainListenerRefusesLogin(t *testing.T) {
	r := start(t)
	c, err := imapclient.DialInsecure(r.starttls, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	caps, err := c.Capability().Wait()
	if err != nil {
		t.Fatal(err)
	}
	if !caps.Has(imap.CapLoginDisabled) || !caps.Has(imap.CapStartTLS) || caps.Has("AUTH=PLAIN") {
		t.Errorf("capabilities before STARTTLS: %v", caps)
	}
	if err := c.Login(john, password).Wait(); err == nil {
		t.Errorf("login without TLS succeeded")
	}

	rc := dialRaw(t, r.starttls, nil)
	if got := last(rc.cmd("LOGIN john@johndoe.com {13}")); !strings.HasPrefix(got, "t1 NO [PRIVACYREQUIRED]") {
		t.Errorf("LOGIN with a literal: %q", got)
	}
	rc.send("x2 LOGIN john@johndoe.com {13+}\r\ncorrect horse\r\n")
	if got := last(rc.until("x2")); !strings.HasPrefix(got, "x2 NO [PRIVACYREQUIRED]") {
		t.Errorf("LOGIN with a non-synchronising literal: %q", got)
	}
	if got := last(rc.cmd("AUTHENTICATE PLAIN")); !strings.HasPrefix(got, "t2 NO [PRIVACYREQUIRED]") {
		t.Errorf("AUTHENTICATE: %q", got)
	}
	if got := last(rc.cmd("NOOP")); !strings.HasPrefix(got, "t3 OK") {
		t.Errorf("after refusals: %q", got)
	}
	if _, ok := r.ev.find(events.Auth); ok {
		t.Errorf("a refused cleartext login reached the authenticator")
	}
}

func TestStartTLS(t *testing.T) {
	r := start(t)
	c, err := imapclient.DialStartTLS(r.starttls, &imapclient.Options{TLSConfig: r.clientTLS()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	caps, err := c.Capability().Wait()
	if err != nil {
		t.Fatal(err)
	}
	if caps.Has(imap.CapLoginDisabled) || caps.Has(imap.CapStartTLS) || !caps.Has("AUTH=PLAIN") {
		t.Errorf("capabilities after STARTTLS: %v", caps)
	}
	if err := c.Login(john, password).Wait(); err != nil {
		t.Fatalf("login after STARTTLS: %v", err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	e, ok := r.ev.find(events.Auth)
	if !ok || !e.TLS || e.Proto != "imap" || e.Result != "ok" {
		t.Errorf("auth event %+v", e)
	}

	// Commands pipelined behind STARTTLS are not executed.
	rc := dialRaw(t, r.starttls, nil)
	rc.send("t1 STARTTLS\r\nt2 CAPABILITY\r\n")
	if got := rc.line(); !strings.HasPrefix(got, "t1 BAD") {
		t.Errorf("STARTTLS with pipelined data: %q", got)
	}
}

func TestList(t *testing.T) {
	r := start(t)
	c := r.dial(t, nil)
	if err := c.Create("Projects/2026", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]imap.MailboxAttr{}
	for _, l := range list {
		got[l.Mailbox] = l.Attrs
		if l.Delim != '/' {
			t.Errorf("delimiter %q", l.Delim)
		}
	}
	want := map[string]imap.MailboxAttr{"INBOX": "", "Sent": imap.MailboxAttrSent, "Drafts": imap.MailboxAttrDrafts,
		"Trash": imap.MailboxAttrTrash, "Junk": imap.MailboxAttrJunk, "Archive": imap.MailboxAttrArchive, "Projects": "", "Projects/2026": ""}
	for name, attr := range want {
		attrs, ok := got[name]
		if !ok {
			t.Errorf("LIST lacks %s: %v", name, got)
			continue
		}
		if attr != "" && !slices.Contains(attrs, attr) {
			t.Errorf("%s: attributes %v lack %s", name, attrs, attr)
		}
		if name != "Projects" && name != "Projects/2026" && !slices.Contains(attrs, imap.MailboxAttrSubscribed) {
			t.Errorf("%s: attributes %v lack \\Subscribed", name, attrs)
		}
	}
	if !slices.Contains(got["Projects"], imap.MailboxAttrHasChildren) || !slices.Contains(got["INBOX"], imap.MailboxAttrHasNoChildren) {
		t.Errorf("children attributes: %v", got)
	}
	if len(got) != len(want) {
		t.Errorf("LIST: %v", got)
	}

	top, err := c.List("", "%", nil).Collect()
	if err != nil || len(top) != 7 {
		t.Errorf("LIST %%: %d entries, %v", len(top), err)
	}
	lsub, err := c.List("", "*", &imap.ListOptions{SelectSubscribed: true}).Collect()
	if err != nil || len(lsub) != 6 {
		t.Errorf("LIST (SUBSCRIBED): %d entries, %v", len(lsub), err)
	}
	if err := c.Subscribe("Projects/2026").Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Rename("Projects/2026", "Projects/2027", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete("Projects/2027").Wait(); err != nil {
		t.Fatal(err)
	}
	var ie *imap.Error
	if err := c.Delete("Nothing").Wait(); !errors.As(err, &ie) || ie.Code != imap.ResponseCodeNonExistent {
		t.Errorf("delete of a missing mailbox: %v", err)
	}
	if err := c.Create("Archive", nil).Wait(); !errors.As(err, &ie) || ie.Code != imap.ResponseCodeAlreadyExists {
		t.Errorf("create of an existing mailbox: %v", err)
	}
	if err := c.Delete("INBOX").Wait(); !errors.As(err, &ie) || ie.Code != imap.ResponseCodeCannot {
		t.Errorf("delete INBOX: %v", err)
	}

	rc := dialRaw(t, r.insecure, nil)
	rc.cmd("LOGIN john@johndoe.com \"correct horse\"")
	if got := rc.cmd(`LIST "" ""`); got[0] != `* LIST (\Noselect) "/" ""` {
		t.Errorf("LIST \"\" \"\": %q", got)
	}
	if got := rc.cmd(`LSUB "" "*"`); !hasLine(got, `* LSUB (\HasNoChildren \Subscribed \Sent) "/" "Sent"`) {
		t.Errorf("LSUB: %q", got)
	}
	if got := rc.cmd(`LIST "" "inbox"`); !hasLine(got, `* LIST (\HasNoChildren \Subscribed) "/" INBOX`) {
		t.Errorf("LIST inbox: %q", got)
	}
}

func TestAppendFetch(t *testing.T) {
	r := start(t)
	c := r.dial(t, nil)
	msg := "From: Jane <jane@johndoe.com>\r\nTo: john@johndoe.com\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n" +
		"Date: Tue, 03 Mar 2026 09:00:00 +0000\r\nMessage-ID: <a1@johndoe.com>\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhello there\r\n" +
		"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n--b--\r\n"
	date := time.Date(2026, 3, 3, 9, 30, 0, 0, time.UTC)
	app := c.Append("INBOX", int64(len(msg)), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagFlagged, "$Label1"}, Time: date})
	io.WriteString(app, msg)
	app.Close()
	ad, err := app.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if ad.UID != 1 || ad.UIDValidity == 0 {
		t.Errorf("APPENDUID %+v", ad)
	}

	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if sel.NumMessages != 1 || sel.UIDValidity != ad.UIDValidity || sel.UIDNext != 2 || !slices.Contains(sel.Flags, "$label1") {
		t.Errorf("select %+v", sel)
	}

	peek := &imap.FetchItemBodySection{Peek: true}
	header := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, Peek: true}
	partial := &imap.FetchItemBodySection{Peek: true, Partial: &imap.SectionPartial{Offset: 6, Size: 4}}
	part1 := &imap.FetchItemBodySection{Part: []int{1}, Peek: true}
	fields := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Subject"}, Peek: true}
	bin := &imap.FetchItemBinarySection{Part: []int{2}, Peek: true}
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{
		UID: true, Flags: true, InternalDate: true, RFC822Size: true, Envelope: true,
		BodyStructure: &imap.FetchItemBodyStructure{Extended: true},
		BodySection:   []*imap.FetchItemBodySection{peek, header, partial, part1, fields},
		BinarySection: []*imap.FetchItemBinarySection{bin},
	}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("fetch: %v %v", msgs, err)
	}
	m := msgs[0]
	if m.UID != 1 || m.RFC822Size != int64(len(msg)) || !m.InternalDate.Equal(date) {
		t.Errorf("uid %d size %d date %v", m.UID, m.RFC822Size, m.InternalDate)
	}
	if !slices.Equal(m.Flags, []imap.Flag{"$Label1", imap.FlagFlagged}) {
		t.Errorf("flags %v", m.Flags)
	}
	if m.Envelope == nil || m.Envelope.Subject != "Grüße" || m.Envelope.MessageID != "a1@johndoe.com" || len(m.Envelope.From) != 1 || m.Envelope.From[0].Host != "johndoe.com" {
		t.Errorf("envelope %+v", m.Envelope)
	}
	if mp, ok := m.BodyStructure.(*imap.BodyStructureMultiPart); !ok || len(mp.Children) != 2 || mp.Subtype != "mixed" {
		t.Errorf("bodystructure %#v", m.BodyStructure)
	}
	if got := string(m.FindBodySection(peek)); got != msg {
		t.Errorf("BODY[] %q", got)
	}
	if got := string(m.FindBodySection(header)); got != msg[:strings.Index(msg, "\r\n\r\n")+4] {
		t.Errorf("BODY[HEADER] %q", got)
	}
	if got := string(m.FindBodySection(partial)); got != "Jane" {
		t.Errorf("BODY[]<6.4> %q", got)
	}
	if got := string(m.FindBodySection(part1)); got != "hello there" {
		t.Errorf("BODY[1] %q", got)
	}
	if got := string(m.FindBodySection(fields)); !strings.HasPrefix(got, "Subject: ") || strings.Contains(got, "From") {
		t.Errorf("BODY[HEADER.FIELDS (Subject)] %q", got)
	}
	if len(m.BinarySection) != 1 || string(m.BinarySection[0].Bytes) != "hello" {
		t.Errorf("BINARY[2] %+v", m.BinarySection)
	}

	// A fetch without PEEK sets \Seen and says so.
	text := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierText}
	msgs, err = c.Fetch(imap.UIDSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{text}}).Collect()
	if err != nil || len(msgs) != 1 || !slices.Contains(msgs[0].Flags, imap.FlagSeen) {
		t.Fatalf("fetch BODY[TEXT]: %+v %v", msgs, err)
	}
	if got := string(msgs[0].FindBodySection(text)); !strings.HasPrefix(got, "--b\r\n") {
		t.Errorf("BODY[TEXT] %q", got)
	}
	stored, _ := r.user(t).Mailbox("INBOX")
	all, _ := stored.Messages()
	if !all[0].HasFlag(mailstore.FlagSeen) {
		t.Errorf("\\Seen not stored: %v", all[0].Flags)
	}

	// EXAMINE is read-only: no \Seen, no STORE.
	if err := c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsDel, Flags: []imap.Flag{imap.FlagSeen}, Silent: true}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err = c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{Flags: true, BodySection: []*imap.FetchItemBodySection{{}}}).Collect()
	if err != nil || slices.Contains(msgs[0].Flags, imap.FlagSeen) {
		t.Errorf("fetch in EXAMINE: %+v %v", msgs, err)
	}
	if err := c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagSeen}}, nil).Close(); err == nil {
		t.Errorf("STORE in EXAMINE succeeded")
	}

	// APPEND to a missing mailbox, and a too large one.
	var ie *imap.Error
	app = c.Append("Nowhere", 5, nil)
	io.WriteString(app, "x\r\n\r\n")
	app.Close()
	if _, err := app.Wait(); !errors.As(err, &ie) || ie.Code != imap.ResponseCodeTryCreate {
		t.Errorf("append to a missing mailbox: %v", err)
	}
	rc := dialRaw(t, r.insecure, nil)
	rc.cmd("LOGIN john@johndoe.com \"correct horse\"")
	if got := last(rc.cmd("APPEND INBOX {2000000}")); !strings.HasPrefix(got, "t2 NO [TOOBIG]") {
		t.Errorf("too large APPEND: %q", got)
	}
	if got := last(rc.cmd("NOOP")); !strings.HasPrefix(got, "t3 OK") {
		t.Errorf("after a refused literal: %q", got)
	}
}

func TestStoreSearch(t *testing.T) {
	r := start(t)
	r.deliver(t, "INBOX", "first report", "quarterly numbers")
	r.deliver(t, "INBOX", "second note", "Lunch on Friday?")
	r.deliver(t, "INBOX", "third", strings.Repeat("long body ", 500))
	c := r.dial(t, nil)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	got, err := c.Store(imap.SeqSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagSeen, imap.FlagAnswered}}, nil).Collect()
	if err != nil || len(got) != 1 || !slices.Equal(got[0].Flags, []imap.Flag{imap.FlagAnswered, imap.FlagSeen}) {
		t.Fatalf("store: %+v %v", got, err)
	}
	got, err = c.Store(imap.UIDSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsDel, Flags: []imap.Flag{imap.FlagAnswered}}, nil).Collect()
	if err != nil || len(got) != 1 || got[0].UID != 2 || !slices.Equal(got[0].Flags, []imap.Flag{imap.FlagSeen}) {
		t.Fatalf("uid store: %+v %v", got, err)
	}
	if err := c.Store(imap.SeqSetNum(3), &imap.StoreFlags{Op: imap.StoreFlagsSet, Flags: []imap.Flag{imap.FlagFlagged, "Work"}, Silent: true}, nil).Close(); err != nil {
		t.Fatal(err)
	}

	today := time.Now()
	for _, tc := range []struct {
		name string
		c    imap.SearchCriteria
		want []uint32
	}{
		{"all", imap.SearchCriteria{}, []uint32{1, 2, 3}},
		{"seen", imap.SearchCriteria{Flag: []imap.Flag{imap.FlagSeen}}, []uint32{2}},
		{"unseen", imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}}, []uint32{1, 3}},
		{"keyword", imap.SearchCriteria{Flag: []imap.Flag{"work"}}, []uint32{3}},
		{"deleted", imap.SearchCriteria{Flag: []imap.Flag{imap.FlagDeleted}}, nil},
		{"seq", imap.SearchCriteria{SeqNum: []imap.SeqSet{imap.SeqSetNum(2, 3)}}, []uint32{2, 3}},
		{"uid star", imap.SearchCriteria{UID: []imap.UIDSet{{{Start: 2, Stop: 0}}}}, []uint32{2, 3}},
		{"subject", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "NOTE"}}}, []uint32{2}},
		{"from", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "From", Value: "jane@"}}}, []uint32{1, 2, 3}},
		{"to", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "To", Value: "nobody"}}}, nil},
		{"body", imap.SearchCriteria{Body: []string{"friday"}}, []uint32{2}},
		{"text", imap.SearchCriteria{Text: []string{"quarterly"}}, []uint32{1}},
		{"text header", imap.SearchCriteria{Text: []string{"third"}}, []uint32{3}},
		{"larger", imap.SearchCriteria{Larger: 1000}, []uint32{3}},
		{"smaller", imap.SearchCriteria{Smaller: 1000}, []uint32{1, 2}},
		{"since today", imap.SearchCriteria{Since: today.Add(-24 * time.Hour)}, []uint32{1, 2, 3}},
		{"before today", imap.SearchCriteria{Before: today.Add(-24 * time.Hour)}, nil},
		{"sent before", imap.SearchCriteria{SentBefore: time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC)}, []uint32{1, 2, 3}},
		{"not", imap.SearchCriteria{Not: []imap.SearchCriteria{{Flag: []imap.Flag{imap.FlagSeen}}}}, []uint32{1, 3}},
		{"or", imap.SearchCriteria{Or: [][2]imap.SearchCriteria{{{Body: []string{"friday"}}, {Larger: 1000}}}}, []uint32{2, 3}},
	} {
		data, err := c.Search(&tc.c, nil).Wait()
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got := data.AllSeqNums(); !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
	data, err := c.UIDSearch(&imap.SearchCriteria{Body: []string{"lunch"}}, nil).Wait()
	if err != nil || !slices.Equal(data.AllUIDs(), []imap.UID{2}) {
		t.Errorf("UID SEARCH: %v %v", data, err)
	}
	data, err = c.Search(&imap.SearchCriteria{}, &imap.SearchOptions{ReturnMin: true, ReturnMax: true, ReturnCount: true}).Wait()
	if err != nil || data.Min != 1 || data.Max != 3 || data.Count != 3 {
		t.Errorf("ESEARCH: %+v %v", data, err)
	}
}

func TestCopyMoveExpunge(t *testing.T) {
	r := start(t)
	for _, s := range []string{"a", "b", "c", "d"} {
		r.deliver(t, "INBOX", s, s)
	}
	c := r.dial(t, nil)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	cd, err := c.Copy(imap.SeqSetNum(1, 2), "Archive").Wait()
	if err != nil {
		t.Fatal(err)
	}
	if cd.SourceUIDs.String() != "1:2" || cd.DestUIDs.String() != "1:2" || cd.UIDValidity == 0 {
		t.Errorf("COPYUID %+v", cd)
	}
	var ie *imap.Error
	if _, err := c.Copy(imap.SeqSetNum(1), "Nowhere").Wait(); !errors.As(err, &ie) || ie.Code != imap.ResponseCodeTryCreate {
		t.Errorf("copy to a missing mailbox: %v", err)
	}
	md, err := c.Move(imap.UIDSetNum(3), "Trash").Wait()
	if err != nil {
		t.Fatal(err)
	}
	if md.SourceUIDs.String() != "3" || md.DestUIDs.String() != "1" {
		t.Errorf("MOVE COPYUID %+v", md)
	}
	if n := c.Mailbox().NumMessages; n != 3 {
		t.Errorf("after MOVE %d messages", n)
	}
	trash, _ := r.user(t).Mailbox("Trash")
	if msgs, _ := trash.Messages(); len(msgs) != 1 {
		t.Errorf("Trash has %d messages", len(msgs))
	}

	// Now INBOX is 1 a, 2 b, 3 d (UIDs 1, 2, 4).
	if err := c.Store(imap.SeqSetNum(1, 3), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}, Silent: true}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	seqs, err := c.UIDExpunge(imap.UIDSetNum(4)).Collect()
	if err != nil || !slices.Equal(seqs, []uint32{3}) {
		t.Errorf("UID EXPUNGE: %v %v", seqs, err)
	}
	seqs, err = c.Expunge().Collect()
	if err != nil || !slices.Equal(seqs, []uint32{1}) {
		t.Errorf("EXPUNGE: %v %v", seqs, err)
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{UID: true}).Collect()
	if err != nil || len(msgs) != 1 || msgs[0].UID != 2 {
		t.Errorf("after EXPUNGE: %+v %v", msgs, err)
	}
}

// TestSequenceNumbers checks that another session's expunge is reported
// only where RFC 3501 §7.4.1 allows, and sequence numbers stay
// consistent meanwhile.
func TestSequenceNumbers(t *testing.T) {
	r := start(t)
	for _, s := range []string{"a", "b", "c"} {
		r.deliver(t, "INBOX", s, s)
	}
	rc := dialRaw(t, r.insecure, nil)
	rc.cmd(`LOGIN john@johndoe.com "correct horse"`)
	rc.cmd("SELECT INBOX")
	mb, _ := r.user(t).Mailbox("INBOX")
	if _, err := mb.Expunge([]uint32{2}); err != nil {
		t.Fatal(err)
	}
	r.deliver(t, "INBOX", "d", "d")

	got := rc.cmd("FETCH 1:* (UID)")
	// Message 2 is gone but keeps its number until an EXPUNGE may be
	// sent; message 4 arrived after the client's "*" was resolved.
	want := []string{"* 1 FETCH (UID 1)", "* 3 FETCH (UID 3)", "* 4 EXISTS"}
	for _, w := range want {
		if !hasLine(got, w) {
			t.Errorf("FETCH lacks %q: %q", w, got)
		}
	}
	if hasLine(got, "* 2 EXPUNGE") {
		t.Errorf("EXPUNGE sent during FETCH: %q", got)
	}
	got = rc.cmd("NOOP")
	if !hasLine(got, "* 2 EXPUNGE") {
		t.Errorf("NOOP lacks EXPUNGE: %q", got)
	}
	got = rc.cmd("FETCH 2:* (UID)")
	if !hasLine(got, "* 2 FETCH (UID 3)") || !hasLine(got, "* 3 FETCH (UID 4)") {
		t.Errorf("after EXPUNGE: %q", got)
	}
	// Flags changed elsewhere are announced.
	if _, err := mb.StoreFlags([]uint32{1}, mailstore.FlagsAdd, []string{"$Important"}); err != nil {
		t.Fatal(err)
	}
	got = rc.cmd("NOOP")
	if !hasLine(got, `* FLAGS (\Answered \Flagged \Deleted \Seen \Draft $important)`) || !hasLine(got, `* 1 FETCH (UID 1 FLAGS ($Important))`) {
		t.Errorf("NOOP after a flag change: %q", got)
	}
}

func TestIdle(t *testing.T) {
	r := start(t)
	exists := make(chan uint32, 10)
	c := r.dial(t, &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				exists <- *d.NumMessages
			}
		},
	}})
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(100 * time.Millisecond)
		m, err := r.store.User(john)
		if err == nil {
			_, err = m.Deliver("INBOX", strings.NewReader(message("while idle", "hi")), mailstore.DeliverOptions{})
		}
		if err != nil {
			t.Error(err)
		}
	}()
	select {
	case n := <-exists:
		if n != 1 {
			t.Errorf("EXISTS %d", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no EXISTS during IDLE")
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{Envelope: true}).Collect()
	if err != nil || len(msgs) != 1 || msgs[0].Envelope.Subject != "while idle" {
		t.Errorf("fetch after IDLE: %+v %v", msgs, err)
	}
}

func TestID(t *testing.T) {
	r := start(t)
	// Before login: ID is answered, not an unknown command (which would
	// end the connection).
	rc := dialRaw(t, r.implicit, r.clientTLS())
	rc.send(`t1 ID ("name" "Thunderbird" "version" {5}` + "\r\n")
	if l := rc.line(); l != "+ Ready for literal data" {
		t.Fatalf("ID literal: %q", l)
	}
	rc.send("115.0)\r\n")
	got := rc.until("t1")
	if got[0] != `* ID ("name" "mailsetup")` || !strings.HasPrefix(last(got), "t1 OK") {
		t.Errorf("ID before login: %q", got)
	}
	e, ok := r.ev.find(events.ClientID)
	if !ok || e.Client != "Thunderbird 115.0" || e.Proto != "imap" || e.Account != "" || !e.TLS || !e.Remote.IsLoopback() {
		t.Errorf("event %+v", e)
	}
	rc.tags = 1
	if got := last(rc.cmd("ID (\"name\")")); !strings.HasPrefix(got, "t2 BAD") {
		t.Errorf("bad ID: %q", got)
	}
	// The name given before login goes with the login's event, so that
	// a failing device can be told apart.
	if got := last(rc.cmd(`LOGIN "` + john + `" "not the password"`)); !strings.HasPrefix(got, "t3 NO") {
		t.Errorf("LOGIN with a wrong password: %q", got)
	}
	e, ok = r.ev.find(events.Auth)
	if !ok || e.Client != "Thunderbird 115.0" || e.Result != "bad-password" {
		t.Errorf("auth event after ID: %+v", e)
	}

	r.ev.mu.Lock()
	r.ev.got = nil
	r.ev.mu.Unlock()
	c := r.dial(t, nil)
	id, err := c.ID(&imap.IDData{Name: "testclient", Version: "1.0", OS: "Linux"}).Wait()
	if err != nil || id.Name != "mailsetup" {
		t.Fatalf("ID: %+v %v", id, err)
	}
	e, ok = r.ev.find(events.ClientID)
	if !ok || e.Client != "testclient 1.0" || e.Account != john || e.Detail != "os=Linux" {
		t.Errorf("event %+v", e)
	}
}

func TestUIDsStableAcrossReconnect(t *testing.T) {
	r := start(t)
	for _, s := range []string{"a", "b", "c"} {
		r.deliver(t, "INBOX", s, s)
	}
	fetchUIDs := func() (uint32, []imap.UID) {
		c := r.dial(t, nil)
		defer func() { c.Logout().Wait() }()
		sel, err := c.Select("INBOX", nil).Wait()
		if err != nil {
			t.Fatal(err)
		}
		msgs, err := c.Fetch(imap.SeqSetNum(1, 2, 3), &imap.FetchOptions{UID: true}).Collect()
		if err != nil {
			t.Fatal(err)
		}
		var uids []imap.UID
		for _, m := range msgs {
			uids = append(uids, m.UID)
		}
		if len(uids) > 1 {
			c.Store(imap.UIDSetNum(uids[1]), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagSeen}, Silent: true}, nil).Close()
		}
		return sel.UIDValidity, uids
	}
	uv1, uids1 := fetchUIDs()
	uv2, uids2 := fetchUIDs()
	if uv1 != uv2 || !slices.Equal(uids1, uids2) || !slices.Equal(uids1, []imap.UID{1, 2, 3}) {
		t.Errorf("first %d %v, then %d %v", uv1, uids1, uv2, uids2)
	}
}

func TestLiterals(t *testing.T) {
	r := start(t)
	rc := dialRaw(t, r.insecure, nil)
	// Synchronising literals in LOGIN and in SELECT.
	rc.send("t1 LOGIN {16}\r\n")
	if l := rc.line(); l != "+ Ready for literal data" {
		t.Fatalf("LOGIN literal: %q", l)
	}
	rc.send("john@johndoe.com {13}\r\n")
	if l := rc.line(); l != "+ Ready for literal data" {
		t.Fatalf("second literal: %q", l)
	}
	rc.send("correct horse\r\n")
	if got := last(rc.until("t1")); !strings.HasPrefix(got, "t1 OK") {
		t.Fatalf("LOGIN: %q", got)
	}
	// A message containing what looks like commands.
	msg := "Subject: literal\r\n\r\nt9 ID NIL\r\nt9 LOGOUT\r\n"
	rc.send("t2 APPEND INBOX (\\Seen) {" + strconv.Itoa(len(msg)) + "}\r\n")
	if l := rc.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("APPEND continuation: %q", l)
	}
	rc.send(msg + "\r\n")
	if got := last(rc.until("t2")); !strings.HasPrefix(got, "t2 OK [APPENDUID ") {
		t.Fatalf("APPEND: %q", got)
	}
	rc.tags = 2
	got := rc.cmd("SELECT INBOX")
	if !hasLine(got, "* 1 EXISTS") {
		t.Fatalf("SELECT: %q", got)
	}
	got = rc.cmd("FETCH 1 BODY[TEXT]")
	if len(got) != 5 || got[0] != "* 1 FETCH (BODY[TEXT] {22}" || got[1] != "t9 ID NIL" || got[2] != "t9 LOGOUT" || got[3] != ")" {
		t.Errorf("FETCH: %q", got)
	}
	// The capability list after login, through the filter.
	got = rc.cmd("CAPABILITY")
	if !strings.Contains(got[0], " ID") || strings.Contains(got[0], "LOGINDISABLED") {
		t.Errorf("CAPABILITY: %q", got)
	}
	// Non-synchronising literal for a command with a limit: refused,
	// and its bytes are not taken for commands.
	big := strings.Repeat("x", 5000)
	rc.send("t9 SELECT {5000+}\r\n" + big + "\r\n")
	if got := last(rc.until("t9")); strings.HasPrefix(got, "t9 OK") {
		t.Errorf("oversized literal: %q", got)
	}
	if got := last(rc.cmd("NOOP")); !strings.HasPrefix(got, "t6 OK") {
		t.Errorf("NOOP after an oversized literal: %q", got)
	}
}

func TestShutdown(t *testing.T) {
	r := start(t)
	s := r.servers[0]
	c := r.dial(t, nil)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	select {
	case <-c.Closed():
	case <-time.After(5 * time.Second):
		t.Fatal("client still connected after shutdown")
	}
	_ = idle.Wait()
	if _, err := net.DialTimeout("tcp", r.implicit, time.Second); err == nil {
		t.Errorf("still accepting after shutdown")
	}
}

func TestReject(t *testing.T) {
	a, b := net.Pipe()
	go func() {
		imapd.Reject(a, "too many connections")
		a.Close()
	}()
	got, _ := io.ReadAll(b)
	if !bytes.Equal(got, []byte("* BYE [UNAVAILABLE] too many connections, try again later\r\n")) {
		t.Errorf("%q", got)
	}
}

func TestSelectedMailboxDeleted(t *testing.T) {
	r := start(t)
	if err := r.user(t).CreateMailbox("Projects"); err != nil {
		t.Fatal(err)
	}
	r.deliver(t, "Projects", "p", "p")
	rc := dialRaw(t, r.insecure, nil)
	rc.cmd(`LOGIN john@johndoe.com "correct horse"`)
	rc.cmd("SELECT Projects")
	if err := r.user(t).DeleteMailbox("Projects"); err != nil {
		t.Fatal(err)
	}
	rc.send("t3 NOOP\r\n")
	if l := rc.line(); !strings.HasPrefix(l, "* BYE the selected mailbox was deleted") {
		t.Errorf("NOOP in a deleted mailbox: %q", l)
	}
	if _, err := rc.r.ReadString('\n'); err == nil {
		t.Errorf("connection still open")
	}
}

func TestStatusAndNames(t *testing.T) {
	r := start(t)
	r.deliver(t, "INBOX", "one", "1")
	r.deliver(t, "INBOX", "two", "2")
	c := r.dial(t, nil)
	st, err := c.Status("INBOX", &imap.StatusOptions{NumMessages: true, UIDNext: true, UIDValidity: true, NumUnseen: true, Size: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if *st.NumMessages != 2 || st.UIDNext != 3 || *st.NumUnseen != 2 || *st.Size < 100 || st.UIDValidity == 0 {
		t.Errorf("status %+v", st)
	}
	if err := c.Create("Entwürfe/2026", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	list, err := c.List("", "Entw*", nil).Collect()
	if err != nil || len(list) != 2 || list[0].Mailbox != "Entwürfe" || list[1].Mailbox != "Entwürfe/2026" {
		t.Errorf("list %+v %v", list, err)
	}
	if _, err := r.user(t).Mailbox("Entwürfe/2026"); err != nil {
		t.Errorf("stored name: %v", err)
	}
	var ie *imap.Error
	if err := c.Create("bad.name", nil).Wait(); !errors.As(err, &ie) || ie.Code != imap.ResponseCodeCannot {
		t.Errorf("create bad.name: %v", err)
	}
}

// A literal over the pre-login limit is the client's error, answered at
// once: a synchronising one is refused and the session goes on; one sent
// anyway (non-synchronising) ends the connection after BAD and BYE.
func TestOversizedLiteralBeforeLogin(t *testing.T) {
	r := start(t)
	rc := dialRaw(t, r.implicit, r.clientTLS())
	if got := last(rc.cmd("LOGIN {999999999}")); !strings.HasPrefix(got, "t1 NO [LIMIT]") {
		t.Errorf("synchronising literal: %q", got)
	}
	if got := last(rc.cmd("NOOP")); !strings.HasPrefix(got, "t2 OK") {
		t.Errorf("after the refusal: %q", got)
	}
	rc.send("x1 LOGIN {999999+}\r\n" + strings.Repeat("a", 8192))
	if got := last(rc.until("x1")); !strings.HasPrefix(got, "x1 BAD [LIMIT]") {
		t.Errorf("non-synchronising literal: %q", got)
	}
	if got := rc.line(); !strings.HasPrefix(got, "* BYE") {
		t.Errorf("after BAD: %q", got)
	}
	if l, err := rc.r.ReadString('\n'); err == nil {
		t.Errorf("connection still open: %q", l)
	}
	// The library's log line about it names the client.
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(r.log.String(), "client 127.0.0.1:") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(r.log.String(), "client 127.0.0.1:") {
		t.Errorf("no log line names the client:\n%s", r.log)
	}
	// A small literal still logs in.
	rc = dialRaw(t, r.implicit, r.clientTLS())
	rc.send("a1 LOGIN {16}\r\n")
	if got := rc.line(); !strings.HasPrefix(got, "+") {
		t.Fatalf("continuation: %q", got)
	}
	rc.send(john + " {13}\r\n")
	if got := rc.line(); !strings.HasPrefix(got, "+") {
		t.Fatalf("continuation: %q", got)
	}
	rc.send(password + "\r\n")
	if got := last(rc.until("a1")); !strings.HasPrefix(got, "a1 OK") {
		t.Errorf("login with literals: %q", got)
	}
}
