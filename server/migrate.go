package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"mailsetup/server/accounts"
	"mailsetup/server/mailstore"
	"mailsetup/server/migrate"
)

// Taking mailboxes over from an old server (`mailsetup import`): the
// import itself is package migrate; this joins it to a config's data.

// ImportOptions say what to import: from a POP3 server (POP3 and
// POP3Accounts), from an IMAP server (IMAP and POP3Accounts: the same
// logins), from Maildirs (Maildir and MaildirAccounts) or from mbox files
// (Mbox and MboxAccounts).
type ImportOptions struct {
	POP3            *migrate.POP3Source
	IMAP            *migrate.IMAPSource
	POP3Accounts    []migrate.POP3Account
	Maildir         *migrate.MaildirSource
	MaildirAccounts []migrate.MaildirAccount
	Mbox            *migrate.MboxSource
	MboxAccounts    []migrate.MboxAccount
	Concurrency     int
	Logger          *slog.Logger
}

// Import imports mail into the data of cfg. Like Expire it takes the data
// directory's lock, so it refuses to run while `mailsetup serve` owns the
// mail storage. The report says per account what was imported and
// refused; the error is only for an import that could not start.
func Import(ctx context.Context, cfg *Config, opts ImportOptions) (migrate.Report, error) {
	unlock, err := lockData(cfg)
	if errors.Is(err, errLocked) {
		return migrate.Report{}, fmt.Errorf("%w: a running `mailsetup serve` owns this mail storage; stop it for the import (`mailsetup import --verify` runs beside it)", err)
	}
	if err != nil {
		return migrate.Report{}, err
	}
	defer unlock()
	accts, err := accounts.Open(AccountsPath(cfg))
	if err != nil {
		return migrate.Report{}, err
	}
	store, err := mailstore.Open(mailRoot(cfg), mailstore.Options{Logger: opts.Logger, Hostname: cfg.Hostname})
	if err != nil {
		return migrate.Report{}, fmt.Errorf("mail storage: %w", err)
	}
	t := migrate.Target{Mail: store, Accounts: accts, MaxMessageBytes: cfg.Mail.MaxMessageBytes}
	mo := migrate.Options{Concurrency: opts.Concurrency}
	switch {
	case opts.POP3 != nil:
		return migrate.ImportPOP3(ctx, t, *opts.POP3, opts.POP3Accounts, mo), nil
	case opts.IMAP != nil:
		return migrate.ImportIMAP(ctx, t, *opts.IMAP, opts.POP3Accounts, mo), nil
	case opts.Maildir != nil:
		return migrate.ImportMaildir(ctx, t, *opts.Maildir, opts.MaildirAccounts, mo), nil
	case opts.Mbox != nil:
		return migrate.ImportMbox(ctx, t, *opts.Mbox, opts.MboxAccounts, mo), nil
	}
	return migrate.Report{}, errors.New("import: no source")
}

// VerifyImport compares the UIDLs of the POP3 server src with those of
// the data of cfg for each account. It changes nothing and takes no lock:
// it runs before the cutover and beside the running service after it.
func VerifyImport(ctx context.Context, cfg *Config, src migrate.POP3Source, list []migrate.POP3Account, concurrency int) (migrate.VerifyReport, error) {
	accts, err := accounts.Open(AccountsPath(cfg))
	if err != nil {
		return migrate.VerifyReport{}, err
	}
	return migrate.VerifyPOP3(ctx, mailRoot(cfg), accts, src, list, migrate.Options{Concurrency: concurrency}), nil
}

// VerifyMaildirImport compares the UIDLs the old server served from each
// account's Maildir on disk (the rules of the Maildir import) with those
// of the data of cfg. Like VerifyImport it changes nothing and takes no
// lock.
func VerifyMaildirImport(ctx context.Context, cfg *Config, src migrate.MaildirSource, list []migrate.MaildirAccount, concurrency int) (migrate.VerifyReport, error) {
	accts, err := accounts.Open(AccountsPath(cfg))
	if err != nil {
		return migrate.VerifyReport{}, err
	}
	return migrate.VerifyMaildir(ctx, mailRoot(cfg), accts, src, list, migrate.Options{Concurrency: concurrency}), nil
}
