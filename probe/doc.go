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
// Safety: the probe only contacts hosts the policy names (narrowed by
// Options.AllowedHost), so it can never be used as a port scanner. It
// never sends DATA (MAIL/RCPT are followed by RSET), never RETR or DELE
// over POP3, sends the password only over a verified TLS connection, and
// after one refused password tries no other service, so it never adds to
// a lockout. The password is never logged, printed or put in a report.
//
// # JSON
//
// A Report (and the ClientSettings the web forms and the JSON API take)
// marshal as:
//
//	{
//	  "address": "john@example.com",
//	  "domain": "example.com",
//	  "source": "policy",                  // where "expected" came from
//	  "expected": {
//	    "imap": [{"protocol": "imap", "host": "imap.example.com", "port": 993, "security": "tls"}],
//	    "pop3": [...], "submission": [...],
//	    "prefer": "imap",
//	    "username": "john@example.com",
//	    "pop3_leave_on_server": true, "pop3_delete_after_days": 7
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
