package migrate

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf16"

	"mailsetup/server/mailstore"
)

// A Maildir on disk as a source. Each message gets the UIDL the old
// server served for it:
//
//   - Dovecot: the P field of dovecot-uidlist (a POP3 UIDL Dovecot saved)
//     or else the old server's pop3_uidl_format expanded with the
//     message's values;
//   - qmail-pop3d (also behind vpopmail): the file name's unique part,
//     the base name before ":";
//   - Courier: from courierpop3dsizelist (see courier.go), else the
//     unique part as Courier escapes it.
//
// Flags come from the ":2," suffix (Dovecot's keyword letters through
// dovecot-keywords), the internal date from the file's modification time.
// The INBOX is new/ and cur/ of the Maildir; its Maildir++ folders
// (.Sent, .A.B ...) go to the same-named mailboxes here.

// MaildirAccount is an account to take over from a Maildir.
type MaildirAccount struct {
	Address string `json:"address"`
	// Path is the account's Maildir (the directory with cur/ and new/).
	Path string `json:"path"`
}

// MaildirServer is the POP3 server that served a Maildir.
type MaildirServer string

// The Maildir servers whose UIDLs are known.
const (
	ServerDovecot MaildirServer = "dovecot"
	ServerQmail   MaildirServer = "qmail" // qmail-pop3d, vpopmail
	ServerCourier MaildirServer = "courier"
)

// ParseMaildirServer checks a --maildir-server value; "" is Dovecot.
func ParseMaildirServer(s string) (MaildirServer, error) {
	switch v := MaildirServer(s); v {
	case "":
		return ServerDovecot, nil
	case ServerDovecot, ServerQmail, ServerCourier:
		return v, nil
	}
	return "", fmt.Errorf("%q: want dovecot, qmail (also vpopmail) or courier", s)
}

// MaildirSource says how the old server named its messages' UIDLs.
type MaildirSource struct {
	// Server is the old POP3 server; "" is Dovecot.
	Server MaildirServer
	// UIDLFormat is the old server's pop3_uidl_format (Dovecot only).
	UIDLFormat UIDLFormat
}

func (src MaildirSource) describe() string {
	switch src.Server {
	case ServerQmail:
		return "maildir (qmail: the file name's unique part)"
	case ServerCourier:
		return "maildir (courier: courierpop3dsizelist)"
	}
	return "maildir (dovecot: pop3_uidl_format " + src.UIDLFormat.String() + ")"
}

// ImportMaildir imports the INBOX of each account from its Maildir.
func ImportMaildir(ctx context.Context, t Target, src MaildirSource, accts []MaildirAccount, opts Options) Report {
	return importEach(ctx, src.describe(), accts, opts, func(a MaildirAccount) AccountReport {
		return importMaildirAccount(ctx, t, src, a)
	})
}

// maildirMsg is one message file of the source.
type maildirMsg struct {
	path, name, base string
	uid              uint32
	flags            []string
}

func importMaildirAccount(ctx context.Context, t Target, src MaildirSource, a MaildirAccount) AccountReport {
	rep := AccountReport{Address: a.Address}
	in, err := t.openInbox(a.Address)
	if err != nil {
		rep.Error = err.Error()
		return rep
	}
	if err := importMaildirBox(ctx, in, src, a.Path, "", &rep); err != nil {
		rep.Error = err.Error()
		return rep
	}
	folders, err := maildirFolders(a.Path)
	if err != nil {
		rep.Error = err.Error()
		return rep
	}
	for _, f := range folders {
		if f.name == "" {
			rep.refuse(f.entry+"/", "", "a Maildir++ folder whose name cannot be read (an empty level, or INBOX)")
			continue
		}
		box, err := in.folder(f.name)
		if errors.Is(err, mailstore.ErrBadName) {
			rep.refuse(f.entry+"/", "", fmt.Sprintf("a folder named %q cannot be a mailbox here: %v", f.name, err))
			continue
		}
		if err == nil {
			err = importMaildirBox(ctx, box, src, filepath.Join(a.Path, f.entry), f.name, &rep)
		}
		if err != nil {
			rep.Error = fmt.Sprintf("folder %s: %v", f.name, err)
			return rep
		}
	}
	return rep
}

// importMaildirBox imports the Maildir dir into the mailbox of in;
// folder is "" for the INBOX, else the mailbox's name.
func importMaildirBox(ctx context.Context, in *inbox, src MaildirSource, dir, folder string, rep *AccountReport) (err error) {
	defer func() {
		if ferr := in.flush(rep); err == nil {
			err = ferr
		}
	}()
	msgs, cands, err := maildirListing(src, dir, folder, rep)
	if err != nil {
		return err
	}
	for i, c := range cands {
		if ctx.Err() != nil {
			return errors.New("stopped: " + ctx.Err().Error())
		}
		if c.uidl == "" {
			continue // refused by maildirListing
		}
		if in.present[c.uidl] {
			rep.Skipped++
			continue
		}
		m := msgs[i]
		if err := importFile(in, m, c.uidl, rep); err != nil {
			return fmt.Errorf("%s: %v", m.name, err)
		}
	}
	return nil
}

// A Maildir++ folder of a Maildir: a directory ".A.B" with cur/ is the
// mailbox A/B, each level in modified UTF-7 (RFC 3501 §5.1.3), as
// Dovecot and Courier write it. The folders other servers give the
// special uses go to ours (Sent, Drafts, Trash, Junk, Archive).
type maildirFolder struct {
	entry string // the directory's name
	name  string // the mailbox here; "" when it cannot be read
}

// maildirFolders lists the Maildir++ folders of the Maildir dir, sorted
// (superiors first).
func maildirFolders(dir string) ([]maildirFolder, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []maildirFolder
	for _, e := range entries {
		n := e.Name()
		if len(n) < 2 || n[0] != '.' || !e.IsDir() {
			continue
		}
		if fi, err := os.Stat(filepath.Join(dir, n, "cur")); err != nil || !fi.IsDir() {
			continue
		}
		out = append(out, maildirFolder{entry: n, name: folderName(n[1:])})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].entry < out[j].entry })
	return out, nil
}

// specialFolders maps the names other servers and clients give the
// special-use folders (lower case) to ours.
var specialFolders = map[string]string{
	"sent": "Sent", "sent items": "Sent", "sent messages": "Sent", "sent mail": "Sent",
	"drafts": "Drafts", "draft": "Drafts",
	"trash": "Trash", "deleted items": "Trash", "deleted messages": "Trash",
	"junk": "Junk", "spam": "Junk", "junk e-mail": "Junk", "junk email": "Junk",
	"archive": "Archive", "archives": "Archive",
}

// folderName is the mailbox name of the folder directory ".<disk>", or
// "" when it has an empty level or is INBOX.
func folderName(disk string) string {
	levels := strings.Split(disk, ".")
	for i, l := range levels {
		if l == "" {
			return ""
		}
		levels[i] = decodeFolderLevel(l)
	}
	if strings.EqualFold(levels[0], mailstore.Inbox) && len(levels) == 1 {
		return ""
	}
	return ourFolder(levels)
}

// ourFolder is the mailbox here of a folder of the old server, given as
// its levels: a first level that other servers and clients give a special
// use (specialFolders) becomes ours.
func ourFolder(levels []string) string {
	if ours, ok := specialFolders[strings.ToLower(levels[0])]; ok {
		levels[0] = ours
	}
	return strings.Join(levels, "/")
}

// decodeFolderLevel decodes a level of a folder name from modified
// UTF-7 ("&" base64 of UTF-16, "," for "/", "-"; "&-" is "&"); a level
// that is not valid modified UTF-7 is kept as it is.
func decodeFolderLevel(level string) string {
	var b strings.Builder
	rest := level
	for {
		amp := strings.IndexByte(rest, '&')
		if amp < 0 {
			b.WriteString(rest)
			return b.String()
		}
		b.WriteString(rest[:amp])
		dash := strings.IndexByte(rest[amp:], '-')
		if dash < 0 {
			return level
		}
		seq := rest[amp+1 : amp+dash]
		rest = rest[amp+dash+1:]
		if seq == "" {
			b.WriteByte('&')
			continue
		}
		raw, err := base64.RawStdEncoding.DecodeString(strings.ReplaceAll(seq, ",", "/"))
		if err != nil || len(raw)%2 != 0 {
			return level
		}
		units := make([]uint16, 0, len(raw)/2)
		for k := 0; k+1 < len(raw); k += 2 {
			units = append(units, binary.BigEndian.Uint16(raw[k:]))
		}
		b.WriteString(string(utf16.Decode(units)))
	}
}

// folderUIDL is the UIDL kept with a message of a folder: POP3 serves
// only the INBOX, so it only has to stay the same for a second import to
// skip the message: the file name's unique part, or a hash of it when
// that cannot be a UIDL.
func folderUIDL(base string) string {
	if mailstore.ValidUIDL(base) {
		return base
	}
	sum := sha256.Sum256([]byte(base))
	return "H" + hex.EncodeToString(sum[:16])
}

// importFile stores one message file.
func importFile(in *inbox, m maildirMsg, uidl string, rep *AccountReport) error {
	f, err := os.Open(m.path)
	if errors.Is(err, fs.ErrNotExist) {
		rep.refuse(m.name, uidl, "the file went away during the import (expunged or moved by the old server?)")
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if reason := in.sizeRefusal(fi.Size()); reason != "" {
		rep.refuse(m.name, uidl, reason)
		return nil
	}
	return in.store(rep, m.name, f, uidl, m.flags, fi.ModTime())
}

// maildirListing lists the messages of the Maildir at dir in the old
// server's UID order (files without a UID last, by name), each candidate with its
// UIDL; a message whose UIDL cannot be determined or kept is refused in
// rep and its candidate has an empty UIDL. rep.Found is set.
func maildirListing(src MaildirSource, dir, folder string, rep *AccountReport) ([]maildirMsg, []candidate, error) {
	if fi, err := os.Stat(filepath.Join(dir, "cur")); err != nil || !fi.IsDir() {
		return nil, nil, fmt.Errorf("%s is not a Maildir (no cur/)", dir)
	}
	var ul *Uidlist
	var keywords map[byte]string
	var courier courierList
	var courierKeywords map[string][]string
	var err error
	switch src.Server {
	case ServerQmail:
	case ServerCourier:
		if courier, err = readCourierSizelist(dir); err != nil {
			return nil, nil, err
		}
		if courierKeywords, err = readCourierKeywords(dir); err != nil {
			return nil, nil, err
		}
	default:
		if ul, err = readUidlist(dir); err != nil {
			return nil, nil, err
		}
		if keywords, err = readKeywords(dir); err != nil {
			return nil, nil, err
		}
	}
	var msgs []maildirMsg
	for _, sub := range []string{"new", "cur"} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if sub == "new" && errors.Is(err, fs.ErrNotExist) {
			continue // an empty new/ lost on a copy
		}
		if err != nil {
			return nil, nil, err
		}
		for _, e := range entries {
			name := e.Name()
			if !e.Type().IsRegular() || strings.HasPrefix(name, ".") {
				continue
			}
			base, info, _ := strings.Cut(name, ":")
			m := maildirMsg{path: filepath.Join(dir, sub, name), name: name, base: base}
			if folder != "" {
				m.name = folder + "/" + name
			}
			if ul != nil {
				m.uid = ul.Recs[base].UID
			}
			if r, ok := courier.recs[base]; ok {
				m.uid = uint32(min(r.uid, 1<<32-1))
			}
			if fl, ok := strings.CutPrefix(info, "2,"); ok {
				m.flags = maildirFlags(fl, keywords)
			}
			m.flags = append(m.flags, courierKeywords[base]...)
			msgs = append(msgs, m)
		}
	}
	sort.Slice(msgs, func(i, j int) bool {
		a, b := msgs[i], msgs[j]
		if (a.uid == 0) != (b.uid == 0) {
			return a.uid != 0
		}
		if a.uid != b.uid {
			return a.uid < b.uid
		}
		return a.name < b.name
	})
	rep.Found += len(msgs)
	cands := make([]candidate, len(msgs))
	for i, m := range msgs {
		var uidl, reason string
		switch {
		case folder != "":
			uidl = folderUIDL(m.base)
		case src.Server == ServerQmail:
			uidl = m.base
		case src.Server == ServerCourier:
			uidl = courier.uidl(m.base)
		default:
			uidl, reason = maildirUIDL(src.UIDLFormat, ul, m)
		}
		cands[i] = candidate{name: m.name, uidl: uidl}
		if reason != "" {
			rep.refuse(m.name, "", reason)
			cands[i].uidl = ""
		}
	}
	// RFC 1939 and duplicates, keeping the positions.
	var ok []candidate
	for _, c := range cands {
		if c.uidl != "" {
			ok = append(ok, c)
		}
	}
	keep := map[string]bool{}
	for _, c := range screen(rep, ok) {
		keep[c.name] = true
	}
	for i := range cands {
		if !keep[cands[i].name] {
			cands[i].uidl = ""
		}
	}
	return msgs, cands, nil
}

// maildirUIDL is the UIDL the old server served for m, or why it cannot
// be known.
func maildirUIDL(f UIDLFormat, ul *Uidlist, m maildirMsg) (string, string) {
	var rec UidlistRec
	if ul != nil {
		rec = ul.Recs[m.base]
		if rec.POP3UIDL != "" {
			return rec.POP3UIDL, ""
		}
	}
	if rec.UID == 0 && (f.Needs('u') || f.Needs('v')) {
		return "", "not in dovecot-uidlist, so the old server has not given it its UID yet: let the old server see the mailbox once (a POP3 or IMAP login, or doveadm mailbox status), then import again"
	}
	vars := UIDLVars{UID: rec.UID, FileName: m.base, GUID: rec.GUID}
	if ul != nil {
		vars.UIDValidity = ul.UIDValidity
	}
	if vars.GUID == "" {
		vars.GUID = m.base
	}
	if f.Needs('m') {
		// Dovecot fills %m (the header's MD5) only for mbox: on a
		// Maildir its UIDL command fails (Dovecot 2.3.19 cuts the
		// session after "+OK"), so no client kept a UIDL for it.
		return "", "the old server's pop3_uidl_format uses %m, which Dovecot fills only for mbox: on a Maildir its UIDL command fails, so no client kept a UIDL for this message; import with another --uidl-format (the clients download the message again either way)"
	}
	return f.Expand(vars), ""
}

func readUidlist(dir string) (*Uidlist, error) {
	f, err := os.Open(filepath.Join(dir, "dovecot-uidlist"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseUidlist(f)
}

// readKeywords reads dovecot-keywords ("<index> <keyword>" lines: the
// keyword of letter 'a'+index).
func readKeywords(dir string) (map[byte]string, error) {
	data, err := os.ReadFile(filepath.Join(dir, "dovecot-keywords"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[byte]string{}
	for _, l := range strings.Split(string(data), "\n") {
		var idx int
		var kw string
		if n, _ := fmt.Sscanf(l, "%d %s", &idx, &kw); n == 2 && idx >= 0 && idx < 26 {
			out[byte('a'+idx)] = kw
		}
	}
	return out, nil
}

// maildirFlags maps the letters of a ":2," suffix to IMAP flags.
func maildirFlags(letters string, keywords map[byte]string) []string {
	var out []string
	for i := 0; i < len(letters); i++ {
		switch c := letters[i]; c {
		case 'D':
			out = append(out, `\Draft`)
		case 'F':
			out = append(out, `\Flagged`)
		case 'R':
			out = append(out, `\Answered`)
		case 'S':
			out = append(out, `\Seen`)
		case 'T':
			out = append(out, `\Deleted`)
		default:
			if kw, ok := keywords[c]; ok {
				out = append(out, kw)
			}
		}
	}
	return out
}
