package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"mailsetup/internal/csvsafe"
	"mailsetup/server"
	"mailsetup/server/migrate"
)

// importHelp is `mailsetup import --help`.
const importHelp = `usage: mailsetup import --from-pop3 HOST:PORT --accounts FILE [flags]
       mailsetup import --from-imap HOST:PORT --accounts FILE [--uidl-format FORMAT]
                        [--accept-new-uidls] [flags]
       mailsetup import --from-maildir DIR --accounts FILE [--maildir-server SERVER]
                        [--uidl-format FORMAT] [flags]
       mailsetup import --from-mbox FILE|DIR --accounts FILE [--mbox-format FORMAT]
                        [--uidl-format FORMAT] [--accept-new-uidls] [flags]
       mailsetup import --verify --from-pop3 HOST:PORT --accounts FILE [flags]
       mailsetup import --verify --from-maildir DIR --accounts FILE [flags]

Takes mailboxes over from the old server into the accounts' INBOX (and,
from Maildirs and IMAP, their folders) with every POP3 UIDL kept, so
that POP3 clients that leave mail on the server do not download it
again. The accounts must exist here (mailsetup user add); an import
never creates one. A message already here is skipped, so an import can
be stopped and run again. The source is never changed (no DELE; IMAP:
EXAMINE and BODY.PEEK). mail.max_message_bytes and the account's
quota apply; a refused message is reported with the reason.

The accounts FILE is CSV, one account a line (an optional header line
starting with "address"; "#" starts a comment), or a JSON array of
objects with the same names:
  --from-pop3, --from-imap:
                   address,username,password   (the old server's login)
  --from-maildir:  address,path                (the account's Maildir,
                                                relative to DIR)
  --from-mbox:     address,path                (the account's mbox file,
                                                relative to DIR; with
                                                --from-mbox FILE one
                                                account, path "-")

  --from-pop3 HOST:PORT  the old POP3 server
  --from-imap HOST:PORT  the old IMAP server: every folder with flags and
                         internal dates (EXAMINE and BODY.PEEK: the source
                         is not changed); the INBOX's UIDLs from
                         --uidl-format (%u and %v: the IMAP UID and
                         UIDVALIDITY)
  --security MODE        tls (default: implicit TLS, port 995 or 993),
                         starttls (STLS or STARTTLS, port 110 or 143), or
                         none (plain text: only to a loopback address
                         unless --force-plain)
  --ca FILE              verify the old server's certificate against the
                         PEM certificates in FILE instead of the system's
  --force-plain          allow --security none to another host
  --from-maildir DIR     read Maildirs from disk (INBOX and Maildir++
                         folders)
  --maildir-server SERVER  the old POP3 server, for the UIDLs it served:
                         dovecot (default: a UIDL saved in dovecot-uidlist
                         (P) wins, else --uidl-format), qmail (qmail-pop3d,
                         vpopmail: the file name's unique part) or courier
                         (courierpop3dsizelist, else the unique part)
  --uidl-format FORMAT   Dovecot's pop3_uidl_format (default
                         %08Xu%08Xv; also %u %v %m %f %g, %{uid} ...;
                         --from-imap and --from-mbox: %u and %v only)
  --from-mbox FILE|DIR   read mbox files (the INBOX): the X-UIDL header
                         is the UIDL, or with --uidl-format the UIDL is
                         computed from X-UID and X-IMAPbase (Dovecot, UW
                         IMAP); messages without one are refused
  --mbox-format FORMAT   mboxrd (default: one ">" comes off ">+From "
                         lines), mboxo (only off ">From " lines), or
                         mboxcl2 / mboxcl (bodies framed by their
                         Content-Length; mboxcl unquotes as mboxo)
  --accept-new-uidls     import mbox messages without X-UIDL (IMAP:
                         INBOX messages whose old UIDL cannot be computed)
                         with new UIDLs: their clients will download them
                         again
  --accounts FILE        the accounts (see above)
  --concurrency N        accounts at once (default 4)
  --timeout DURATION     the deadline of each network step (default 1m)
  --verify               compare the old server's UIDLs (--from-pop3, or
                         computed from --from-maildir) with ours and
                         import nothing; runs beside "mailsetup serve"
  --json                 print the report as JSON
  --csv                  print the report as CSV, one account a line
                         after a header line naming the columns
` + dataFlagsHelp + `
The import itself refuses to run while "mailsetup serve" owns the data
(stop it for the import; --verify runs beside it).

Exit status: 0 every message imported or already here (--verify: no
message would be downloaded again); 1 an account failed, a message was
refused (--verify: an account differs or could not be compared); 2 usage
error.
`

// importArgs are the flags of `mailsetup import`.
type importArgs struct {
	c                          common
	fromPOP3, fromMaildir      string
	fromIMAP                   string
	asCSV                      bool
	fromMbox, mboxFormat       string
	acceptNewUIDLs             bool
	security, ca, uidlFormat   string
	maildirServer              string
	accounts                   string
	concurrency                int
	timeout                    time.Duration
	verify, asJSON, forcePlain bool
}

func cmdImport(ctx context.Context, args []string, stdout io.Writer) error {
	var a importArgs
	rest, err := parseFlags("import", args, &a.c, func(fs *flag.FlagSet) {
		fs.StringVar(&a.fromPOP3, "from-pop3", "", "")
		fs.StringVar(&a.fromIMAP, "from-imap", "", "")
		fs.StringVar(&a.fromMaildir, "from-maildir", "", "")
		fs.StringVar(&a.fromMbox, "from-mbox", "", "")
		fs.StringVar(&a.mboxFormat, "mbox-format", string(migrate.MboxRD), "")
		fs.BoolVar(&a.acceptNewUIDLs, "accept-new-uidls", false, "")
		fs.StringVar(&a.security, "security", "tls", "")
		fs.StringVar(&a.ca, "ca", "", "")
		fs.BoolVar(&a.forcePlain, "force-plain", false, "")
		fs.StringVar(&a.uidlFormat, "uidl-format", "", "")
		fs.StringVar(&a.maildirServer, "maildir-server", string(migrate.ServerDovecot), "")
		fs.StringVar(&a.accounts, "accounts", "", "")
		fs.IntVar(&a.concurrency, "concurrency", 4, "")
		fs.DurationVar(&a.timeout, "timeout", migrate.DefaultTimeout, "")
		fs.BoolVar(&a.verify, "verify", false, "")
		fs.BoolVar(&a.asJSON, "json", false, "")
		fs.BoolVar(&a.asCSV, "csv", false, "")
	})
	if err != nil {
		return err
	}
	if err := a.check(rest); err != nil {
		return err
	}
	acctData, err := os.ReadFile(a.accounts)
	if err != nil {
		return fmt.Errorf("--accounts: %w", err)
	}
	cfg, err := loadConfig(a.c)
	if err != nil {
		return err
	}
	opts := server.ImportOptions{Concurrency: a.concurrency}
	switch {
	case a.fromMbox != "":
		if err := a.mboxSource(&opts, acctData); err != nil {
			return err
		}
	case a.fromMaildir != "":
		f, err := a.parseUIDLFormat()
		if err != nil {
			return err
		}
		srv, err := migrate.ParseMaildirServer(a.maildirServer)
		if err != nil {
			return usageError{"import", "--maildir-server " + err.Error()}
		}
		opts.Maildir = &migrate.MaildirSource{Server: srv, UIDLFormat: f}
		if opts.MaildirAccounts, err = migrate.ReadMaildirAccounts(strings.NewReader(string(acctData))); err != nil {
			return fmt.Errorf("--accounts %s: %w", a.accounts, err)
		}
		for i, m := range opts.MaildirAccounts {
			if !filepath.IsAbs(m.Path) {
				opts.MaildirAccounts[i].Path = filepath.Join(a.fromMaildir, m.Path)
			}
		}
	case a.fromIMAP != "":
		conn, err := a.serverSource("--from-imap", a.fromIMAP)
		if err != nil {
			return err
		}
		f, err := a.parseUIDLFormat()
		if err != nil {
			return err
		}
		opts.IMAP = &migrate.IMAPSource{Addr: conn.Addr, Security: conn.Security, TLS: conn.TLS, Timeout: conn.Timeout,
			UIDLFormat: f, AcceptNewUIDLs: a.acceptNewUIDLs}
		if opts.POP3Accounts, err = migrate.ReadPOP3Accounts(strings.NewReader(string(acctData))); err != nil {
			return fmt.Errorf("--accounts %s: %w", a.accounts, err)
		}
	default:
		src, err := a.serverSource("--from-pop3", a.fromPOP3)
		if err != nil {
			return err
		}
		opts.POP3 = &src
		if opts.POP3Accounts, err = migrate.ReadPOP3Accounts(strings.NewReader(string(acctData))); err != nil {
			return fmt.Errorf("--accounts %s: %w", a.accounts, err)
		}
	}
	format := a.format()
	if a.verify {
		var rep migrate.VerifyReport
		if opts.Maildir != nil {
			rep, err = server.VerifyMaildirImport(ctx, cfg, *opts.Maildir, opts.MaildirAccounts, a.concurrency)
		} else {
			rep, err = server.VerifyImport(ctx, cfg, *opts.POP3, opts.POP3Accounts, a.concurrency)
		}
		if err != nil {
			return err
		}
		return writeReport(stdout, format, rep, printVerifyReport, verifyCSV)
	}
	rep, err := server.Import(ctx, cfg, opts)
	if err != nil {
		return err
	}
	return writeReport(stdout, format, rep, printImportReport, importCSV)
}

// check refuses contradicting or missing flags.
func (a *importArgs) check(rest []string) error {
	switch {
	case len(rest) > 0:
		return usageError{"import", fmt.Sprintf("unexpected argument %q", rest[0])}
	case a.fromPOP3 == "" && a.fromIMAP == "" && a.fromMaildir == "" && a.fromMbox == "":
		return usageError{"import", "give the source: --from-pop3 HOST:PORT, --from-imap HOST:PORT, --from-maildir DIR or --from-mbox FILE|DIR"}
	case countSet(a.fromPOP3, a.fromIMAP, a.fromMaildir, a.fromMbox) > 1:
		return usageError{"import", "give one source: --from-pop3, --from-imap, --from-maildir or --from-mbox"}
	case a.verify && a.fromPOP3 == "" && a.fromMaildir == "":
		return usageError{"import", "--verify compares the UIDLs POP3 clients saw: give --from-pop3 HOST:PORT (the old server) or --from-maildir DIR (its Maildirs)"}
	case a.asJSON && a.asCSV:
		return usageError{"import", "give one of --json and --csv"}
	case a.accounts == "":
		return usageError{"import", "give the accounts: --accounts FILE"}
	case a.concurrency < 1 || a.concurrency > 256:
		return usageError{"import", fmt.Sprintf("--concurrency %d: want 1 to 256", a.concurrency)}
	case a.timeout <= 0:
		return usageError{"import", "--timeout: want a positive duration such as 30s"}
	}
	return nil
}

// mboxSource sets the mbox source and its accounts from --from-mbox,
// --mbox-format, --accept-new-uidls and the accounts file's data.
func (a *importArgs) mboxSource(opts *server.ImportOptions, acctData []byte) error {
	format, err := migrate.ParseMboxFormat(a.mboxFormat)
	if err != nil {
		return usageError{"import", "--mbox-format " + err.Error()}
	}
	opts.Mbox = &migrate.MboxSource{Format: format, AcceptNewUIDLs: a.acceptNewUIDLs}
	if a.uidlFormat != "" {
		f, err := a.parseUIDLFormat()
		if err != nil {
			return err
		}
		for _, v := range []byte{'m', 'f', 'g'} {
			if f.Needs(v) {
				return usageError{"import", fmt.Sprintf("--uidl-format %q with --from-mbox: only %%u and %%v can be computed from an mbox (its X-UID and X-IMAPbase headers), not %%%c", a.uidlFormat, v)}
			}
		}
		opts.Mbox.UIDLFormat = &f
	}
	if opts.MboxAccounts, err = migrate.ReadMboxAccounts(strings.NewReader(string(acctData))); err != nil {
		return fmt.Errorf("--accounts %s: %w", a.accounts, err)
	}
	fi, err := os.Stat(a.fromMbox)
	if err != nil {
		return fmt.Errorf("--from-mbox: %w", err)
	}
	if !fi.IsDir() {
		if len(opts.MboxAccounts) != 1 || opts.MboxAccounts[0].Path != "-" {
			return usageError{"import", "--from-mbox FILE is the mbox of one account: list it alone, with the path \"-\" (address,-); for more accounts give a directory"}
		}
		opts.MboxAccounts[0].Path = a.fromMbox
		return nil
	}
	for i, m := range opts.MboxAccounts {
		if !filepath.IsAbs(m.Path) {
			opts.MboxAccounts[i].Path = filepath.Join(a.fromMbox, m.Path)
		}
	}
	return nil
}

// parseUIDLFormat parses --uidl-format, Dovecot's default when not given.
func (a *importArgs) parseUIDLFormat() (migrate.UIDLFormat, error) {
	v := a.uidlFormat
	if v == "" {
		v = migrate.DefaultUIDLFormat
	}
	f, err := migrate.ParseUIDLFormat(v)
	if err != nil {
		return f, usageError{"import", "--uidl-format: " + err.Error()}
	}
	return f, nil
}

// countSet counts the non-empty values.
func countSet(vals ...string) int {
	n := 0
	for _, v := range vals {
		if v != "" {
			n++
		}
	}
	return n
}

// format is the report format of --json and --csv.
func (a *importArgs) format() reportFormat {
	switch {
	case a.asJSON:
		return formatJSON
	case a.asCSV:
		return formatCSV
	}
	return formatText
}

// serverSource builds the connection to the old server addr (given as
// flag) from --security, --ca and --force-plain.
func (a *importArgs) serverSource(flag, addr string) (migrate.POP3Source, error) {
	src := migrate.POP3Source{Addr: addr, Security: migrate.Security(a.security), Timeout: a.timeout}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return src, usageError{"import", fmt.Sprintf("%s %q: want HOST:PORT", flag, addr)}
	}
	switch src.Security {
	case migrate.SecurityTLS, migrate.SecuritySTARTTLS:
	case migrate.SecurityNone:
		ip := net.ParseIP(host)
		if !a.forcePlain && host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return src, usageError{"import", fmt.Sprintf("--security none sends the old server's passwords in plain text; %s is not a loopback address (add --force-plain if the network is private)", host)}
		}
	default:
		return src, usageError{"import", fmt.Sprintf("--security %q: want tls, starttls or none", a.security)}
	}
	if a.ca != "" {
		pem, err := os.ReadFile(a.ca)
		if err != nil {
			return src, fmt.Errorf("--ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return src, fmt.Errorf("--ca %s: no PEM certificate in it", a.ca)
		}
		src.TLS = &tls.Config{RootCAs: pool}
	}
	return src, nil
}

// reportFormat is how a report is printed.
type reportFormat int

const (
	formatText reportFormat = iota
	formatJSON
	formatCSV
)

// writeReport prints rep as text, JSON or CSV (asCSV gives the header
// line and the rows); the error is exit status 1 when the report is not
// OK.
func writeReport[R interface{ OK() bool }](w io.Writer, format reportFormat, rep R, text func(io.Writer, R), asCSV func(R) [][]string) error {
	switch format {
	case formatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	case formatCSV:
		// A UIDL or a reason quoting the old server can start with "="
		// or "+": csvsafe keeps a spreadsheet from running it.
		if err := csvsafe.WriteAll(w, asCSV(rep)); err != nil {
			return err
		}
	default:
		text(w, rep)
	}
	if !rep.OK() {
		return exitStatus(exitError)
	}
	return nil
}

func printImportReport(w io.Writer, rep migrate.Report) {
	for _, a := range rep.Accounts {
		fmt.Fprintf(w, "%s: found %d, imported %d, skipped %d (already here), refused %d, %d bytes\n",
			a.Address, a.Found, a.Imported, a.Skipped, len(a.Refused), a.Bytes)
		for _, r := range a.Refused {
			uidl := ""
			if r.UIDL != "" {
				uidl = fmt.Sprintf(" (UIDL %q)", r.UIDL)
			}
			fmt.Fprintf(w, "  refused %s%s: %s\n", r.Message, uidl, r.Reason)
		}
		for _, n := range a.Notes {
			fmt.Fprintf(w, "  note: %s\n", n)
		}
		if a.Error != "" {
			fmt.Fprintf(w, "  failed: %s\n", a.Error)
		}
	}
	t := rep.Totals
	fmt.Fprintf(w, "total: %d accounts (%d failed), found %d, imported %d, skipped %d, refused %d, %d bytes\n",
		t.Accounts, t.Failed, t.Found, t.Imported, t.Skipped, t.Refused, t.Bytes)
}

func printVerifyReport(w io.Writer, rep migrate.VerifyReport) {
	for _, v := range rep.Checked {
		if v.Error != "" {
			fmt.Fprintf(w, "%s: not compared: %s\n", v.Address, v.Error)
			continue
		}
		fmt.Fprintf(w, "%s: %d on the old server, %d here, %d would be downloaded again\n", v.Address, v.Old, v.Ours, v.Missing)
		if len(v.MissingUIDLs) > 0 {
			more := ""
			if v.Missing > len(v.MissingUIDLs) {
				more = fmt.Sprintf(" and %d more", v.Missing-len(v.MissingUIDLs))
			}
			fmt.Fprintf(w, "  missing UIDLs: %s%s\n", strings.Join(v.MissingUIDLs, " "), more)
		}
	}
	fmt.Fprintf(w, "%d accounts, %d messages: %d would be downloaded again", rep.Accounts, rep.Messages, rep.Redownload)
	if len(rep.Differ) > 0 {
		fmt.Fprintf(w, "; %d accounts differ: %s", len(rep.Differ), strings.Join(rep.Differ, ", "))
	}
	fmt.Fprintln(w)
}

// importCSV is an import report as CSV: a header line, then one line an
// account (refusals and notes joined by "; ").
func importCSV(rep migrate.Report) [][]string {
	rows := [][]string{{"address", "found", "imported", "skipped", "refused", "bytes", "refusals", "notes", "error"}}
	for _, a := range rep.Accounts {
		var refusals []string
		for _, r := range a.Refused {
			s := r.Message + ": " + r.Reason
			if r.UIDL != "" {
				s = fmt.Sprintf("%s (UIDL %q): %s", r.Message, r.UIDL, r.Reason)
			}
			refusals = append(refusals, s)
		}
		rows = append(rows, []string{a.Address, strconv.Itoa(a.Found), strconv.Itoa(a.Imported), strconv.Itoa(a.Skipped),
			strconv.Itoa(len(a.Refused)), strconv.FormatInt(a.Bytes, 10), strings.Join(refusals, "; "), strings.Join(a.Notes, "; "), a.Error})
	}
	return rows
}

// verifyCSV is a cutover report as CSV: a header line, then one line an
// account; missing_uidls lists the first of them, separated by spaces.
func verifyCSV(rep migrate.VerifyReport) [][]string {
	rows := [][]string{{"address", "old", "ours", "would_download_again", "missing_uidls", "error"}}
	for _, v := range rep.Checked {
		rows = append(rows, []string{v.Address, strconv.Itoa(v.Old), strconv.Itoa(v.Ours), strconv.Itoa(v.Missing),
			strings.Join(v.MissingUIDLs, " "), v.Error})
	}
	return rows
}
