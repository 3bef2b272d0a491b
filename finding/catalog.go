package finding

import "slices"

// Entry describes one kind of finding. Fix and Staff may contain
// placeholders in braces ({address}, {field}, {value}, {expected},
// {days}, {port}) that a finding fills in (New).
type Entry struct {
	ID       string
	Severity Severity
	Title    string
	Fix      string
	Staff    string
}

// Catalog is every finding the probe and the server's observations can
// report, by stable id, in the order reports list the findings of one
// severity. The ids are a public interface (JSON, monitoring, the web
// pages, the README's findings table): never rename one; add new ones.
var Catalog = []Entry{
	{"settings.ok", OK, "The settings match",
		"Nothing to change.",
		"reported settings match the policy"},
	{"username.not-full-address", Critical, "The username is not the full email address",
		`In {field}, type your full email address {address} instead of "{value}".`,
		`username "{value}" is not the full address {address}; the server refuses it`},
	{"smtp.auth-disabled", Critical, "Outgoing server authentication is turned off",
		`Turn on "My outgoing server (SMTP) requires authentication" (Thunderbird: Outgoing Server > Authentication method "Normal password") and use the same username {address} and password as for incoming mail.`,
		"client sends without AUTH; submission answers 530 5.7.0"},
	{"smtp.forged-sender", Critical, "The sender address is not this account's",
		`Set the account's email address (Thunderbird: "Email Address"; Outlook: "Email address") to {address}; the server only sends mail from the address you log in with or its aliases.`,
		"submission refused sender {value} for account {address} (553 5.7.1)"},
	{"smtp.open-relay", Critical, "The submission server accepts mail without a login",
		"Nothing for the customer to change: the mail server must refuse mail from clients that have not logged in. Call the mail administrator.",
		"MAIL FROM and RCPT TO without AUTH were accepted on {value}: open submission relay"},
	{"smtp.auth-before-tls", Warning, "The server offers passwords before encryption",
		"Nothing for the customer to change; keep the connection security at {expected}.",
		"AUTH advertised before STARTTLS on {value}: passwords could travel in clear text"},
	{"port.security-mismatch", Critical, "Port and connection security do not match",
		`Set {field} to {expected}: port {port} needs {expected}, not "{value}". (465, 993 and 995 need SSL/TLS; 587, 143 and 110 need STARTTLS.)`,
		"client uses {value} on port {port}; the port speaks {expected}"},
	{"security.none", Critical, "The connection is not encrypted",
		`Set {field} to {expected}; "None" sends your password unencrypted and the server refuses it.`,
		"client reports no TLS for {value}"},
	{"server.wrong-host", Critical, "Wrong server name",
		`Change {field} from "{value}" to {expected}.`,
		`client uses host "{value}", the policy has {expected}`},
	{"server.wrong-port", Critical, "Wrong port",
		`Change {field} from {value} to {expected}.`,
		"client uses port {value}, the policy has {expected}"},
	{"server.protocol-not-offered", Critical, "This kind of incoming server is not offered",
		`Set up the account again with {expected}: "{value}" is not offered for {address}.`,
		"client uses {value}, which the policy does not offer"},
	{"server.unreachable", Critical, "The server cannot be reached",
		"If this persists for more than a few minutes, call us: the server {value} is not answering.",
		"could not connect to {value}"},
	{"server.temporary-failure", Warning, "The server reported a temporary problem",
		"Try again in a few minutes.",
		"server answered with a temporary failure: {value}"},
	{"login.failed", Critical, "The password or username was refused",
		"Check the password (type it again in the client's password field; mind caps lock) and use {address} as the username. If you changed your password recently, update it on every device that checks this mailbox.",
		"login with the full address was refused: {value}"},
	{"login.throttled", Warning, "Too many failed logins: the account is blocked for a while",
		"Wait a few minutes, then correct the password on every device that checks this mailbox (phone, tablet, old computer); one old device with a wrong password keeps blocking the account.",
		"server throttles logins: {value}"},
	{"login.local-part-accepted", Info, "The server also accepts the bare local part as username",
		"Nothing to change; {address} is the username to use.",
		"server accepted the bare local part as username on {value}"},
	{"pop3.leave-forever", Critical, "Mail is left on the server forever",
		`Keep "Leave a copy of messages on the server" only together with "Remove from server after {expected} days" (Thunderbird: "For at most {expected} days"); tick that box and set {expected}.`,
		"POP3 leave-on-server without delete-after: {value}"},
	{"pop3.delete-after-too-long", Warning, "Mail stays on the server too long",
		`Change "Remove from server after" (Thunderbird: "For at most ... days") from {value} to {expected} days.`,
		"POP3 delete-after {value} days, policy {expected}"},
	{"pop3.leave-against-policy", Warning, "The client leaves mail on the server",
		`Untick "Leave a copy of messages on the server": this provider expects POP3 clients to download and remove mail (or use IMAP instead).`,
		"POP3 leave-on-server reported, policy says download and delete"},
	{"pop3.redownload", Warning, "The same messages are downloaded again and again",
		"Let only one program download this mailbox with POP3 and use IMAP on every other device (phone, tablet, second computer). If only one program uses POP3, remove the account from it and add it again: it has lost track of what it already downloaded.",
		"POP3 client re-downloads messages it already retrieved: {value}"},
	{"pop3.in-use", Warning, "Another program is downloading this mailbox right now",
		"Another device or program is checking this mailbox at the same moment. If you get every message twice, let only one program download with POP3, or use IMAP.",
		"POP3 [IN-USE]: {value}"},
	{"pop3.login-delay", Info, "The server limits how often POP3 may log in",
		"Set the client to check for new mail no more often than every {expected}.",
		"POP3 LOGIN-DELAY: {value}"},
	{"tls.name-mismatch", Critical, "The certificate does not match the server name",
		"Use the server name {expected} exactly as given, so that the certificate matches; do not turn off SSL.",
		"certificate of {value} does not name the host"},
	{"tls.untrusted", Critical, "The certificate is not trusted",
		"Nothing for the customer to change; do not accept the certificate warning. Call us.",
		"certificate chain of {value} does not verify"},
	{"tls.expired", Critical, "The certificate has expired",
		"Nothing for the customer to change; do not accept the certificate warning. Call us.",
		"certificate of {value} expired"},
	{"tls.expires-soon", Warning, "The certificate expires soon",
		"Nothing for the customer to change.",
		"certificate of {value} expires in {days} days: renew it"},
	{"tls.old-version", Warning, "The server negotiated an old TLS version",
		"Nothing for the customer to change.",
		"{value} negotiated {expected}"},
	{"tls.failed", Critical, "Secure connection failed",
		`Set the connection security to {expected}. If it already is, call us.`,
		"TLS with {value} failed"},
	{"dns.srv-missing", Warning, "A DNS SRV record is missing or wrong",
		"Nothing for the customer to change; automatic setup in some programs (msmtp, mpop, K-9) may pick wrong settings until DNS is fixed.",
		"SRV {value}: want {expected}"},
	{"dns.mx-missing", Warning, "The domain's MX record is missing or wrong",
		"Nothing for the customer to change.",
		"MX of {value}: want {expected}"},
	{"dns.autoconfig-missing", Warning, "The autoconfig/autodiscover DNS name is missing or wrong",
		"Nothing for the customer to change; automatic setup may fail until DNS is fixed. Enter the settings by hand meanwhile.",
		"{value}: want {expected}"},
	{"autoconfig.mismatch", Critical, "The published autoconfig document differs from the policy",
		"Nothing for the customer to change; enter the settings by hand until we fix it.",
		"live Thunderbird document differs: {value}"},
	{"autoconfig.unreachable", Warning, "The autoconfig document cannot be fetched",
		"Nothing for the customer to change; enter the settings by hand.",
		"fetching {value} failed"},
}

// fixForMany is the fix of several findings of one id merged (Merge)
// that differ only in {value}: {value} then lists their values ("a, b
// and c"), so that the sentence is said once. Ids not here keep one
// sentence per distinct fix.
var fixForMany = map[string]string{
	"server.unreachable": "If this persists for more than a few minutes, call us: the servers {value} are not answering.",
}

// Lookup returns the catalog entry of id.
func Lookup(id string) (Entry, bool) {
	i := slices.IndexFunc(Catalog, func(e Entry) bool { return e.ID == id })
	if i < 0 {
		return Entry{}, false
	}
	return Catalog[i], true
}
