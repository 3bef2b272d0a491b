package migrate

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Courier's courierpop3dsizelist, as Courier's POP3 server (pop3dserver.c)
// reads and writes it: a version line, then one line per message.
//
//	/<version> <nextuid> [<uidvalidity>]
//	<filename> <size> <uid>:<uidvalidity>[:<utf8>]
//
// Versions 2 and 3 are read (3 adds the ":<utf8>" field); Courier ignores
// a file of any other version, or without the version line, and so do we.
// The file name may contain spaces: the size and the UID field are the
// last two space-separated fields. A line that does not parse is skipped,
// as Courier skips it. A message's record is found by the file name up to
// ":" (the flags change after the list was written).
//
// The UIDL Courier serves for a listed message is "UID<uid>-<uidvalidity>",
// or "UID<uid>" when the UIDVALIDITY is 0. A message with UID 0 or not in
// the list (which Courier has not served yet; new/ is moved to cur/ at the
// next login, and only then listed) gets the "version 0" UIDL: the file
// name up to ":", with every byte outside 0x21..0x7E and the characters
// ' " + written as "+" and two upper-case hex digits. Old Courier versions
// served that for every message.

// courierList is a parsed courierpop3dsizelist; the zero value (no file,
// or one Courier ignores) has no records.
type courierList struct {
	version int
	recs    map[string]courierRec // by the file name up to ":"
}

type courierRec struct {
	uid, uidv uint64
}

// uidl is the UIDL Courier serves for the file with the base name base.
func (l courierList) uidl(base string) string {
	if r, ok := l.recs[base]; ok && r.uid != 0 {
		if r.uidv != 0 {
			return fmt.Sprintf("UID%d-%d", r.uid, r.uidv)
		}
		return fmt.Sprintf("UID%d", r.uid)
	}
	return courierEscape(base)
}

// courierEscape is Courier's version 0 UIDL of a file's base name.
func courierEscape(base string) string {
	var b strings.Builder
	for i := 0; i < len(base); i++ {
		c := base[i]
		if c < 0x21 || c > 0x7e || c == '\'' || c == '"' || c == '+' {
			fmt.Fprintf(&b, "+%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func readCourierSizelist(dir string) (courierList, error) {
	f, err := os.Open(filepath.Join(dir, "courierpop3dsizelist"))
	if errors.Is(err, fs.ErrNotExist) {
		return courierList{}, nil
	}
	if err != nil {
		return courierList{}, err
	}
	defer f.Close()
	return parseCourierSizelist(f)
}

// parseCourierSizelist reads a courierpop3dsizelist; an error only when
// reading fails.
func parseCourierSizelist(r io.Reader) (courierList, error) {
	br := bufio.NewReader(r)
	head, err := br.ReadString('\n')
	if err != nil && err != io.EOF {
		return courierList{}, fmt.Errorf("courierpop3dsizelist: %w", err)
	}
	hf := strings.Fields(strings.TrimPrefix(head, "/"))
	if !strings.HasPrefix(head, "/") || len(hf) < 2 || (hf[0] != "2" && hf[0] != "3") {
		return courierList{}, nil // Courier ignores it too
	}
	if _, err := strconv.ParseUint(hf[1], 10, 64); err != nil {
		return courierList{}, nil
	}
	l := courierList{recs: map[string]courierRec{}}
	l.version, _ = strconv.Atoi(hf[0])
	for {
		line, err := br.ReadString('\n')
		if line != "" && strings.HasSuffix(line, "\n") {
			if name, rec, ok := parseCourierLine(strings.TrimSuffix(line, "\n")); ok {
				base, _, _ := strings.Cut(name, ":")
				l.recs[base] = rec
			}
		}
		// A last line without its newline is ignored, as Courier does.
		if err == io.EOF {
			return l, nil
		}
		if err != nil {
			return courierList{}, fmt.Errorf("courierpop3dsizelist: %w", err)
		}
	}
}

// parseCourierLine splits "<filename> <size> <uid>:<uidv>[:<utf8>]".
func parseCourierLine(line string) (string, courierRec, bool) {
	i := strings.LastIndexByte(line, ' ')
	if i < 0 {
		return "", courierRec{}, false
	}
	j := strings.LastIndexByte(line[:i], ' ')
	if j <= 0 {
		return "", courierRec{}, false
	}
	name, size, ids := line[:j], line[j+1:i], line[i+1:]
	if _, err := strconv.ParseUint(size, 10, 64); err != nil {
		return "", courierRec{}, false
	}
	f := strings.Split(ids, ":")
	if len(f) < 2 || len(f) > 3 {
		return "", courierRec{}, false
	}
	var rec courierRec
	var err1, err2 error
	rec.uid, err1 = strconv.ParseUint(f[0], 10, 64)
	rec.uidv, err2 = strconv.ParseUint(f[1], 10, 64)
	if err1 != nil || err2 != nil {
		return "", courierRec{}, false
	}
	return name, rec, true
}

// Courier IMAP's keywords (courierimapkeywords/ in each Maildir folder,
// as Courier's maildirkeywords code writes them):
//
//   - ":list": the keyword names, one per line, then an empty line, then
//     "<file name up to ':'>:<index> <index> ..." per message, each index
//     naming a keyword of the first part (from 0);
//   - a message's keywords changed since ":list" was written are in a file
//     named by the message's file name up to ':', one keyword per line,
//     and, once Courier has read it, renamed ".<n>.<file name up to ':'>",
//     where a larger <n> is newer.
//
// The newest wins: a not yet renamed file, then the largest <n>, then
// ":list". Temporary files (".tmp.*") are not read.

// readCourierKeywords returns the keywords of each message of the Maildir
// folder dir by its file name up to ':'; nil when it has none.
func readCourierKeywords(dir string) (map[string][]string, error) {
	kwDir := filepath.Join(dir, "courierimapkeywords")
	entries, err := os.ReadDir(kwDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	if data, err := os.ReadFile(filepath.Join(kwDir, ":list")); err == nil {
		names, msgs, _ := strings.Cut(string(data), "\n\n")
		list := strings.Split(names, "\n")
		for _, l := range strings.Split(msgs, "\n") {
			base, idx, ok := strings.Cut(l, ":")
			if !ok || base == "" {
				continue
			}
			var kws []string
			for _, f := range strings.Fields(idx) {
				if i, err := strconv.Atoi(f); err == nil && i >= 0 && i < len(list) && list[i] != "" {
					kws = append(kws, list[i])
				}
			}
			out[base] = kws
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	// The update files: the largest <n> per message, a plain name above all.
	type update struct {
		n    int64 // -1: not yet renamed (the newest)
		name string
	}
	newest := map[string]update{}
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || name == ":list" || strings.HasPrefix(name, ".tmp.") {
			continue
		}
		u := update{n: -1, name: name}
		base := name
		if rest, ok := strings.CutPrefix(name, "."); ok {
			num, b, ok := strings.Cut(rest, ".")
			n, err := strconv.ParseInt(num, 10, 64)
			if !ok || err != nil || b == "" {
				continue
			}
			u.n, base = n, b
		}
		if cur, ok := newest[base]; ok && (cur.n == -1 || u.n != -1 && u.n <= cur.n) {
			continue
		}
		newest[base] = u
	}
	for base, u := range newest {
		data, err := os.ReadFile(filepath.Join(kwDir, u.name))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // Courier renamed it meanwhile: :list or the next has it
			}
			return nil, err
		}
		var kws []string
		for _, l := range strings.Split(string(data), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				kws = append(kws, l)
			}
		}
		out[base] = kws
	}
	return out, nil
}
