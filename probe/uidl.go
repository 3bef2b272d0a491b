package probe

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"mailsetup/autoconfig"
	"mailsetup/finding"
)

// uidlWait is how long the probe waits between its two POP3 sessions
// when the server sets no LOGIN-DELAY.
const uidlWait = time.Second

// uidlEntry is one message of a POP3 listing: its UIDL and size.
type uidlEntry struct {
	uidl string
	size int64
}

// uidlList reads UIDL and LIST; nil when the server has no UIDL.
func (p *pop3Client) uidlList() ([]uidlEntry, error) {
	if _, err := p.cmd("UIDL"); err != nil {
		var pe *pop3Error
		if errors.As(err, &pe) {
			return nil, nil
		}
		return nil, fmt.Errorf("UIDL: %w", err)
	}
	ul, err := p.lines()
	if err != nil {
		return nil, fmt.Errorf("UIDL: %w", err)
	}
	sizes := map[string]int64{}
	if _, err := p.cmd("LIST"); err == nil {
		ll, err := p.lines()
		if err != nil {
			return nil, fmt.Errorf("LIST: %w", err)
		}
		for _, l := range ll {
			if f := strings.Fields(l); len(f) == 2 {
				sizes[f[0]], _ = strconv.ParseInt(f[1], 10, 64)
			}
		}
	}
	out := make([]uidlEntry, 0, len(ul))
	for _, l := range ul {
		if f := strings.Fields(l); len(f) == 2 {
			out = append(out, uidlEntry{uidl: f[1], size: sizes[f[0]]})
		}
	}
	return out, nil
}

// recheckUIDLs lists the UIDLs again in a second session, after the
// server's LOGIN-DELAY (at least uidlWait), and compares them with the
// first listing: a message still present under another UIDL is
// pop3.uidl-unstable, because every client that keeps mail on the
// server then downloads it again. A delay longer than the step may wait
// is not waited for: the comparison is skipped and said so.
func (r *runner) recheckUIDLs(ctx context.Context, e autoconfig.Endpoint, s *stepState, first []uidlEntry, delay time.Duration) {
	if len(first) == 0 {
		s.note("UIDLs not compared over time: no messages with a UIDL")
		return
	}
	wait := max(uidlWait, delay)
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait+2*time.Second {
		s.note("UIDLs not compared over time: the server's LOGIN-DELAY of %s is longer than this check may wait", minutes(delay))
		return
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return
	}
	p, _, _, caps, err := r.dialPOP3(ctx, e, r.strictConfig(e.Host))
	if err != nil {
		s.note("UIDLs not compared over time: second session: %v", err)
		return
	}
	defer p.c.Close()
	if _, err := p.auth(caps, r.loginName(), r.password); err != nil {
		s.note("UIDLs not compared over time: second login: %v", err)
		return
	}
	second, err := p.uidlList()
	p.cmd("QUIT")
	if err != nil {
		s.note("UIDLs not compared over time: %v", err)
		return
	}
	changed := changedUIDLs(first, second)
	if len(changed) == 0 {
		s.note("UIDLs unchanged in a second session %s later (%d and %d messages)", wait, len(first), len(second))
		return
	}
	ev := []string{fmt.Sprintf("a second session %s later lists %d of the %d messages under other UIDLs", wait, len(changed), len(first))}
	if len(changed) > 3 {
		changed = changed[:3]
	}
	ev = append(ev, changed...)
	s.note("%s", ev[0])
	s.find(finding.New("pop3.uidl-unstable", finding.Vars{"value": fmt.Sprintf("%s:%d", e.Host, e.Port)}, ev...))
}

// changedUIDLs: the messages of first whose UIDL is gone from second
// while second has a new UIDL for a message of the same size (the same
// message, still present, renamed); a message deleted meanwhile has no
// such counterpart.
func changedUIDLs(first, second []uidlEntry) []string {
	in1, in2 := map[string]bool{}, map[string]bool{}
	for _, m := range first {
		in1[m.uidl] = true
	}
	fresh := map[int64][]string{}
	for _, m := range second {
		in2[m.uidl] = true
		if !in1[m.uidl] {
			fresh[m.size] = append(fresh[m.size], m.uidl)
		}
	}
	var out []string
	for _, m := range first {
		if in2[m.uidl] || len(fresh[m.size]) == 0 {
			continue
		}
		out = append(out, fmt.Sprintf("message of %d octets: UIDL %q, then %q", m.size, m.uidl, fresh[m.size][0]))
		fresh[m.size] = fresh[m.size][1:]
	}
	return out
}
