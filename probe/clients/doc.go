// Package clients shows a domain as every mail program sees it.
//
// CheckDomain checks the domain as a whole, the way mox's DNS check and
// Stalwart's domain check do: every record `mailsetup records` prints
// compared with what the resolver answers (ok, missing, differs, error),
// the autoconfig., autodiscover. and ua-auto-config. hosts over HTTPS
// with a valid certificate, and their three documents (Thunderbird
// autoconfig, Outlook Autodiscover POX, PACC with its TXT digest)
// against the policy and so against each other.
//
// Simulate walks each client family's lookup order for one address
// (Thunderbird desktop, Thunderbird for Android/K-9, classic Outlook,
// Apple Mail with the profile, PACC clients, msmtp and mpop --configure;
// new Outlook asks Microsoft's cloud and cannot be simulated), says
// which source it would use and what it would end up with, and turns
// every difference from the policy into a finding with its fix: a stale
// CNAME, an SRV record to another host, a certificate that makes a
// client skip a source, an HTTP-only source, a document a client
// rejects.
//
// Every lookup goes through Options.Resolver, and only to the domain's
// own names and the hosts its policy or its DNS records name; redirects
// are never followed. It imports autoconfig, its format packages and
// finding; never server.
package clients
