package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"mailsetup/server"
)

// expireHelp is `mailsetup expire --help`; it also documents --now,
// which the general usage leaves out.
const expireHelp = `usage: mailsetup expire [--config FILE] [--data DIR] [--dry-run]

Runs one POP3 expiry sweep: for every account of a domain with
pop3_policy.expire_days = N > 0, deletes the INBOX messages that were
first retrieved over POP3 more than N days ago. Messages never retrieved
over POP3 and other mailboxes are never touched. Prints one line per
account with expired messages and a total.

A running "mailsetup serve" sweeps by itself every hour and owns the mail
storage; expire refuses to run while it does (stop it first).

  --config FILE  the config file (default DIR/mailsetup.toml)
  --data DIR     the data directory (default ./mailsetup-data)
  --dry-run      print what would be deleted; delete nothing
  --now T        pretend the current time is T, RFC 3339 (testing)

Exit status: 0 done, 1 error (an account that could not be swept, a
running service), 2 usage error.
`

func cmdExpire(ctx context.Context, args []string, stdout io.Writer) error {
	var (
		c      common
		dryRun bool
		nowArg string
	)
	rest, err := parseFlags("expire", args, &c, func(fs *flag.FlagSet) {
		fs.BoolVar(&dryRun, "dry-run", false, "report, delete nothing")
		fs.StringVar(&nowArg, "now", "", "pretend the current time is T (testing)")
	})
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageError{"expire", fmt.Sprintf("unexpected argument %q", rest[0])}
	}
	var now time.Time
	if nowArg != "" {
		now, err = time.Parse(time.RFC3339, nowArg)
		if err != nil {
			return usageError{"expire", fmt.Sprintf("--now %q: want an RFC 3339 time such as 2026-01-02T15:04:05Z", nowArg)}
		}
	}
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	rep, err := server.Expire(ctx, cfg, server.ExpireOptions{DryRun: dryRun, Now: now})
	printExpireReport(stdout, rep)
	return err
}

func printExpireReport(w io.Writer, rep server.ExpireReport) {
	if rep.Domains == 0 {
		fmt.Fprintln(w, "no domain sets pop3_policy.expire_days: nothing expires")
		return
	}
	verb := "expired"
	if rep.DryRun {
		verb = "would expire"
	}
	for _, a := range rep.Accounts {
		fmt.Fprintf(w, "%s %s: %d messages, %d bytes (retrieved over POP3 more than %d days ago)\n", verb, a.Account, len(a.UIDLs), a.Bytes, a.Days)
	}
	for _, a := range rep.Busy {
		fmt.Fprintf(w, "skipped %s: a POP3 session has the mailbox open\n", a)
	}
	if rep.DryRun {
		fmt.Fprintf(w, "total (dry run): %d messages, %d bytes would expire in %d of %d accounts; nothing was deleted\n",
			rep.Messages, rep.Bytes, len(rep.Accounts), rep.Checked)
		return
	}
	fmt.Fprintf(w, "total: %d messages, %d bytes expired in %d of %d accounts\n", rep.Messages, rep.Bytes, len(rep.Accounts), rep.Checked)
}
