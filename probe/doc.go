// Package probe is the live settings check: it compares what a
// customer's mail client shows with the domain's policy, field by field,
// and checks the policy's servers for real: TCP, TLS (implicit or after
// STARTTLS/STLS; certificate name, chain, expiry, version), SMTP
// submission (AUTH only after TLS, no mail accepted without a login), the
// logins (IMAP, POP3, SMTP; read-only), the DNS records (SRV, MX,
// autoconfig names) and the published Thunderbird document.
//
// Every problem is a Finding with a stable id from Catalog, a severity,
// the evidence, the fix in the words of the client's settings dialog, and
// one line for support staff. Run returns a Report; ExitCode maps it to
// the monitoring-plugin convention (0 OK, 1 WARNING, 2 CRITICAL; 3
// UNKNOWN when Run could not run); WriteText prints it for people.
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
//     _submissions, _submission) through Options.Resolver (Source "srv").
//
// When none answers, Run returns a *DiscoveryError (errors.Is
// ErrNotDiscovered) with every attempt and, as evidence only, the host
// names Thunderbird would guess next; none of them is contacted.
// Discovered settings are the expected settings for the rest of the run:
// the servers are checked as for a policy, the reported settings compared
// with them (POP3 retention only when the source states it, which
// Autodiscover and SRV do not; the username form as the document says).
// The published DNS records and document are not checked against them.
// Only the discovery URLs' hosts and the discovered hosts are contacted,
// narrowed by Options.AllowedHost; but a discovered document chooses
// those hosts and ports, so Discover is for operators (the command
// line), not for anonymous callers. The default HTTP client follows
// redirects only within the same host; documents are read up to 256 KiB. Options.HTTPClient,
// Resolve and HTTPSPort are testing hooks.
//
// # JSON
//
// A Report (and the ClientSettings the web forms and the JSON API take)
// marshal as:
//
//	{
//	  "address": "john@example.com",
//	  "domain": "example.com",
//	  "source": "policy",                  // or "autoconfig", "autodiscover", "srv"
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
//	  "steps": [{"name": "connect imap imap.example.com:993 tls", "severity": "ok",
//	             "duration_ns": 12000000, "evidence": ["TLS 1.3, ..."], "error": ""}],
//	  "findings": [{"id": "username.not-full-address", "severity": "critical",
//	                "title": "...", "evidence": ["..."], "fix": "...", "staff": "..."}],
//	  "worst": "critical",                 // ok | info | warning | critical
//	  "started": "2026-01-02T15:04:05Z",
//	  "duration_ns": 250000000
//	}
//
// Fields of ClientSettings left out (or zero) are not compared.
// leave_on_server, delete_after_days and auth are pointers so that "not
// reported" differs from false/0; delete_after_days 0 means the "remove
// after N days" box is unticked. Findings are sorted worst first, then in
// catalog order; findings with the same id are merged.
package probe
