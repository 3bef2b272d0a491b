package migrate

import (
	"bufio"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
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
// Only the INBOX (new/ and cur/ of the Maildir) is read.

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
	rep := Report{Source: src.describe()}
	rep.Accounts = forEach(ctx, len(accts), opts.Concurrency, func(i int) AccountReport {
		return importMaildirAccount(ctx, t, src, accts[i])
	})
	rep.sum()
	return rep
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
	msgs, cands, err := maildirListing(src, a.Path, &rep)
	if err != nil {
		rep.Error = err.Error()
		return rep
	}
	for i, c := range cands {
		if ctx.Err() != nil {
			rep.Error = "stopped: " + ctx.Err().Error()
			return rep
		}
		if c.uidl == "" {
			continue // refused by maildirListing
		}
		if in.present[c.uidl] {
			rep.Skipped++
			continue
		}
		m := msgs[i]
		if err := importFile(in, m, c.uidl, &rep); err != nil {
			rep.Error = fmt.Sprintf("%s: %v", m.name, err)
			return rep
		}
	}
	return rep
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
	size, skipped, refusal, err := in.store(f, uidl, m.flags, fi.ModTime())
	switch {
	case err != nil:
		return err
	case skipped:
		rep.Skipped++
	case refusal != "":
		rep.refuse(m.name, uidl, refusal)
	default:
		rep.Imported++
		rep.Bytes += size
	}
	return nil
}

// maildirListing lists the messages of the Maildir at dir in the old
// server's UID order (files without a UID last, by name), each candidate with its
// UIDL; a message whose UIDL cannot be determined or kept is refused in
// rep and its candidate has an empty UIDL. rep.Found is set.
func maildirListing(src MaildirSource, dir string, rep *AccountReport) ([]maildirMsg, []candidate, error) {
	if fi, err := os.Stat(filepath.Join(dir, "cur")); err != nil || !fi.IsDir() {
		return nil, nil, fmt.Errorf("%s is not a Maildir (no cur/)", dir)
	}
	var ul *Uidlist
	var keywords map[byte]string
	var courier courierList
	var err error
	switch src.Server {
	case ServerQmail:
	case ServerCourier:
		if courier, err = readCourierSizelist(dir); err != nil {
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
			if ul != nil {
				m.uid = ul.Recs[base].UID
			}
			if r, ok := courier.recs[base]; ok {
				m.uid = uint32(min(r.uid, 1<<32-1))
			}
			if fl, ok := strings.CutPrefix(info, "2,"); ok {
				m.flags = maildirFlags(fl, keywords)
			}
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
	rep.Found = len(msgs)
	cands := make([]candidate, len(msgs))
	for i, m := range msgs {
		var uidl, reason string
		switch src.Server {
		case ServerQmail:
			uidl = m.base
		case ServerCourier:
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
		sum, err := headerMD5(m.path)
		if err != nil {
			return "", "reading it for %m: " + err.Error()
		}
		vars.MD5 = sum
	}
	return f.Expand(vars), ""
}

// headerMD5 is the hex MD5 of a message's header (up to and including
// the empty line).
func headerMD5(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := md5.New()
	br := bufio.NewReader(f)
	for {
		line, err := br.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			if err != io.EOF {
				return "", err
			}
			h.Write(line)
			break
		}
		h.Write(line)
		if string(line) == "\n" || string(line) == "\r\n" {
			break
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
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
