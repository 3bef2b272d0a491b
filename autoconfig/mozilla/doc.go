// Package mozilla renders and parses the Thunderbird autoconfig document,
// clientConfig version 1.1 (config-v1.1.xml), served at
// https://autoconfig.<domain>/mail/config-v1.1.xml and
// https://<domain>/.well-known/autoconfig/mail/config-v1.1.xml.
//
// The same file is read by Thunderbird, K-9 Mail / Thunderbird for Android,
// Evolution, KMail and FairEmail. What they take from it:
//
//   - Thunderbird: the emailProvider id, domain and displayName; every
//     incomingServer (imap, pop3) and outgoingServer (smtp) in order, the
//     first usable one winning; hostname, port, socketType, username,
//     authentication; and from the pop3 block leaveMessagesOnServer,
//     daysToLeaveMessagesOnServer and downloadOnBiff. It ignores
//     displayShortName and documentation.
//   - K-9 / Thunderbird for Android: only imap incoming servers, socketType
//     SSL or STARTTLS (a "plain" server fails the whole file), and it
//     requires an emailProvider id and a username in every server.
//   - Evolution: imap, pop3 and smtp servers; it ignores the pop3 block.
//
// Render writes the document from an [autoconfig.Policy]; Parse reads any
// clientConfig document back into the policy fields the format carries.
//
// Imports: autoconfig and the standard library; nothing under server/.
package mozilla
