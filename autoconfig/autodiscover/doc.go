// Package autodiscover speaks Microsoft Outlook's Autodiscover for the
// Internet-mail case: it parses the "Plain Old XML" (POX) request that
// Outlook and Thunderbird POST to /autodiscover/autodiscover.xml, renders an
// autoconfig.Policy as the POX response that configures IMAP, POP3 and SMTP
// accounts, renders the POX Error document, and answers the Autodiscover v2
// JSON query with a pointer to the POX endpoint.
//
// The formats follow [MS-OXDSCLI], "Autodiscover Publishing and Lookup
// Protocol": section 2.2 for the request and response messages and their
// namespaces, the ErrorCode table for error documents, and section 3.2.5
// for what a server must do. Autodiscover v2 has no open specification;
// V2 answers the way Exchange Online and mailcow do.
//
// What POX can carry is narrower than a Policy: it has no element for
// "leave mail on the server" or "delete it after N days" (those are local
// Outlook options), and no way to choose between SASL PLAIN and LOGIN.
// SPA (NTLM) is always switched off and the login name is always the full
// email address.
//
// The package does no network I/O, has no package-level mutable state and
// imports only the standard library.
//
// [MS-OXDSCLI]: https://learn.microsoft.com/en-us/openspecs/exchange_server_protocols/ms-oxdscli/
package autodiscover
