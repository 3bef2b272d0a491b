package finding

import "slices"

// Entry describes one kind of finding. Fix and Staff may contain
// placeholders in braces ({address}, {field}, {value}, {expected},
// {days}, {port}, {speaks}) that a finding fills in (New).
type Entry struct {
	ID       string
	Severity Severity
	// Fault: the customer's settings or the server. A server fault's
	// Fix tells the customer that nothing on their side is wrong; its
	// Staff says what to change on the server.
	Fault Fault
	Title string
	Fix   string
	Staff string
}

// Catalog is every finding the probe and the server's observations can
// report, by stable id, in the order reports list the findings of one
// severity. The ids are a public interface (JSON, monitoring, the web
// pages, the README's findings table): never rename one; add new ones.
var Catalog = []Entry{
	{"settings.ok", OK, FaultSettings, "The settings match",
		"Nothing to change.",
		"reported settings match the policy"},
	{"username.not-full-address", Critical, FaultSettings, "The username is not the full email address",
		`In {field}, type your full email address {address} instead of "{value}".`,
		`username "{value}" is not the full address {address}; the server refuses it`},
	{"smtp.auth-disabled", Critical, FaultSettings, "Outgoing server authentication is turned off",
		`Turn on "My outgoing server (SMTP) requires authentication" (Thunderbird: Outgoing Server > Authentication method "Normal password") and use the same username {address} and password as for incoming mail.`,
		"client sends without AUTH; submission answers 530 5.7.0"},
	{"smtp.forged-sender", Critical, FaultSettings, "The sender address is not this account's",
		`Set the account's email address (Thunderbird: "Email Address"; Outlook: "Email address") to {address}; the server only sends mail from the address you log in with or its aliases.`,
		"submission refused sender {value} for account {address} (553 5.7.1)"},
	{"smtp.send-limit", Warning, FaultSettings, "The account reached its sending limit",
		"Your account sent mail to more recipients within an hour than it may. Send the rest later. If you did not send that much mail, change your password now: someone else may be using your account.",
		"submission refused recipients of {address} over the sending limit (451 4.7.1, queue.send_limit_per_hour): if the customer did not send them, the password is stolen: reset it"},
	{"smtp.open-relay", Critical, FaultServer, "The submission server accepts mail without a login",
		"Nothing on your side is wrong: the mail server must refuse mail from clients that have not logged in. Call the mail administrator.",
		"MAIL FROM and RCPT TO without AUTH were accepted on {value}: open submission relay; make submission require AUTH (Postfix: smtpd_relay_restrictions = permit_sasl_authenticated, reject)"},
	{"smtp.auth-before-tls", Warning, FaultServer, "The server offers passwords before encryption",
		"Nothing on your side is wrong; keep the connection security at {expected}.",
		"AUTH advertised before STARTTLS on {value}: passwords could travel in clear text; offer AUTH only after TLS (Postfix: smtpd_tls_auth_only = yes)"},
	{"imap.auth-before-tls", Warning, FaultServer, "The IMAP server offers passwords before encryption",
		"Nothing on your side is wrong; keep the connection security at {expected}.",
		"IMAP on {value} advertises AUTH=PLAIN without LOGINDISABLED before STARTTLS: passwords could travel in clear text; refuse logins before TLS (Dovecot: disable_plaintext_auth = yes)"},
	{"pop3.auth-before-tls", Warning, FaultServer, "The POP3 server offers passwords before encryption",
		"Nothing on your side is wrong; keep the connection security at {expected}.",
		"POP3 on {value} offers USER or SASL PLAIN before STLS: passwords could travel in clear text; refuse logins before TLS (Dovecot: disable_plaintext_auth = yes)"},
	{"port.security-mismatch", Critical, FaultSettings, "Port and connection security do not match",
		`Set {field} to {expected}: port {port} needs {expected}, not "{value}". (465, 993 and 995 need SSL/TLS; 587, 143 and 110 need STARTTLS.)`,
		"the customer reports {value} on port {port}; the port speaks {expected}"},
	{"security.none", Critical, FaultSettings, "The connection is not encrypted",
		`Set {field} to {expected}; "None" sends your password unencrypted and the server refuses it.`,
		"the customer reports no TLS for {value}"},
	{"server.wrong-host", Critical, FaultSettings, "Wrong server name",
		`Change {field} from "{value}" to {expected}.`,
		`the customer reports host "{value}", the policy has {expected}`},
	{"server.wrong-port", Critical, FaultSettings, "Wrong port",
		`Change {field} from {value} to {expected}.`,
		"the customer reports port {value}, the policy has {expected}"},
	{"server.protocol-not-offered", Critical, FaultSettings, "This kind of incoming server is not offered",
		`Set up the account again with {expected}: "{value}" is not offered for {address}.`,
		"the customer reports {value}, which the policy does not offer"},
	{"server.unreachable", Critical, FaultServer, "The server cannot be reached",
		"If this persists for more than a few minutes, call us: the server {value} is not answering. Nothing on your side is wrong.",
		"could not connect to {value}: check that the service runs and listens there and that no firewall drops it"},
	{"server.starttls-missing", Critical, FaultServer, "The server offers no encryption on this port",
		"Nothing on your side is wrong: the server does not offer STARTTLS on {value}. Keep the connection security at STARTTLS (do not turn encryption off) and call us.",
		"{value} does not advertise STARTTLS (POP3: STLS in CAPA): enable TLS on that listener (Dovecot: ssl = yes with a certificate)"},
	{"server.tls-mode-mismatch", Critical, FaultServer, "The server's port speaks the other connection security than published",
		"Nothing on your side is wrong: the server's port {port} speaks {speaks}, but the published settings say {expected}. Keep the settings you were given and call us.",
		"{value} speaks {speaks}, the policy says {expected}: change the port's mode (Dovecot: ssl = yes on an inet_listener means SSL/TLS; Postfix: smtpd_tls_wrappermode) or publish {speaks} for this port"},
	{"server.temporary-failure", Warning, FaultServer, "The server reported a temporary problem",
		"Nothing on your side is wrong: the server reported a temporary problem. Try again in a few minutes; if it persists, call us.",
		"server answered with a temporary failure: {value}; see the server's log"},
	{"login.failed", Critical, FaultSettings, "The password or username was refused",
		"Check the password (type it again in the client's password field; mind caps lock) and use {address} as the username. If you changed your password recently, update it on every device that checks this mailbox.",
		"login with the full address was refused: {value}"},
	{"server.username-form", Critical, FaultServer, "The server accepts only the bare local part as username",
		`Nothing on your side is wrong: the server should accept your full email address {address} as the username, but it accepts only "{value}". Until we fix it, type "{value}" as the username for incoming and outgoing mail; change it back to {address} when we tell you.`,
		`{expected} refuses the full address {address} with the right password and accepts only "{value}": make the server accept the full address (Dovecot: users in the passdb as user@domain, or auth_username_format = %n)`},
	{"login.throttled", Warning, FaultSettings, "Too many failed logins: the account is blocked for a while",
		"Wait a few minutes, then correct the password on every device that checks this mailbox (phone, tablet, old computer); one old device with a wrong password keeps blocking the account.",
		"server throttles logins: {value}"},
	{"login.local-part-accepted", Info, FaultServer, "The server also accepts the bare local part as username",
		"Nothing on your side is wrong; {address} is the username to use.",
		"server accepted the bare local part as username on {value}; harmless, {address} works too"},
	{"pop3.leave-forever", Critical, FaultSettings, "Mail is left on the server forever",
		`Keep "Leave a copy of messages on the server" only together with "Remove from server after {expected} days" (Thunderbird: "For at most {expected} days"); tick that box and set {expected}.`,
		"POP3 leave-on-server without delete-after: {value}"},
	{"pop3.delete-after-too-long", Warning, FaultSettings, "Mail stays on the server too long",
		`Change "Remove from server after" (Thunderbird: "For at most ... days") from {value} to {expected} days.`,
		"the customer reports POP3 remove-after {value} days; the policy: {expected} days"},
	{"pop3.leave-against-policy", Warning, FaultSettings, "The client leaves mail on the server",
		`Untick "Leave a copy of messages on the server": this provider expects POP3 clients to download and remove mail (or use IMAP instead).`,
		"POP3 leave-on-server reported, policy says download and delete"},
	{"pop3.uidl-unstable", Critical, FaultServer, "The server changes the IDs of messages (UIDLs)",
		"Nothing on your side is wrong: the server gives messages new IDs, so every POP3 client that keeps mail on the server will download everything again. Call us; until it is fixed, expect duplicates.",
		"POP3 on {value} listed messages still present under other UIDLs in a second session: every POP3 client that keeps mail on the server will download everything again; keep UIDLs stable (Dovecot: a fixed pop3_uidl_format, keep the uidlist/indexes; after a migration, the old UIDLs)"},
	{"pop3.uidl-changed", Critical, FaultServer, "The server changed the IDs of messages (UIDLs)",
		"Nothing on your side is wrong: the server gave your messages new IDs, so your program downloads everything again. Call us; until it is fixed, expect duplicates.",
		"the mail server's log shows the POP3 UIDLs of {address} changed between two sessions: {value}; every POP3 client that keeps mail on the server downloads everything again: restore the old UIDLs (Dovecot: the former pop3_uidl_format, the dovecot-uidlist and indexes)"},
	{"pop3.redownload", Warning, FaultSettings, "The same messages are downloaded again and again",
		"Let only one program download this mailbox with POP3 and use IMAP on every other device (phone, tablet, second computer). If only one program uses POP3, remove the account from it and add it again: it has lost track of what it already downloaded.",
		"POP3 client re-downloads messages it already retrieved: {value}"},
	{"pop3.in-use", Warning, FaultSettings, "Another program is downloading this mailbox right now",
		"Another device or program is checking this mailbox at the same moment. If you get every message twice, let only one program download with POP3, or use IMAP.",
		"POP3 [IN-USE]: {value}"},
	{"pop3.login-delay", Info, FaultSettings, "The server limits how often POP3 may log in",
		"Set the client to check for new mail no more often than every {expected}.",
		"POP3 LOGIN-DELAY: {value}"},
	{"tls.name-mismatch", Critical, FaultServer, "The certificate does not match the server name",
		"Nothing on your side is wrong: the server's certificate does not name {expected}. Do not accept the certificate warning and do not turn off SSL; call us.",
		"certificate of {value} does not name {expected}: install a certificate that names it"},
	{"tls.untrusted", Critical, FaultServer, "The certificate is not trusted",
		"Nothing on your side is wrong; do not accept the certificate warning. Call us.",
		"certificate chain of {value} does not verify: install a certificate from a trusted CA with its intermediates"},
	{"tls.expired", Critical, FaultServer, "The certificate has expired",
		"Nothing on your side is wrong; do not accept the certificate warning. Call us.",
		"certificate of {value} expired: renew it"},
	{"tls.expires-soon", Warning, FaultServer, "The certificate expires soon",
		"Nothing on your side is wrong.",
		"certificate of {value} expires in {days} days: renew it"},
	{"tls.old-version", Warning, FaultServer, "The server negotiated an old TLS version",
		"Nothing on your side is wrong.",
		"{value} negotiated {expected}: enable TLS 1.2 or later"},
	{"tls.failed", Critical, FaultServer, "Secure connection failed",
		"Nothing on your side is wrong: the secure connection failed on the server's side. Keep the connection security at {expected} (do not turn encryption off) and call us.",
		"TLS with {value} failed: fix the server's TLS there (certificate, key, STARTTLS)"},
	{"dns.srv-missing", Warning, FaultServer, "A DNS SRV record is missing or wrong",
		"Nothing on your side is wrong; automatic setup in some programs (msmtp, mpop, K-9) may pick wrong settings until DNS is fixed.",
		"SRV {value}: want {expected}; publish the records of mailsetup records"},
	{"dns.mx-missing", Warning, FaultServer, "The domain's MX record is missing or wrong",
		"Nothing on your side is wrong.",
		"MX of {value}: want {expected}; fix the MX record"},
	{"dns.dkim-missing", Warning, FaultServer, "The domain's DKIM key is not published, or not the one the server signs with",
		"Nothing on your side is wrong; until the DNS is fixed, mail you send may land in the recipients' spam folders.",
		"TXT {value}: want {expected}; publish the record `mailsetup records` prints"},
	{"dns.spf-missing", Warning, FaultServer, "The domain's SPF record is missing or wrong",
		"Nothing on your side is wrong; until the DNS is fixed, mail you send may land in the recipients' spam folders.",
		"TXT {value}: want {expected}; publish the SPF record `mailsetup records` prints"},
	{"dns.dmarc-missing", Warning, FaultServer, "The domain's DMARC record is missing or wrong",
		"Nothing on your side is wrong; until the DNS is fixed, some receivers may treat mail you send as suspicious.",
		"TXT {value}: want {expected}; publish the DMARC record `mailsetup records` prints"},
	{"dns.mta-sts-missing", Warning, FaultServer, "The domain's MTA-STS record is missing or announces another policy",
		"Nothing on your side is wrong.",
		"TXT {value}: want {expected}; publish the _mta-sts record `mailsetup records` prints (its id changes with the policy)"},
	{"dns.tlsrpt-missing", Info, FaultServer, "The domain's TLS reporting record is missing or wrong",
		"Nothing on your side is wrong.",
		"TXT {value}: want {expected}; publish the _smtp._tls record `mailsetup records` prints to receive TLS failure reports"},
	{"dns.mta-sts-policy", Warning, FaultServer, "The domain's MTA-STS policy cannot be fetched or differs",
		"Nothing on your side is wrong.",
		"{value}: want {expected}; mta-sts.<domain> must reach the web listener over HTTPS with a valid certificate for that name"},
	{"dns.autoconfig-missing", Warning, FaultServer, "The autoconfig/autodiscover DNS name is missing or wrong",
		"Nothing on your side is wrong; automatic setup may fail until DNS is fixed. Enter the settings by hand meanwhile.",
		"{value}: want {expected}; fix the DNS record"},
	{"autoconfig.mismatch", Critical, FaultServer, "The published autoconfig document differs from the policy",
		"Nothing on your side is wrong; enter the settings by hand until we fix it.",
		"live Thunderbird document differs: {value}; serve the document rendered from the policy"},
	{"autoconfig.unreachable", Warning, FaultServer, "The autoconfig document cannot be fetched",
		"Nothing on your side is wrong; enter the settings by hand.",
		"fetching {value} failed: make the autoconfig web host answer"},
	{"domain.record-missing", Warning, FaultServer, "A DNS record the domain should publish is missing",
		"Nothing on your side is wrong; automatic setup may pick wrong settings until DNS is fixed.",
		"{value}: no record; publish {expected} (mailsetup records)"},
	{"domain.record-differs", Warning, FaultServer, "A DNS record differs from what the domain should publish",
		"Nothing on your side is wrong; automatic setup may pick wrong settings until DNS is fixed.",
		"{value}: DNS differs; publish {expected} (mailsetup records) and remove the rest"},
	{"domain.record-error", Warning, FaultServer, "A DNS record could not be looked up",
		"Nothing on your side is wrong.",
		"{value}: the lookup failed; check the domain's name servers"},
	{"domain.host-certificate", Warning, FaultServer, "A setup host's certificate is not valid",
		"Nothing on your side is wrong: mail programs skip this source without saying so. Enter the settings by hand until we fix it.",
		"{value}: the HTTPS certificate is rejected (expired or for other names); clients skip the host silently: give it a valid certificate"},
	{"domain.host-unreachable", Warning, FaultServer, "A setup host does not answer over HTTPS",
		"Nothing on your side is wrong; enter the settings by hand.",
		"{value}: no document over HTTPS; make the host answer or remove its DNS name"},
	{"domain.documents-disagree", Critical, FaultServer, "The setup documents differ from the policy",
		"Nothing on your side is wrong; enter the settings by hand until we fix it.",
		"{value}; serve the documents rendered from the policy (mailsetup serve) on the domain's hosts"},
	{"pacc.digest-mismatch", Warning, FaultServer, "The PACC document does not match its DNS digest",
		"Nothing on your side is wrong; programs that use PACC (Evolution) fall back to other sources.",
		"the PACC document of {value} does not match any _ua-auto-config TXT digest; publish {expected}"},
	{"clients.document-rejected", Warning, FaultServer, "A mail program rejects a setup document",
		"Nothing on your side is wrong; in {value}, enter the settings by hand.",
		"{value} rejects {expected}; serve documents rendered from the policy"},
	{"clients.stale-cname", Critical, FaultServer, "A setup name still points to another provider",
		"Nothing on your side is wrong, but automatic setup would take an old provider's settings: enter the settings by hand until we fix it.",
		"{value} is a CNAME to {expected}, not to this domain's web host: point it at the web host (mailsetup records) or remove it"},
	{"clients.srv-other-host", Warning, FaultServer, "An SRV record names another host",
		"Nothing on your side is wrong; programs that read SRV records (msmtp, mpop) would take the wrong server.",
		"{value} names {expected}, which is not a server of the policy: publish the records of mailsetup records"},
	{"clients.certificate-skipped", Warning, FaultServer, "A mail program skips a source because of its certificate",
		"Nothing on your side is wrong; enter the settings by hand until we fix it.",
		"{value}: the certificate is rejected, so {expected} skip this source and take a later one"},
	{"clients.http-only", Warning, FaultServer, "A setup document is only served without encryption",
		"Nothing on your side is wrong.",
		"{value} answers over HTTP only; clients that still try HTTP take an unprotected document, the others find nothing: serve it over HTTPS"},
	{"clients.conflict", Critical, FaultServer, "A mail program would set up other settings than the policy's",
		"Nothing on your side is wrong, but automatic setup in {value} gives wrong settings; enter these by hand instead: {expected}.",
		"{value} would take its settings from a source that differs from the policy: fix or remove that source"},
	{"clients.no-source", Warning, FaultServer, "A mail program finds no settings automatically",
		"Nothing on your side is wrong; in {value}, enter the settings by hand: {expected}.",
		"{value} finds no source of settings for this domain"},
	{"clients.local-part-username", Info, FaultSettings, "This mail program writes only the part before the @ as the username",
		`In the file {value} printed, change "user {field}" to "user {address}": the server wants the full address.`,
		"{value} writes the bare local part as the username; the customer must type the full address"},
	{"clients.type-by-hand", Info, FaultSettings, "This mail program cannot be set up automatically by us",
		"In {value}, choose IMAP or POP and type the settings by hand: {expected}.",
		"{value} asks Microsoft's cloud, not the provider; it cannot be simulated: the customer types the settings"},
}

// staffReported is the staff line of a finding built from what the
// customer reports (Reported) where the catalog's Staff states what the
// server observed: a reported value is said as reported, never as seen.
var staffReported = map[string]string{
	"username.not-full-address": `the customer reports the username "{value}", not the full address {address}`,
	"smtp.auth-disabled":        `the customer reports "requires authentication" off for outgoing mail; submission needs AUTH`,
	"pop3.leave-forever":        `the customer reports POP3 "leave a copy on the server" without "remove after" days; the policy removes mail after {expected} days`,
	"pop3.leave-against-policy": `the customer reports POP3 "leave a copy on the server"; the policy says download and delete`,
}

// fixForMany is the fix of several findings of one id merged (Merge)
// that differ only in {value}: {value} then lists their values ("a, b
// and c"), so that the sentence is said once. Ids not here keep one
// sentence per distinct fix.
var fixForMany = map[string]string{
	"server.unreachable": "If this persists for more than a few minutes, call us: the servers {value} are not answering. Nothing on your side is wrong.",
}

// staffForMany is fixForMany for the staff line: several findings of one
// id that differ only in {value} say it once, naming every value.
var staffForMany = map[string]string{
	"autoconfig.unreachable": "fetching {value} failed: make the autoconfig web host answer",
}

// Lookup returns the catalog entry of id.
func Lookup(id string) (Entry, bool) {
	i := slices.IndexFunc(Catalog, func(e Entry) bool { return e.ID == id })
	if i < 0 {
		return Entry{}, false
	}
	return Catalog[i], true
}
