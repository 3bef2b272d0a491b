// Package mailstore stores the mail of the embedded mail server: one Maildir
// per mailbox (Maildir++ folders for everything but INBOX, readable by
// Dovecot and other Maildir software) plus a small persistent index per
// mailbox, so that IMAP (RFC 3501, RFC 9051) and POP3 (RFC 1939) questions
// are answered without opening message files.
//
// The package exists because of one incident: a POP server rebuild gave
// every message a new ID and every client downloaded everything again. So
// the POP3 UIDL of a message never changes for the message's lifetime: not
// on restart, not on flag changes, not when the index is deleted and
// rebuilt, not when mail is imported from another server with its old
// UIDLs. The UIDL lives in the message's file name, which only this
// package creates, and is never derived from anything that changes.
//
// # What it owns and what it imports
//
// The package owns everything below the storage root: the Maildirs, the
// index, uidvalidity and subscription files in them, the rules for message
// file names and UIDLs, and the in-memory index of every loaded mailbox.
// Other packages reach the storage only through this package's API: the
// IMAP backend directly, POP3 and SMTP delivery through the mail backend.
//
// It imports the standard library and nothing else: no package of this
// project, and never a protocol package (smtpd, imapd, pop3d, dnsd).
// Protocol rules that the storage serves (UIDL syntax, UID and
// UIDVALIDITY, flags, mailbox names) are implemented here from the RFCs,
// so the storage does not depend on how one server reads them.
//
// # On-disk layout
//
// Domain and local part are lower-cased. Names of folders on disk are the
// mailbox names in modified UTF-7 (RFC 3501 §5.1.3, as Dovecot writes them)
// with the hierarchy separator "/" written as "." (Maildir++):
//
//	<root>/<domain>/<localpart>/Maildir/   INBOX
//	    tmp/ new/ cur/                     Maildir directories (maildir(5))
//	    mailsetup.index                    INBOX index (format below)
//	    mailsetup.uidvalidity              INBOX UIDVALIDITY and UID floor
//	    mailsetup.subscriptions            subscribed mailbox names, one per line
//	    .Sent/ .Drafts/ .Trash/ .Junk/ .Archive/
//	                                       special-use mailboxes (RFC 6154),
//	                                       created with the Maildir
//	    .Projects.2026/                    mailbox "Projects/2026"
//	        tmp/ new/ cur/ maildirfolder mailsetup.index mailsetup.uidvalidity
//	    .Entw&APw-rfe/                     mailbox "Entwürfe"
//
// A mailbox name is at most 200 bytes of UTF-8 and may not contain ".",
// control characters, the LIST wildcards "*" and "%", or empty hierarchy
// levels; "INBOX" in any case is INBOX.
//
// # File names and UIDLs
//
// A message file is named, following the Maildir convention of
// time.unique.host plus ",key=value" fields and the ":2,flags" info suffix:
//
//	<secs>.M<usec>P<pid>Q<n>R<rand>.<host>,S=<size>,U=<uid>,V=<uidvalidity>[,X=<uidl>][:2,<flags>]
//
// where
//
//   - <secs>.M<usec>P<pid>Q<n>R<rand>.<host> is the unique part: delivery
//     time, process id, a per-process counter, 32 random bits and the host
//     name (sanitised as maildir(5) asks: "/" -> \057, ":" -> \072, and
//     "," -> \054; at most 32 bytes, fewer if needed to keep the unique
//     part, which is the UIDL, within 70 characters).
//   - S is the file size (Dovecot reads it); U and V are the message's IMAP
//     UID and the UIDVALIDITY it was assigned under. They let an index
//     rebuild keep UIDs; a U whose V is not the mailbox's UIDVALIDITY (the
//     file was moved here from another folder) is not trusted.
//   - X, present only for imported mail, is the UIDL the message had on the
//     old server, base32 (RFC 4648, no padding).
//   - The info suffix ":2," carries the system flags as Maildir letters in
//     ASCII order: D \Draft, F \Flagged, R \Answered, S \Seen, T \Deleted.
//     Other letters (P, Dovecot's lower-case keyword letters) are kept as
//     found. Keywords live only in the index.
//
// The UIDL of a message is a pure function of its base name (the name up
// to ":"): the decoded X field if there is one; otherwise the unique part
// (everything before the first ",") when it is a valid RFC 1939 §7
// unique-id (1 to 70 characters 0x21..0x7E), which it always is for files
// this package writes; otherwise, for files another agent named, "H"
// followed by 32 hex digits of the SHA-256 of the unique part. Renaming a
// file to change its flags, or moving it between new/ and cur/, changes
// only the info suffix, so it never changes the UIDL. A message copied to
// another mailbox is a new message there and gets a new UIDL.
//
// Files that another agent (Dovecot, an MDA, a person with cp) puts into
// new/ or cur/ are picked up and given the next free UIDs; they are never
// renamed apart from flag changes, because maildir(5) says the unique part
// is the reader's key too.
//
// # Index format
//
// mailsetup.index is a text file of lines, each ending in a space, the
// CRC-32 (IEEE) of the text before that space as 8 lower-case hex digits,
// and "\n". The first line is the header:
//
//	mailsetup-index 1 <uidvalidity> <uidnext> <crc>
//
// The rest is an append-only log of records, one per line:
//
//	A <uid> <size> <date> <retrieved> <base> [flags...] <crc>   message added
//	F <uid> [flags...] <crc>                                    flags replaced
//	R <uid> <retrieved> <crc>                                   first POP3 retrieval
//	X <uid> <crc>                                               message expunged
//
// Dates are Unix seconds (retrieved 0: never). The base is the file name
// up to ":" with bytes outside 0x21..0x7E and "%" written as %XX. Flags are
// system flags (\Seen ...) first, then keywords, sorted. A records appear in
// strictly increasing UID order; UIDNEXT is the larger of the header's and
// the highest added UID + 1.
//
// Every change appends its records with one write and fsyncs the file
// before the operation returns. When the dead records (superseded F and R,
// X and the A they cancel) outnumber the live messages (and are at least
// 64), the index is compacted: the current state is written to
// mailsetup.index.tmp, fsynced, renamed over the index, and the directory
// fsynced. A last line that is incomplete or fails its checksum is a torn
// append from a crash: it is dropped (the operation it belonged to was
// never acknowledged). Any other damage makes the index unreadable.
//
// In memory a message costs 104 bytes of bookkeeping plus its share of the
// index text (about 110 bytes for names this package writes): about 220
// bytes, measured by BenchmarkOpen10k; a mailbox of 10,000 messages holds
// about 2.2 MB while loaded. Loading it (index and one listing of new/ and
// cur/) takes about 16 ms. Store.Evict drops the indexes of idle mailboxes.
//
// mailsetup.uidvalidity holds "<uidvalidity> <floor>\n": the mailbox's
// UIDVALIDITY and a UID below which every UID has been used. It is written
// (atomically) when the mailbox is created, before an expunge removes a
// UID at or above the floor, and before UIDs are given to files another
// agent delivered, so that a rebuild never hands out a UID twice
// (RFC 3501 §2.3.1.1).
//
// # Rebuild
//
// When the index is missing or unreadable it is rebuilt from the Maildir:
// size and internal date from each file (the file's mtime is the internal
// date, as in Dovecot), system flags from the info suffix, the UIDL from
// the name. With mailsetup.uidvalidity present and the U fields of files
// with a matching V unique, those UIDs and the UIDVALIDITY are kept and the
// other files get new UIDs above both the highest kept UID and the floor.
// Otherwise (the file is lost or the UIDs clash) a new, larger UIDVALIDITY
// is chosen, the messages are numbered from 1 in their old order, and the
// U and V fields of this package's files are rewritten so the next rebuild
// keeps the new numbering. Keywords and the POP3 retrieval times live only
// in the index and are lost by a rebuild (a lost retrieval time restarts
// the expiry clock, so no message expires early).
//
// When the index exists, new/ and cur/ are read once when the mailbox is
// loaded and again whenever their modification times change (and at least
// once a minute while the mailbox is used), to pick up files delivered,
// re-flagged, moved or removed by another agent.
//
// # Guarantees
//
// Deliver, Append and CopyTo return only when the message is durable: the
// file is written in tmp/ and fsynced, renamed into new/ or cur/ under the
// mailbox lock with its UID in the name, the directory is fsynced, and the
// index record is appended and fsynced. A crash at any moment leaves either
// nothing visible (a file in tmp/, removed once older than 36 hours as
// maildir(5) suggests) or a complete message in new/ or cur/, which the
// next load finds in the index or picks up with the UID from its name. An
// expunge removes files before it writes the index, so an expunged message
// never comes back. Every fsync can be turned off with Options.NoSync, for
// tests and benchmarks only.
//
// # Batched delivery
//
// An import stores many messages into one mailbox; a Batch (User.NewBatch)
// gives each the same guarantee as Deliver but pays for the directory and
// index fsyncs once per batch of up to BatchLimits.Messages messages or
// BatchLimits.Bytes bytes (default 128 and 32 MiB). Batch.Add writes a
// message to tmp/ (its file fsynced later, its writeback started at once
// so that the batch's files reach the disk together); Batch.Commit
// fsyncs every file, then under the mailbox lock gives each its UID in
// the order added, renames it into new/ or cur/, fsyncs those directories
// once, and appends all the index records with one write and one fsync.
// A message counts as delivered only once Commit returned it. A crash cut
// in a batch leaves: files in tmp/ only (nothing visible; removed once
// 36 hours old, by their ctime, since their mtime is the internal date);
// some or all files renamed without index records (each a complete,
// fsynced message: the next load picks them up with the UIDs in their
// names, ours first in UID order); or a torn last index line (dropped, the
// files then picked up). An importer that skips the UIDLs already present
// and runs again ends with each message exactly once. Deliver, used for
// SMTP and LMTP, is unchanged.
//
// All operations are safe for concurrent use by any number of goroutines:
// every Mailbox value for one directory shares one lock and one in-memory
// index, and readers get snapshots. One process owns a storage root; other
// processes may only act as a Maildir agent would (deliver into new/, move
// and re-flag files, delete files).
//
// # Files
//
// The public API, by the object it acts on:
//
//	store.go               Store, Options, Open, Evict; the registry of mailbox states
//	errors.go              the sentinel errors and what a caller answers for each
//	user.go                User: a user's storage by address, HasUser, Usage
//	user_mailboxes.go      LIST, CREATE, DELETE, RENAME of a user's mailboxes
//	user_subscriptions.go  subscriptions (mailsetup.subscriptions)
//	mailbox.go             Mailbox and Message: snapshots, UIDVALIDITY, UIDNEXT, Open, Changed
//	deliver.go             Deliver and Append: tmp/, then a UID and new/ or cur/ under the lock
//	batch.go               Batch: many deliveries, one directory and index fsync per batch (imports)
//	mailbox_flags.go       StoreFlags: flag changes, renames for the info suffix
//	mailbox_expunge.go     Expunge: files first, then the index
//	mailbox_copy.go        CopyTo: link or copy into the destination, then place there
//	mailbox_retrieved.go   MarkRetrieved: first POP3 retrieval times, for expiry
//
// Names and formats:
//
//	mailboxname.go         mailbox names: validation, canonical form, folder names on disk
//	mutf7.go               modified UTF-7 (RFC 3501 §5.1.3) for folder names
//	flags.go               system flags, keywords, the STORE operations
//	filename.go            message file names: unique part, S/U/V/X fields, info suffix, paths
//	uidl.go                UIDLs: validity, the UIDL of a base name, given UIDLs
//	index.go               the index file format: records, encoding, parsing (FuzzIndex)
//	crlf.go                CRLF line endings: while delivering, and for other agents' files
//
// One mailbox's state, behind the API:
//
//	state.go               mbox: lock, freshness, unloading, the records' totals, Changed
//	uids.go                UID assignment: UIDVALIDITY, UID space, mailsetup.uidvalidity floor
//	index_write.go         appending records to the index, fsync, compaction
//	load.go                loading: index, torn tail, uidvalidity file, first scan
//	scan.go                other agents' changes in new/ and cur/; relocate and retry a file
//	rebuild.go             rebuilding a missing or damaged index from the Maildir
//	maildir.go             Maildir directories: creating them, leftovers, stale tmp/ files
//	durable.go             fsync, atomic file replacement, directory listing
//	durable_linux.go       early writeback (sync_file_range) and ctime; durable_other.go elsewhere
package mailstore
