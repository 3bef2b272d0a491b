// Package mobileconfig renders a domain's autoconfig.Policy as an Apple
// configuration profile (a .mobileconfig file) that sets up one mail
// account in Apple Mail on iOS, iPadOS, macOS and visionOS, signs it with
// CMS, and parses such profiles back.
//
// The profile is an XML property list whose outer payload has PayloadType
// "Configuration" and which carries one payload of type
// "com.apple.mail.managed", Apple's Mail payload (Apple Device Management
// documentation, "Mail": https://developer.apple.com/documentation/devicemanagement/mail,
// and apple/device-management mdm/profiles/com.apple.mail.managed.yaml).
// That payload holds one incoming server (IMAP or POP) and one outgoing
// (SMTP submission) server, each with a host, a port, a single "use SSL"
// flag, a username and an authentication scheme.
//
// What a profile cannot say, and so what this package cannot push:
//
//   - POP3 retention: the Mail payload has no key for "leave a copy on
//     the server" or "delete from the server after N days", so the
//     policy's POP section is not carried. For a POP-first domain the
//     server-side expiry (RFC 2449 EXPIRE, autoconfig.POP3Policy.ExpireDays)
//     is the only lever for Apple devices.
//   - Required STARTTLS: IncomingMailServerUseSSL and
//     OutgoingMailServerUseSSL only switch implicit TLS on. With false,
//     Apple Mail connects in the clear and upgrades with STARTTLS when the
//     server offers it (opportunistic, not required). Render therefore
//     prefers implicit-TLS endpoints (993, 995, 465).
//   - SASL mechanisms: the payload names only EmailAuthPassword; Apple
//     Mail picks the mechanism itself.
//   - Passwords: a profile can carry them, but Apple allows that only in
//     encrypted profiles; Render never writes one, and Apple Mail asks for
//     the password when the profile is installed.
//
// Apple Mail never fetches a profile by itself: the user downloads it
// (served as ContentType with a Content-Disposition attachment named by
// Filename) and installs it in Settings or System Settings. Unsigned
// profiles install after an "Unverified" warning; Sign wraps a profile in
// a CMS SignedData so that devices show it as verified when the signer's
// certificate chains to a trusted root (an ordinary TLS server certificate
// will do).
//
// Imports: autoconfig and the standard library (CMS signing through a
// well-kept PKCS #7 library); nothing under server/.
package mobileconfig
