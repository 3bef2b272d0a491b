package main

import "strings"

// usage is `mailsetup --help`: every command, one line each.
const usage = `usage:
  mailsetup serve [--config FILE] [--data DIR]      run the service (creates an embedded default in DIR)
  mailsetup init --hostname H --domain D ...        write a production config (ACME, standard ports) (--help)
  mailsetup records [--config FILE] [--data DIR]    print the DNS records to publish (zone-file syntax)
  mailsetup checkconfig [--config FILE] [--data DIR] validate the config, print every problem
  mailsetup user add ADDRESS                        add an account (password from stdin or a prompt)
  mailsetup user passwd ADDRESS                     change an account's password
  mailsetup user remove ADDRESS                     remove an account (its mail stays on disk)
  mailsetup user list                               list the accounts
  mailsetup user alias ADDRESS ALIAS                mail to ALIAS goes to ADDRESS, which may send as ALIAS
  mailsetup user unalias ADDRESS ALIAS              remove an alias
  mailsetup user quota ADDRESS BYTES                set the storage limit (500M, 2G; 0: none)
  mailsetup probe EMAIL [--config FILE] [--json]    check EMAIL's settings and servers (--help)
  mailsetup db migrate [--config FILE]              create or update the schema of database.url
  mailsetup db import|export [--merge|--replace]    move the accounts, observations and audit log into database.url, or back
  mailsetup staff hash NAME                         print a [[staff.user]] entry (password from stdin or a prompt)
  mailsetup staff token NAME                        print a new API token and its [[staff.token]] entry
  mailsetup observe snippet dovecot|postfix [--syslog ADDR]
                                                    print the settings Dovecot or Postfix needs so
                                                    that [[observe.source]] can read their logs
  mailsetup expire [--config FILE] [--data DIR] [--dry-run]
                                                    delete mail retrieved over POP3 more than
                                                    pop3_policy.expire_days ago (--help for more)
  mailsetup queue list|show ID|retry [ID]|remove ID|bounce ID
                                                    the outbound queue (--help)
  mailsetup import --from-pop3 HOST:PORT|--from-maildir DIR --accounts FILE [--verify]
                                                    take mailboxes over from the old server with
                                                    their POP3 UIDLs; --verify compares (--help)
The user and queue commands take --config FILE and --data DIR too. Flags may come
anywhere after the command's name, before, between or after its
arguments; "--" ends them. DIR defaults to ./mailsetup-data.
"mailsetup COMMAND --help" explains one command.
`

// dataFlagsHelp describes the flags that say where the config is.
const dataFlagsHelp = `  --config FILE  the config file (default DIR/mailsetup.toml)
  --data DIR     the data directory (default ./mailsetup-data)
`

// passwordInput says where a command reads a password.
const passwordInput = `The password is the first line of standard input or, on a terminal,
typed twice at a prompt without echo; never a flag.
`

// commandHelp is each command's --help. Its first paragraph, the synopsis,
// also follows a usage error.
var commandHelp = map[string]string{
	"serve": `usage: mailsetup serve [--config FILE] [--data DIR]

Runs the service: autoconfig, the DNS responder, the mail server, the
staff console and the self-help page, on the listeners of the config.
Without --config the config is DIR/mailsetup.toml, and the first start
creates it there (the demo domain example.test on localhost, a
self-signed certificate, the demo account and the staff console's user)
and prints the two passwords once. SIGTERM or SIGINT stops it
gracefully; SIGHUP re-reads the config and applies what it can with
every connection left open (staff, tokens, domains, certificates,
log.level, limits, observe sources; the log names what needs a
restart); SIGUSR2 starts the executable again (a new binary
installed over this one) with the listening sockets, and this process
stops: an upgrade that refuses no connection. Sockets handed over by
systemd (LISTEN_FDS, named by the listen.* keys) are served instead of
binding.

` + dataFlagsHelp,

	"init": `usage: mailsetup init --hostname H --domain D [--domain D ...] [--email E] [--acme-directory URL [--acme-ca-file PEM]] [--web-address IP ...] [--config FILE] [--data DIR]

Writes a production config for a server on the internet: the mail
domains D served from the host H on the standard ports (25, 587, 465,
143, 993, 110, 995, 80, 443) on every address, certificates from an
ACME CA (Let's Encrypt, or --acme-directory; the account's contact is
--email, default postmaster@ the first domain; --acme-ca-file: the
roots of an in-house CA's directory), no demo account and no
self-signed certificate. --web-address publishes the server's IPs as
the autoconfig names' A/AAAA records (default: CNAMEs to H). Then it
prints the DNS records to publish and what to do next. It never
overwrites a config.

  --hostname H   the server's public host name (mail servers and web)
  --domain D     a mail domain; repeat, or separate with commas
` + dataFlagsHelp,

	"records": `usage: mailsetup records [--config FILE] [--data DIR]

Prints, in zone-file syntax, the DNS records to publish for every
configured domain: the SRV records of RFC 6186 and RFC 8314, the
autoconfig and autodiscover names, and MX.

` + dataFlagsHelp,

	"checkconfig": `usage: mailsetup checkconfig [--config FILE] [--data DIR]

Loads the config and checks it as serve would: prints "config OK" and
the number of domains, or every problem, each naming the key and the
bad value (exit status 1).

` + dataFlagsHelp,

	"user": `usage: mailsetup user add|passwd|remove|list|alias|unalias|quota [--config FILE] [--data DIR] ...

  mailsetup user add ADDRESS          add an account
  mailsetup user passwd ADDRESS       change an account's password
  mailsetup user remove ADDRESS       remove an account (its mail stays on disk)
  mailsetup user list                 list the accounts
  mailsetup user alias ADDRESS ALIAS  mail to ALIAS goes to ADDRESS, which may send as ALIAS
  mailsetup user unalias ADDRESS ALIAS
                                      remove an alias
  mailsetup user quota ADDRESS BYTES  set the storage limit (500M, 2G; 0: none)

The flags may come anywhere, before or after the action.
"mailsetup user ACTION --help" explains one action.

` + dataFlagsHelp,

	"user add": `usage: mailsetup user add ADDRESS [--config FILE] [--data DIR]

Adds an account. The domain of ADDRESS must be configured.
` + passwordInput + `
` + dataFlagsHelp,

	"user passwd": `usage: mailsetup user passwd ADDRESS [--config FILE] [--data DIR]

Sets a new password for an account.
` + passwordInput + `
` + dataFlagsHelp,

	"user remove": `usage: mailsetup user remove ADDRESS [--config FILE] [--data DIR]

Removes an account. Its mail stays on disk.

` + dataFlagsHelp,

	"user list": `usage: mailsetup user list [--config FILE] [--data DIR]

Lists the accounts, one a line: the address, when it was created, when
its password last changed, and its aliases.

` + dataFlagsHelp,

	"user alias": `usage: mailsetup user alias ADDRESS ALIAS [--config FILE] [--data DIR]

Mail to ALIAS is delivered to the account ADDRESS, which may also send
as ALIAS. The domain of ALIAS must be configured.

` + dataFlagsHelp,

	"user unalias": `usage: mailsetup user unalias ADDRESS ALIAS [--config FILE] [--data DIR]

Removes the alias ALIAS of the account ADDRESS.

` + dataFlagsHelp,

	"user quota": `usage: mailsetup user quota ADDRESS BYTES [--config FILE] [--data DIR]

Sets the account's storage limit, enforced on delivery, APPEND and
COPY: a number of bytes with an optional K, M or G (500M, 2G); 0 is no
limit.

` + dataFlagsHelp,

	"staff": `usage: mailsetup staff hash|token NAME

  mailsetup staff hash NAME   print a [[staff.user]] entry for the staff console
  mailsetup staff token NAME  print a new API token and its [[staff.token]] entry

Staff members and tokens live in the config file, hashed: these commands
print the lines to add and never edit the file.
`,

	"staff hash": `usage: mailsetup staff hash NAME

Prints a [[staff.user]] entry for the config file: NAME and the argon2id
hash of a password. Add it, then reload serve (kill -HUP its pid) or
restart it.
` + passwordInput,

	"staff token": `usage: mailsetup staff token NAME

Prints a new token for the support API on stderr, shown only now, and
on stdout its [[staff.token]] entry for the config file with the token's
SHA-256. Add it, then reload serve (kill -HUP its pid) or restart it.
`,

	"observe": `usage: mailsetup observe snippet dovecot|postfix [--syslog ADDR]

Prints the settings an ISP adds to an existing Dovecot (conf.d) or
Postfix (main.cf, master.cf) so that their logs carry what an
[[observe.source]] of that kind reads: the login and auth_verbose
lines, the POP3 logout line with the UIDL fingerprint, the IMAP ID, the
TLS lines, the submission services' names. With --syslog ADDR (an
[[observe.source]] syslog address: udp://127.0.0.1:PORT,
tcp://127.0.0.1:PORT, unix:///PATH) also the rsyslog rule that sends a
copy of the program's lines there.
`,

	"db": `usage: mailsetup db migrate|import|export [--merge|--replace] [--config FILE] [--data DIR]

Maintains database.url (the state several replicas share in
PostgreSQL). migrate creates or updates its schema (serve does the same
at start). import moves the data directory's accounts, observations and
staff audit log into the database; export writes the database's back
into the data directory's files. Both print one line per part with what
was copied and what was already there, and copy nothing twice.

They refuse while a serve runs on the same data directory (stop it
first), and refuse a target that already holds different data, naming
an example, before anything is written:

  --merge    add what the target lacks, keep what it holds
  --replace  make the target a copy of the source

` + dataFlagsHelp,
	"probe":  probeHelp,
	"expire": expireHelp,
	"queue":  queueHelp,
	"import": importHelp,
}

// helpText is the --help of cmd ("user add"), or the overall usage.
func helpText(cmd string) string {
	if h, ok := commandHelp[cmd]; ok {
		return h
	}
	return usage
}

// synopsis is what follows a usage error of cmd: the first paragraph of
// its help and where the rest is, or the overall usage.
func synopsis(cmd string) string {
	h, ok := commandHelp[cmd]
	if !ok {
		return usage
	}
	first, _, _ := strings.Cut(h, "\n\n")
	return first + "\n(\"mailsetup " + cmd + " --help\" for more)\n"
}
