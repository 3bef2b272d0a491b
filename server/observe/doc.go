// Package observe is the observations store: it consumes the mail
// server's events (events.Event, one at a time from the event bus) and
// keeps, per account, what the server saw from that account's clients
// during the retention period (default 30 days): successful logins,
// failed logins and the username typed, refused submissions, POP3
// session behaviour, deliveries and the mailbox size. Support staff look
// an account up (Store.Account) and read the observations as findings
// with the same ids and wording as the probe (finding.New).
//
// Imports: the standard library, server/events (what comes in) and
// finding (the catalog); never the probe or the protocol servers.
//
// # What is recorded
//
//   - events.Auth with Result events.ResultOK is a login, grouped by
//     (protocol, remote address); every other Result is a failure,
//     grouped by (protocol, remote address, result, username form,
//     username typed).
//   - events.SubmissionRefused is a refusal, grouped by (protocol, remote
//     address, result, client name), with the latest detail as a sample.
//   - events.POP3Session adds to the POP3 client of its remote address;
//     the maildrop of the latest session is the account's Mailbox.
//   - events.Delivery with Detail "local <account>" (what smtpd emits) is
//     a delivery into that account's mailbox. Event.Account of a delivery
//     is the sender's login (empty on the inbound port), so it only
//     updates the client name of the sender's submission login.
//   - events.ClientID names the client of an existing login group of the
//     same (protocol, remote address); the EHLO name of submission events
//     does the same.
//   - Events without an account are ignored (Stats.Ignored), with one
//     exception: a login refused because the username was the bare local
//     part ("john") or an address at a domain not served here (a typo,
//     "john@exmaple.com") carries no account, since the server cannot
//     tell the domain. Such failures are kept under the local part and
//     shown with every address of that local part (Failure.ByLocalPart);
//     the evidence says the domain is a guess. (The server only passes
//     those whose local part is an account of a served domain.)
//   - Events older than the retention, or more than a day in the future,
//     are ignored.
//
// # Retention and counts
//
// Counts are kept per UTC day, so "today" (the UTC day of Options.Now)
// and "in the last N days" are exact. Retention is rounded up to whole
// UTC days: with 30 days, today and the 29 days before it are kept, and
// an observation disappears, from Account and from the snapshot, once its
// day leaves that window. A group's First is the first event of its
// oldest kept day.
//
// # Findings
//
// Store.Account derives findings, worst first, from the groups whose last
// event is at most 7 days old (older groups stay visible in the raw
// lists but are no longer current):
//
//   - username.not-full-address: failures with result username-form; one
//     finding per username typed and side (incoming or outgoing server),
//     one evidence line per protocol and address.
//   - login.failed: failures with result bad-password whose last failure
//     is more recent than the last successful login of the same protocol
//     from the same address (the password has not been fixed there).
//   - login.throttled: failures with result throttled in the last 24
//     hours.
//   - smtp.auth-disabled: refusals with result auth-required.
//   - smtp.forged-sender: refusals with result forged-sender, one finding
//     per refused sender.
//   - pop3.leave-forever: a POP3 client address whose sessions retrieved
//     mail and never deleted any (at least one session that left all,
//     none that deleted) in the retention period. The expected days come
//     from Options.DeleteAfterDays; without it, 7 (the server's default
//     policy). When the domain's policy does not leave mail on the server
//     (DeleteAfterDays returns 0) the finding is pop3.leave-against-policy
//     instead, as the probe reports it.
//   - pop3.redownload: a POP3 client address that retrieved again
//     messages it had already retrieved.
//   - pop3.uidl-changed: the maildrop's UIDL fingerprint (events of a
//     Dovecot log: UIDLsBefore, UIDLsAfter) changed between two POP3
//     sessions of the account (uidl.go); such a session that retrieved
//     everything again also counts as a re-download.
//
// # Timeline and overview
//
// Account.Timeline adds the account's groups up per UTC day for the last
// TimelineDays (30) days, empty days included: the console's chart of
// "when it started". Store.Overview (overview.go) counts per domain and
// UTC day the accounts whose clients made the incident's mistakes: the
// bare local part as the username (failures kept under the local part,
// counted in each domain where it is an account), sending without
// authentication (refusals auth-required), leaving POP3 mail for ever (a
// client that retrieved and left all that day and had deleted nothing
// since the period began) and re-downloading. It walks the accounts a
// chunk at a time like Save, and returns one page of domains (at most
// MaxOverviewDomains) with the total of all selected domains per day.
//
// # Bounds
//
// Memory is bounded: at most MaxAccounts accounts and MaxGroups groups
// in all (the least recently seen account is dropped first), per account
// at most 32 login groups, 64 failure groups, 32 refusal groups and 16
// POP3 clients (the least recently seen group is dropped first), texts
// from clients (usernames, client names, details) cut to 128 bytes, and
// per group one counter per UTC day of the retention. A group takes at
// most about 800 bytes (30 days of counts, the longest texts), an
// account at every cap about 110 kB; with the defaults (50,000 accounts,
// 400,000 groups) the worst case is about 330 MB, reached only by
// clients active on every one of the 30 days; typical groups take 200 to
// 300 bytes. The snapshot holds the same state, so it is bounded too.
//
// # Snapshot
//
// With Options.Path the state is saved as JSON ({"version": 1, ...,
// "accounts": [...]}, the day counts as flat arrays of numbers) by Save
// and Run: to a temporary file, fsynced, then
// renamed over the snapshot. Saving copies the accounts a few hundred at
// a time, so Record never waits for the disk or for the whole state to be
// encoded. Open refuses a snapshot of another format version.
package observe
