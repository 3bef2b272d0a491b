package migrate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
)

// POP3Account is an account to take over from a POP3 server: our
// address and the old server's login.
type POP3Account struct {
	Address  string `json:"address"`
	Username string `json:"username"`
	Password string `json:"password"`
}

// ImportPOP3 imports the INBOX of each account from the POP3 server src
// into t: UIDLs not yet here are retrieved (RETR) and stored with their
// UIDL. The source is never changed (no DELE). An account that fails
// does not stop the others.
func ImportPOP3(ctx context.Context, t Target, src POP3Source, accts []POP3Account, opts Options) Report {
	return importEach(ctx, "pop3 "+src.Addr, accts, opts, func(a POP3Account) AccountReport {
		return importPOP3Account(ctx, t, src, a)
	})
}

func importPOP3Account(ctx context.Context, t Target, src POP3Source, a POP3Account) AccountReport {
	rep := AccountReport{Address: a.Address}
	in, err := t.openInbox(a.Address)
	if err != nil {
		rep.Error = err.Error()
		return rep
	}
	c, cands, sizes, err := pop3Listing(ctx, src, a, &rep)
	if err != nil {
		rep.Error = err.Error()
		return rep
	}
	defer c.quit()
	for _, m := range cands {
		if in.present[m.uidl] {
			rep.Skipped++
			continue
		}
		if reason := in.sizeRefusal(sizes[m.name]); reason != "" {
			rep.refuse(m.name, m.uidl, reason)
			continue
		}
		num, _ := strconv.Atoi(m.name)
		r, err := c.retr(num)
		var perr *pop3Error
		if errors.As(err, &perr) {
			rep.refuse(m.name, m.uidl, perr.Error())
			continue
		}
		if err != nil {
			rep.Error = fmt.Sprintf("message %s (UIDL %s): %v", m.name, m.uidl, err)
			return rep
		}
		size, skipped, refusal, err := in.store(r, m.uidl, nil, time.Time{})
		if err == nil {
			// What the store did not read (a refused message) is still on
			// the wire.
			_, err = io.Copy(io.Discard, r)
		}
		if err != nil {
			rep.Error = fmt.Sprintf("message %s (UIDL %s): %v", m.name, m.uidl, err)
			return rep
		}
		rep.count(m.name, m.uidl, size, skipped, refusal)
	}
	return rep
}

// pop3Listing logs in to the old server as a and lists its messages:
// the candidates with a UIDL that can be kept (the others are refused in
// rep) and every message's size by number. rep.Found is set.
func pop3Listing(ctx context.Context, src POP3Source, a POP3Account, rep *AccountReport) (*pop3Client, []candidate, map[string]int64, error) {
	c, err := dialPOP3(ctx, src)
	if err != nil {
		return nil, nil, nil, err
	}
	fail := func(err error) (*pop3Client, []candidate, map[string]int64, error) {
		c.quit()
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, nil, nil, err
	}
	if err := c.login(a.Username, a.Password); err != nil {
		return fail(fmt.Errorf("login as %s: %w", a.Username, err))
	}
	ids, err := c.list("UIDL")
	if err != nil {
		return fail(fmt.Errorf("UIDL: %w (a server without UIDL cannot be taken over without clients downloading again)", err))
	}
	lst, err := c.list("LIST")
	if err != nil {
		return fail(fmt.Errorf("LIST: %w", err))
	}
	sizes := make(map[string]int64, len(lst))
	for _, l := range lst {
		n, err := strconv.ParseInt(l.arg, 10, 64)
		if err != nil || n < 0 {
			return fail(fmt.Errorf("LIST: message %d has size %q", l.num, l.arg))
		}
		sizes[strconv.Itoa(l.num)] = n
	}
	cands := make([]candidate, len(ids))
	for i, l := range ids {
		cands[i] = candidate{name: strconv.Itoa(l.num), uidl: l.arg}
	}
	rep.Found = len(cands)
	return c, screen(rep, cands), sizes, nil
}
