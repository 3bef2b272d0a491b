// Package probe is the live settings check: it compares what a
// customer's mail client shows with the domain's policy, field by field,
// and checks the policy's servers for real: TCP, TLS (implicit or after
// STARTTLS/STLS; certificate name, chain, expiry, version), SMTP
// submission (AUTH only after TLS, no mail accepted without a login), the
// logins (IMAP, POP3, SMTP; read-only), the DNS records (SRV, MX,
// autoconfig names) and the published Thunderbird document.
//
// Every problem is a finding.Finding with a stable id from the findings
// catalog (package finding), a severity, the evidence, the fix in the
// words of the client's settings dialog, and one line for support staff.
// Run returns a Report; ExitCode maps it to the monitoring-plugin
// convention (0 OK, 1 WARNING, 2 CRITICAL; 3 UNKNOWN when Run could not
// run); WriteText prints it for people.
//
// Imports: the standard library, the mail and DNS client libraries,
// autoconfig (the policy model and its document parsers) and finding;
// never anything under server/.
//
// Safety: the probe only contacts hosts the policy (or discovery, below)
// names (narrowed by Options.AllowedHost), so it can never be used as a port scanner. It
// never sends DATA (MAIL/RCPT are followed by RSET), never RETR or DELE
// over POP3, sends the password only over a verified TLS connection, and
// after one refused password tries no other service, so it never adds to
// a lockout. The password is never logged, printed or put in a report.
//
// # Discovery
//
// A domain Options.Policy does not know is ErrUnknownDomain, unless
// Options.Discover is set (the command line's --discover; the web never
// sets it). Then Run finds the settings the way clients do, each attempt
// a Step of the report, and stops at the first that answers:
//
//  1. the Thunderbird autoconfig document, from
//     https://autoconfig.<domain>/mail/config-v1.1.xml?emailaddress=<addr>,
//     then https://<domain>/.well-known/autoconfig/mail/config-v1.1.xml
//     (Report.Source "autoconfig");
//  2. Outlook Autodiscover POX, POSTed to
//     https://autodiscover.<domain>/autodiscover/autodiscover.xml, then
//     https://<domain>/autodiscover/autodiscover.xml, with the address and
//     never a password (Source "autodiscover");
//  3. the RFC 6186/8314 SRV records (_imaps, _imap, _pop3s, _pop3,
//     _submissions, _submission) through Options.Resolver (Source "srv");
//  4. Thunderbird's MX source: through Options.Resolver, the MX host
//     with the lowest preference; its registrable domain (eTLD+1, from
//     the public suffix list) one label longer, then the registrable
//     domain itself, each only at
//     https://autoconfig.<mxdomain>/mail/config-v1.1.xml?emailaddress=<addr>
//     (https only; skipped when the MX base domain is the email domain;
//     Source "mx-autoconfig");
//  5. as a last resort, Thunderbird's guesses, in its order: IMAP on
//     imap.<domain>, mail.<domain>, <domain> at 993 (TLS) then 143
//     (STARTTLS); POP3 on pop3., pop., mail.<domain>, <domain> at 995
//     then 110; SMTP on smtp., mail.<domain>, <domain> at 465 then 587.
//     A guess works when TCP, the TLS handshake (verified as a mail
//     client would) and the greeting succeed and, at 143/110/587,
//     STARTTLS/STLS is offered; only the capability query and
//     LOGOUT/QUIT are sent, never a login. The guesses run concurrently
//     (at most 8, each within 3 s or StepTimeout if shorter); the first
//     working IMAP or else POP3 endpoint and the first working SMTP one
//     are the settings (Source "guess"; username the full address). Every
//     guess and its outcome is evidence of one step.
//
// When none answers (guessing found no IMAP or POP3 server), Run returns
// a *DiscoveryError (errors.Is ErrNotDiscovered) with every attempt.
// Discovered settings are the expected settings for the rest of the run:
// the servers are checked as for a policy, the reported settings compared
// with them (POP3 retention only when the source states it, which
// Autodiscover, SRV and guessing do not; the username form as the
// document says).
// The published DNS records and document are not checked against them.
// Only the discovery URLs' hosts, the guessed host names and the
// discovered hosts are contacted, narrowed by Options.AllowedHost; but a discovered document chooses
// those hosts and ports, so Discover is for operators (the command
// line), not for anonymous callers. The default HTTP client follows
// redirects only within the same host; documents are read up to 256 KiB. Options.HTTPClient,
// Resolve, HTTPSPort and Port (standard port to the port dialled instead)
// are testing hooks.
//
// # JSON
//
// A Report (and the ClientSettings the web forms and the JSON API take)
// marshal as:
//
//	{
//	  "address": "john@example.com",
//	  "domain": "example.com",
//	  "source": "policy",                  // or "autoconfig", "autodiscover", "srv", "mx-autoconfig", "guess"
//	  "expected": {
//	    "imap": [{"protocol": "imap", "host": "imap.example.com", "port": 993, "security": "tls"}],
//	    "pop3": [...], "submission": [...],
//	    "prefer": "imap",
//	    "username": "john@example.com",
//	    "pop3_leave_on_server": true, "pop3_delete_after_days": 7,
//	    "pop3_retention_unknown": true     // only when discovery could not tell
//	  },
//	  "client": {                          // the reported settings, if any
//	    "incoming": {"protocol": "pop3", "host": "...", "port": 995,
//	                 "security": "ssl",    // "ssl"/"tls", "starttls", "none"
//	                 "username": "...", "leave_on_server": true, "delete_after_days": 7},
//	    "outgoing": {"host": "...", "port": 587, "security": "starttls",
//	                 "auth": true, "username": "..."}
//	  },
//	  "steps": [{"name": "connect imap imap.example.com:993 tls", // for people
//	             "kind": "connect",          // StepKind: what the step checked
//	             "endpoint": {"protocol": "imap", "host": "imap.example.com",
//	                          "port": 993, "security": "tls"}, // connect, security-mode, login
//	             "severity": "ok", "duration_ns": 12000000,
//	             "evidence": ["TLS 1.3, ..."], "error": ""}],
//	  "findings": [{"id": "username.not-full-address", "severity": "critical",
//	                "title": "...", "evidence": ["..."], "fix": "...", "staff": "..."}],
//	  "worst": "critical",                 // ok | info | warning | critical
//	  "started": "2026-01-02T15:04:05Z",
//	  "duration_ns": 250000000
//	}
//
// A Step is a structured value: its Kind and Endpoint say what it
// checked, and the report lists the steps in an order that comes from
// them (stepOrder); programs and pages read those fields, never the
// Name.
//
// Fields of ClientSettings left out (or zero) are not compared.
// leave_on_server, delete_after_days and auth are pointers so that "not
// reported" differs from false/0; delete_after_days 0 means the "remove
// after N days" box is unticked. Findings are sorted worst first, then in
// catalog order; findings with the same id are merged (finding.Merge:
// each fix is said once, and servers that do not answer are named in
// one sentence).
package probe
