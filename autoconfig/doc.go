// Package autoconfig holds the domain policy: the one model of the settings
// a mail client must use for a domain (hosts, ports and TLS mode of each
// service, the username form, the SASL mechanisms, what POP3 clients do
// with mail left on the server), its validation, and the DNS records
// derived from it (RFC 6186 and RFC 8314 SRV, autoconfig and autodiscover
// host names, MX).
//
// The sub-packages render the policy into each client family's format and
// parse those formats back:
//
//   - mozilla: Thunderbird autoconfig, clientConfig v1.1 (also read by
//     K-9 / Thunderbird for Android, Evolution, KMail, FairEmail);
//   - autodiscover: Outlook Autodiscover POX (MS-OXDSCLI) and the
//     Autodiscover v2 JSON pointer;
//   - mobileconfig: the Apple configuration profile
//     (com.apple.mail.managed), optionally CMS-signed.
//
// This package does no I/O beyond writing to an io.Writer and imports only
// the standard library.
package autoconfig
