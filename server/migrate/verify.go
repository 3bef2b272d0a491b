package migrate

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"mailsetup/server/accounts"
	"mailsetup/server/mailstore"
)

// The cutover report: for each account, the old POP3 server's UIDLs
// against ours. A UIDL the old server lists that our INBOX lacks is a
// message the account's POP3 clients would download again.

// VerifyReport compares the old server's UIDLs with ours.
type VerifyReport struct {
	Source string `json:"source"`
	// Accounts and Messages count what was compared (the old server's
	// messages); Redownload is how many of them our INBOXes lack.
	Accounts   int `json:"accounts"`
	Messages   int `json:"messages"`
	Redownload int `json:"would_download_again"`
	// Checked is every account, Differ those with missing messages or
	// that could not be compared.
	Checked []VerifyAccount `json:"checked"`
	Differ  []string        `json:"differ"`
}

// VerifyAccount is one account's comparison.
type VerifyAccount struct {
	Address string `json:"address"`
	Old     int    `json:"old"`  // messages on the old server
	Ours    int    `json:"ours"` // messages in our INBOX
	// Missing is how many of the old server's UIDLs we lack; MissingUIDLs
	// lists the first of them (at most 20).
	Missing      int      `json:"missing"`
	MissingUIDLs []string `json:"missing_uidls,omitempty"`
	// Error: the account could not be compared (counts as differing).
	Error string `json:"error,omitempty"`
}

// maxListed bounds the UIDLs listed per account.
const maxListed = 20

// OK reports whether no account would download again and every account
// was compared.
func (r VerifyReport) OK() bool { return len(r.Differ) == 0 }

// VerifyPOP3 compares each account's UIDLs on the POP3 server src with
// those of its INBOX in the mail storage at mailRoot. It changes nothing,
// here or there: our UIDLs are read from the Maildir file names (see
// "File names and UIDLs" in package mailstore), so it runs beside a
// running service too.
func VerifyPOP3(ctx context.Context, mailRoot string, accts *accounts.Store, src POP3Source, list []POP3Account, opts Options) VerifyReport {
	return verifyEach(ctx, "pop3 "+src.Addr, len(list), opts, func(i int) VerifyAccount {
		a := list[i]
		return verifyAccount(mailRoot, accts, a.Address, func(rep *AccountReport) ([]candidate, error) {
			c, cands, _, err := pop3Listing(ctx, src, a, rep)
			if err != nil {
				return nil, err
			}
			c.quit()
			return cands, nil
		})
	})
}

// VerifyMaildir compares, for each account, the UIDLs the old server
// served for the INBOX of its Maildir on disk (computed as ImportMaildir
// does) with those of its INBOX here. It changes nothing.
func VerifyMaildir(ctx context.Context, mailRoot string, accts *accounts.Store, src MaildirSource, list []MaildirAccount, opts Options) VerifyReport {
	return verifyEach(ctx, src.describe(), len(list), opts, func(i int) VerifyAccount {
		a := list[i]
		return verifyAccount(mailRoot, accts, a.Address, func(rep *AccountReport) ([]candidate, error) {
			_, cands, err := maildirListing(src, a.Path, "", rep)
			var out []candidate
			for _, c := range cands {
				if c.uidl != "" { // the others are refused in rep
					out = append(out, c)
				}
			}
			return out, err
		})
	})
}

// verifyEach compares n accounts through fn, at most opts.Concurrency at
// once, into a report of the source.
func verifyEach(ctx context.Context, source string, n int, opts Options, fn func(i int) VerifyAccount) VerifyReport {
	rep := VerifyReport{Source: source, Accounts: n, Differ: []string{}}
	rep.Checked = make([]VerifyAccount, n)
	forEach(ctx, n, opts.Concurrency, func(i int) AccountReport {
		rep.Checked[i] = fn(i)
		return AccountReport{}
	})
	for i, v := range rep.Checked {
		if ctx.Err() != nil && v.Error == "" {
			v.Error = "stopped: " + ctx.Err().Error()
			rep.Checked[i] = v
		}
		rep.Messages += v.Old
		rep.Redownload += v.Missing
		if v.Missing > 0 || v.Error != "" {
			rep.Differ = append(rep.Differ, v.Address)
		}
	}
	return rep
}

// verifyAccount compares the old server's listing of an account (list:
// the candidates whose UIDL can be kept; the others refused in its
// report) with its INBOX here.
func verifyAccount(mailRoot string, accts *accounts.Store, address string, list func(*AccountReport) ([]candidate, error)) VerifyAccount {
	v := VerifyAccount{Address: address}
	acct, ok := accts.Get(address)
	if !ok {
		v.Error = "no account " + address + " here"
		return v
	}
	ours, err := StoredUIDLs(mailRoot, acct.Address)
	if err != nil {
		v.Error = err.Error()
		return v
	}
	v.Ours = len(ours)
	var rep AccountReport
	cands, err := list(&rep)
	if err != nil {
		v.Error = err.Error()
		return v
	}
	v.Old = rep.Found
	missing := func(uidl string) {
		v.Missing++
		if len(v.MissingUIDLs) < maxListed {
			v.MissingUIDLs = append(v.MissingUIDLs, uidl)
		}
	}
	for _, r := range rep.Refused {
		// A UIDL that cannot be kept (or known) is a download again.
		if r.UIDL == "" {
			missing("(" + r.Message + ")")
			continue
		}
		missing(r.UIDL)
	}
	for _, m := range cands {
		if !ours[m.uidl] {
			missing(m.uidl)
		}
	}
	return v
}

// StoredUIDLs returns the UIDLs of an address's INBOX in the mail
// storage at root, read from the file names in new/ and cur/ without
// opening the index (which only the process owning the storage may
// write). A missing Maildir has none.
func StoredUIDLs(root, address string) (map[string]bool, error) {
	local, domain, ok := strings.Cut(strings.ToLower(address), "@")
	if !ok || strings.ContainsAny(local+domain, "/\\\x00") || local == ".." || domain == ".." {
		return nil, errors.New("address " + address + ": not storable")
	}
	dir := filepath.Join(root, domain, local, "Maildir")
	out := map[string]bool{}
	for _, sub := range []string{"new", "cur"} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if name := e.Name(); e.Type().IsRegular() && !strings.HasPrefix(name, ".") {
				out[mailstore.UIDLOfFile(name)] = true
			}
		}
	}
	return out, nil
}
