package migrate

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/textproto"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"mailsetup/server/mailstore"
)

// An IMAP server as a source: every folder (LIST) with every message,
// its flags (system flags and keywords) and INTERNALDATE, into the
// same-named mailbox here, the way the Maildir import maps special-use
// folders. The INBOX's messages get the UIDL the old server's POP3 served
// (its pop3_uidl_format from the IMAP UID and UIDVALIDITY), so an INBOX
// imported from POP3 before is not imported twice, and POP3 clients do
// not download again. A folder's messages keep a UIDL made of the source
// folder, its UIDVALIDITY and the UID, so a second import skips them.

// specialUses maps the RFC 6154 attributes to our mailboxes.
var specialUses = map[imap.MailboxAttr]string{
	imap.MailboxAttrSent: "Sent", imap.MailboxAttrDrafts: "Drafts", imap.MailboxAttrTrash: "Trash",
	imap.MailboxAttrJunk: "Junk", imap.MailboxAttrArchive: "Archive",
}

// ImportIMAP imports every folder of each account from the IMAP server
// src into t. The source is never changed (EXAMINE, BODY.PEEK). An
// account that fails does not stop the others.
func ImportIMAP(ctx context.Context, t Target, src IMAPSource, accts []POP3Account, opts Options) Report {
	return importEach(ctx, "imap "+src.Addr, accts, opts, func(a POP3Account) AccountReport {
		return importIMAPAccount(ctx, t, src, a)
	})
}

// imapFolder is a folder of the old server and its mailbox here.
type imapFolder struct {
	source  string // the old server's name (decoded from modified UTF-7)
	ours    string // "" when it cannot be one here: refusal says why
	refusal string
}

func importIMAPAccount(ctx context.Context, t Target, src IMAPSource, a POP3Account) AccountReport {
	rep := AccountReport{Address: a.Address}
	in, err := t.openInbox(a.Address)
	if err != nil {
		rep.Error = err.Error()
		return rep
	}
	s, err := dialIMAP(ctx, src, a.Username, a.Password)
	if err != nil {
		rep.Error = err.Error()
		return rep
	}
	defer s.close()
	list, err := listFolders(s.c, nil)
	if err != nil {
		rep.Error = "LIST: " + stopped(ctx, err).Error()
		return rep
	}
	subscribed := imapSubscriptions(s.c, &rep)
	for _, f := range imapFolders(list, foreignPrefixes(s.c), &rep) {
		if f.refusal != "" {
			rep.refuse("folder "+f.source, "", f.refusal)
			continue
		}
		box, err := in, error(nil)
		if f.ours != mailstore.Inbox {
			box, err = in.folder(f.ours)
			if errors.Is(err, mailstore.ErrBadName) {
				rep.refuse("folder "+f.source, "", fmt.Sprintf("a folder named %q cannot be a mailbox here: %v", f.ours, err))
				continue
			}
		}
		if err == nil {
			err = importIMAPFolder(ctx, s.c, box, src, f, &rep)
		}
		if err == nil && subscribed[f.source] && f.ours != mailstore.Inbox {
			err = in.user.SetSubscribed(f.ours, true)
		}
		if err != nil {
			rep.Error = fmt.Sprintf("folder %s: %v", f.source, stopped(ctx, err))
			return rep
		}
	}
	return rep
}

// maxFolders bounds the folders of one account.
const maxFolders = 10000

// listFolders lists every folder (LIST "" "*"), at most maxFolders.
func listFolders(c *imapclient.Client, opts *imap.ListOptions) ([]*imap.ListData, error) {
	cmd := c.List("", "*", opts)
	var out []*imap.ListData
	for l := cmd.Next(); l != nil; l = cmd.Next() {
		if len(out) == maxFolders {
			c.Close() // the rest is not read
			return nil, fmt.Errorf("the old server lists more than %d folders", maxFolders)
		}
		out = append(out, l)
	}
	return out, cmd.Close()
}

// imapSubscriptions lists the folders the account subscribed to on the
// old server (LIST (SUBSCRIBED), RFC 5258), so that they are subscribed
// here too: clients that show only subscribed folders (Thunderbird's
// default) show the imported ones. A server without LIST-EXTENDED is
// noted.
func imapSubscriptions(c *imapclient.Client, rep *AccountReport) map[string]bool {
	if !c.Caps().Has(imap.CapListExtended) {
		rep.Notes = append(rep.Notes, "the old server does not offer LIST-EXTENDED, so its subscriptions are not known: subscribe to the imported folders in the mail client (or have it show all folders)")
		return nil
	}
	subs, err := listFolders(c, &imap.ListOptions{SelectSubscribed: true})
	if err != nil {
		rep.Notes = append(rep.Notes, "the old server's subscriptions could not be listed ("+err.Error()+"): subscribe to the imported folders in the mail client")
		return nil
	}
	out := make(map[string]bool, len(subs))
	for _, l := range subs {
		out[l.Mailbox] = true
	}
	return out
}

// stopped is err, or the context's error when it ended.
func stopped(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return errors.New("stopped: " + ctx.Err().Error())
	}
	return err
}

// foreignPrefixes are the prefixes of the old server's namespaces for
// other users' and shared folders (NAMESPACE, RFC 2342): not the
// account's own mail. None when the server does not say.
func foreignPrefixes(c *imapclient.Client) []string {
	if !c.Caps().Has(imap.CapNamespace) {
		return nil
	}
	ns, err := c.Namespace().Wait()
	if err != nil {
		return nil
	}
	var out []string
	for _, d := range append(slices.Clip(ns.Other), ns.Shared...) {
		if d.Prefix != "" {
			out = append(out, d.Prefix)
		}
	}
	return out
}

// imapFolders maps the old server's LIST to our mailboxes: INBOX is
// INBOX; a folder with a special use (RFC 6154 attribute, else its name
// as in specialFolders) becomes ours, and so do its subfolders' first
// levels; the hierarchy delimiter becomes "/". Folders that cannot be
// selected are left out; virtual ones (\All, \Flagged: their messages are
// in the other folders) and those in a foreign namespace (other users',
// shared: foreign are their prefixes) are noted.
func imapFolders(list []*imap.ListData, foreign []string, rep *AccountReport) []imapFolder {
	special := map[string]string{} // source name -> ours, by attribute
	for _, l := range list {
		for attr, ours := range specialUses {
			if hasAttr(l.Attrs, attr) && !strings.EqualFold(l.Mailbox, mailstore.Inbox) {
				special[l.Mailbox] = ours
			}
		}
	}
	var out []imapFolder
	for _, l := range list {
		if hasAttr(l.Attrs, imap.MailboxAttrNoSelect) || hasAttr(l.Attrs, imap.MailboxAttrNonExistent) {
			continue
		}
		if i := slices.IndexFunc(foreign, func(p string) bool {
			return strings.HasPrefix(l.Mailbox, p) || l.Mailbox == strings.TrimRight(p, string(l.Delim))
		}); i >= 0 {
			rep.Notes = append(rep.Notes, fmt.Sprintf("folder %s is in the old server's namespace %q of other users' or shared folders: not the account's own mail, not imported", l.Mailbox, foreign[i]))
			continue
		}
		if hasAttr(l.Attrs, imap.MailboxAttrAll) || hasAttr(l.Attrs, imap.MailboxAttrFlagged) {
			rep.Notes = append(rep.Notes, fmt.Sprintf("folder %s is a virtual folder of the old server (all or flagged mail): its messages come with the folders they are in", l.Mailbox))
			continue
		}
		out = append(out, imapFolderOf(l, special))
	}
	return out
}

// imapFolderOf is the mailbox here of one listed folder.
func imapFolderOf(l *imap.ListData, special map[string]string) imapFolder {
	f := imapFolder{source: l.Mailbox}
	if strings.EqualFold(l.Mailbox, mailstore.Inbox) {
		f.ours = mailstore.Inbox
		return f
	}
	levels := []string{l.Mailbox}
	if l.Delim != 0 {
		levels = strings.Split(l.Mailbox, string(l.Delim))
	}
	// The nearest superior (or the folder itself) with a special-use
	// attribute gives the first levels.
	for n := len(levels); n > 0; n-- {
		if ours, ok := special[strings.Join(levels[:n], string(l.Delim))]; ok {
			levels = append([]string{ours}, levels[n:]...)
			break
		}
	}
	for _, lv := range levels {
		if l.Delim != '/' && strings.Contains(lv, "/") {
			f.refusal = fmt.Sprintf("the level %q holds a \"/\", the hierarchy delimiter here, so the folder cannot keep its place", lv)
			return f
		}
		if lv == "" {
			f.refusal = "an empty level in the folder's name"
			return f
		}
	}
	f.ours = ourFolder(levels)
	return f
}

func hasAttr(attrs []imap.MailboxAttr, want imap.MailboxAttr) bool {
	for _, a := range attrs {
		if strings.EqualFold(string(a), string(want)) {
			return true
		}
	}
	return false
}

// imapMsg is one message of a folder of the old server.
type imapMsg struct {
	seq       uint32
	uid       imap.UID
	size      int64
	date      time.Time
	flags     []string
	messageID string
}

// maxIDHeader bounds the Message-ID header field read of one message.
const maxIDHeader = 8 << 10

// imapListing lists the messages of the folder selected (FETCH 1:*):
// UID, flags, internal date, size and the Message-ID (only it, to
// recognise what an earlier import (POP3, Maildir) stored under other
// UIDLs). Items of one message sent in several responses are merged;
// responses for messages the mailbox does not have (beyond EXISTS) are
// left out, so a server cannot grow the listing beyond its mailbox. A
// message without a UID is refused in rep.
func imapListing(c *imapclient.Client, folder string, rep *AccountReport) ([]imapMsg, error) {
	all := imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}} // 1:*
	cmd := c.Fetch(all, &imap.FetchOptions{
		UID: true, Flags: true, InternalDate: true, RFC822Size: true,
		BodySection: []*imap.FetchItemBodySection{{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Message-ID"}, Peek: true}},
	})
	var msgs []imapMsg
	bySeq := map[uint32]int{}
	for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
		if mb := c.Mailbox(); mb == nil || msg.SeqNum > mb.NumMessages {
			continue
		}
		i, ok := bySeq[msg.SeqNum]
		if !ok {
			i = len(msgs)
			bySeq[msg.SeqNum] = i
			msgs = append(msgs, imapMsg{seq: msg.SeqNum})
		}
		m := &msgs[i]
		for item := msg.Next(); item != nil; item = msg.Next() {
			switch it := item.(type) {
			case imapclient.FetchItemDataUID:
				m.uid = it.UID
			case imapclient.FetchItemDataFlags:
				m.flags = storableFlags(it.Flags)
			case imapclient.FetchItemDataInternalDate:
				m.date = it.Time
			case imapclient.FetchItemDataRFC822Size:
				m.size = it.Size
			case imapclient.FetchItemDataBodySection:
				if it.Literal != nil {
					m.messageID = headerMessageID(io.LimitReader(it.Literal, maxIDHeader))
				}
			}
		}
	}
	if err := cmd.Close(); err != nil {
		return nil, fmt.Errorf("FETCH: %w", err)
	}
	out := msgs[:0]
	for _, m := range msgs {
		if m.uid == 0 {
			rep.Found++
			rep.refuse(fmt.Sprintf("%s message %d", folder, m.seq), "", "the old server sent no UID for it (RFC 3501 §2.3.1.1 wants one), so it cannot be fetched by UID")
			continue
		}
		out = append(out, m)
	}
	return out, nil
}

// imapCandidates are the messages of folder f with the UIDL each keeps
// here (by candidate name): in the INBOX the one the old server's POP3
// served, computed from the UID and UIDVALIDITY, or "" when that cannot
// be computed (with src.AcceptNewUIDLs a folder key instead, counted in
// newUIDLs); in the other folders a folder key.
func imapCandidates(msgs []imapMsg, f imapFolder, uidValidity uint32, src IMAPSource) (cands []candidate, names map[string]imapMsg, newUIDLs int) {
	names = make(map[string]imapMsg, len(msgs))
	cands = make([]candidate, 0, len(msgs))
	computable := !src.UIDLFormat.Needs('m') && !src.UIDLFormat.Needs('f') && !src.UIDLFormat.Needs('g')
	for _, m := range msgs {
		name := fmt.Sprintf("%s UID %d", f.source, m.uid)
		names[name] = m
		uidl := folderKey(f.source, uidValidity, m.uid)
		if f.ours == mailstore.Inbox {
			switch {
			case computable:
				uidl = src.UIDLFormat.Expand(UIDLVars{UID: uint32(m.uid), UIDValidity: uidValidity})
			case src.AcceptNewUIDLs:
				newUIDLs++
			default:
				uidl = ""
			}
		}
		cands = append(cands, candidate{name: name, uidl: uidl})
	}
	return cands, names, newUIDLs
}

// importIMAPFolder imports one folder of the old server into box.
func importIMAPFolder(ctx context.Context, c *imapclient.Client, box *inbox, src IMAPSource, f imapFolder, rep *AccountReport) (err error) {
	defer func() {
		if ferr := box.flush(rep); err == nil {
			err = ferr
		}
	}()
	sel, err := c.Select(f.source, &imap.SelectOptions{ReadOnly: true}).Wait()
	var refused *imap.Error
	if errors.As(err, &refused) {
		// NO or BAD for this folder (gone meanwhile, no right to read
		// it): the other folders still import.
		rep.refuse("folder "+f.source, "", "the old server refused EXAMINE: "+err.Error())
		return nil
	}
	if err != nil {
		return fmt.Errorf("EXAMINE: %w", err)
	}
	if sel.NumMessages == 0 {
		return nil
	}
	inboxHere := f.ours == mailstore.Inbox
	msgs, err := imapListing(c, f.source, rep)
	if err != nil {
		return err
	}
	if len(msgs) == 0 {
		return nil
	}
	rep.Found += len(msgs)
	cands, names, newUIDLs := imapCandidates(msgs, f, sel.UIDValidity, src)
	byID, err := otherMessages(box, cands)
	if err != nil {
		return err
	}
	var known []candidate
	for _, c := range cands {
		switch {
		case c.uidl != "":
			known = append(known, c)
		case byID.has(names[c.name]):
			rep.Skipped++
		default:
			rep.refuse(c.name, "", fmt.Sprintf("its old POP3 UIDL cannot be computed (pop3_uidl_format %s needs what IMAP does not give: %%m, %%f or %%g), and no message here has its Message-ID and size: import the INBOX from POP3 (--from-pop3) first, or give --accept-new-uidls (its POP3 clients then download it again)", src.UIDLFormat))
		}
	}
	matched, example := 0, ""
	for _, k := range screen(rep, known) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		m := names[k.name]
		if box.present[k.uidl] {
			rep.Skipped++
			continue
		}
		if byID.has(m) {
			// Here already from another import (POP3, Maildir) under
			// another UIDL: not twice.
			rep.Skipped++
			if matched++; example == "" {
				example = k.name
				if inboxHere {
					example += fmt.Sprintf(" (computed UIDL %q)", k.uidl)
				}
			}
			continue
		}
		if reason := box.sizeRefusal(m.size); reason != "" {
			rep.refuse(k.name, k.uidl, reason)
			continue
		}
		if err := fetchInto(c, m, box, rep, k); err != nil {
			return err
		}
	}
	switch {
	case matched > 0 && !inboxHere:
		rep.Notes = append(rep.Notes, fmt.Sprintf("%d messages of folder %s, such as %s, are here already from an earlier import (same Message-ID and size, or without a Message-ID the same date and size): skipped, not imported twice", matched, f.source, example))
	case matched > 0:
		rep.Notes = append(rep.Notes, fmt.Sprintf("%d INBOX messages, such as %s, are not here under the UIDL computed with pop3_uidl_format %s, but a message with the same Message-ID and size is (from an earlier import): skipped, not imported twice; if that import was not from the old server's POP3, check --uidl-format", matched, example, src.UIDLFormat))
	}
	if newUIDLs > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("the INBOX's old POP3 UIDLs cannot be computed from IMAP with pop3_uidl_format %s: %d messages have new UIDLs here, and POP3 clients that keep mail on the server will download them again", src.UIDLFormat, newUIDLs))
	}
	return nil
}

// folderKey is the UIDL kept with a message of a folder (and of an INBOX
// whose old UIDLs cannot be computed): POP3 serves only the INBOX, so it
// only has to stay the same for a second import to skip the message.
func folderKey(folder string, uidValidity uint32, uid imap.UID) string {
	sum := sha256.Sum256([]byte(folder))
	return fmt.Sprintf("I%s-%08x-%08x", hex.EncodeToString(sum[:6]), uidValidity, uint32(uid))
}

// storableFlags are the flags of a source message that a mailbox keeps:
// the system flags but \Recent (RFC 3501 §2.3.2: the server's own) and
// every keyword.
func storableFlags(flags []imap.Flag) []string {
	var out []string
	for _, f := range flags {
		s := string(f)
		if strings.HasPrefix(s, `\`) {
			switch strings.ToLower(s) {
			case `\seen`, `\answered`, `\flagged`, `\deleted`, `\draft`:
			default:
				continue
			}
		}
		out = append(out, s)
	}
	return out
}

// fetchInto retrieves one message (UID FETCH BODY.PEEK[]) and stores it
// in box under the candidate's UIDL, counting it in rep (as imported once
// box's batch is flushed).
func fetchInto(c *imapclient.Client, m imapMsg, box *inbox, rep *AccountReport, k candidate) error {
	cmd := c.Fetch(imap.UIDSetNum(m.uid), &imap.FetchOptions{
		UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}},
	})
	var (
		got  bool
		serr error
	)
	for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
		for item := msg.Next(); item != nil; item = msg.Next() {
			body, ok := item.(imapclient.FetchItemDataBodySection)
			if !ok || got || body.Literal == nil {
				continue
			}
			got = true
			serr = box.store(rep, k.name, body.Literal, k.uidl, m.flags, m.date)
		}
	}
	if err := cmd.Close(); err != nil {
		return fmt.Errorf("UID FETCH %d: %w", m.uid, err)
	}
	switch {
	case serr != nil:
		return fmt.Errorf("%s: %w", k.name, serr)
	case !got:
		rep.refuse(k.name, k.uidl, "the old server sent no body for it (expunged meanwhile?)")
	}
	return nil
}

// normalMessageID is a Message-ID without its angle brackets and spaces.
func normalMessageID(id string) string {
	return strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(id), "<"), ">")
}

// maxHeaderRead bounds how much of a stored message is read for its
// Message-ID.
const maxHeaderRead = 256 << 10

// messageIDs counts the messages of a mailbox by Message-ID and size
// (without a Message-ID: by internal date and size), for the messages
// an earlier import stored under other UIDLs.
type messageIDs struct{ n map[string]int }

func (ids *messageIDs) key(id string, date time.Time, size int64) string {
	if id == "" {
		return fmt.Sprintf("\x00%d\x00%d", date.Unix(), size)
	}
	return fmt.Sprintf("%s\x00%d", id, size)
}

// has reports whether a message with m's Message-ID (or date) and size
// is here, and takes it (two source messages do not match one here).
func (ids *messageIDs) has(m imapMsg) bool {
	if ids == nil {
		return false
	}
	k := ids.key(m.messageID, m.date, m.size)
	if ids.n[k] == 0 {
		return false
	}
	ids.n[k]--
	return true
}

// otherMessages indexes the messages of box whose UIDLs none of cands
// has (stored by another import, or delivered here) by Message-ID (or
// date) and size; nil when there are none.
func otherMessages(box *inbox, cands []candidate) (*messageIDs, error) {
	mine := make(map[string]bool, len(cands))
	for _, c := range cands {
		mine[c.uidl] = true
	}
	mb, err := box.user.Mailbox(box.mailbox)
	if err != nil {
		return nil, err
	}
	msgs, err := mb.Messages()
	if err != nil {
		return nil, err
	}
	var ids *messageIDs
	for _, m := range msgs {
		if mine[m.UIDL] {
			continue
		}
		id, err := storedMessageID(mb, m.UID)
		if err != nil {
			return nil, err
		}
		if ids == nil {
			ids = &messageIDs{n: map[string]int{}}
		}
		ids.n[ids.key(id, m.InternalDate, m.Size)]++
	}
	return ids, nil
}

// storedMessageID reads the Message-ID of a stored message ("" without).
func storedMessageID(mb *mailstore.Mailbox, uid uint32) (string, error) {
	f, err := mb.Open(uid)
	if errors.Is(err, mailstore.ErrNoMessage) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	defer f.Close()
	return headerMessageID(io.LimitReader(f, maxHeaderRead)), nil
}

// headerMessageID is the Message-ID in the header that r starts with
// ("" without).
func headerMessageID(r io.Reader) string {
	h, err := textproto.NewReader(bufio.NewReader(r)).ReadMIMEHeader()
	if err != nil && len(h) == 0 {
		return "" // no header to match by
	}
	return normalMessageID(h.Get("Message-Id"))
}
