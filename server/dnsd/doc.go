// Package dnsd is a small authoritative DNS responder for the mail domains
// of the configured policies. It answers, on UDP and TCP, exactly the
// records autoconfig.Policy.Records returns for each domain — the RFC 6186
// and RFC 8314 SRV records (target "." for a service that is not offered,
// RFC 2782), _autodiscover._tcp SRV, the autoconfig. and autodiscover.
// names (CNAME or A/AAAA) and MX — plus a synthesized SOA at each domain's
// apex, so that tests, the probe and real clients can resolve a domain's
// client settings on loopback.
//
// It is not a recursive resolver and never asks another server: it answers
// only for names at or below a configured domain (the longest matching
// domain wins) and refuses every other name with REFUSED.
//
// What it answers (RFC 1034/1035, RFC 2308, RFC 6604, RFC 6891, RFC 8020):
//
//   - a name with records of the asked type: those records, AA set, the
//     owner name spelled as in the question (names compare
//     case-insensitively, RFC 4343);
//   - a name with a CNAME: the CNAME, followed (at most 8 links) while the
//     target lies in a configured domain, the final rcode being that of the
//     last name (RFC 6604); a CNAME or ANY query returns the CNAME itself;
//   - a name that exists with other types only, or an empty non-terminal
//     such as _tcp.<domain>: NOERROR with no answer and the SOA in the
//     authority section (NODATA, RFC 2308), the SOA's TTL capped at its
//     minimum field (300 s);
//   - a name below a domain with nothing at or under it: NXDOMAIN with
//     the SOA;
//   - SOA at the apex: the synthesized SOA (ns.<domain>., hostmaster.<domain>.,
//     serial a hash of the domain's records, so it changes exactly when the
//     records do);
//   - ANY: every record of the name (including the SOA at the apex);
//   - a name outside every configured domain, a class other than IN or ANY,
//     and AXFR/IXFR: REFUSED (zone transfers are not offered; other classes
//     hold no data here);
//   - an opcode other than QUERY: NOTIMP; not exactly one question, more
//     than one OPT record, or a message with the QR bit set: FORMERR;
//     EDNS version other than 0: BADVERS (RFC 6891).
//
// EDNS(0) queries get an OPT record advertising a 1232-byte UDP payload
// size. A UDP answer larger than the client's limit (512 bytes without
// EDNS, else the client's size capped at 1232) is truncated with the TC bit
// set so the client retries over TCP. A panic while answering is recovered
// and answered with SERVFAIL. Every query is logged at debug level.
//
// Handler can be used without sockets (it implements dns.Handler); Server
// runs it on a UDP PacketConn and a TCP Listener.
//
// Imports: autoconfig (the records come from the policies), miekg/dns and
// the standard library; no other server package.
package dnsd
