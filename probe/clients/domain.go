package clients

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"mailsetup/autoconfig"
	"mailsetup/autoconfig/autodiscover"
	"mailsetup/autoconfig/mozilla"
	"mailsetup/finding"
)

// Record statuses of the domain check's table.
const (
	RecordOK      = "ok"
	RecordMissing = "missing"
	RecordDiffers = "differs"
	RecordError   = "error"
)

// RecordRow is one record set `mailsetup records` prints, compared with
// what DNS answers.
type RecordRow struct {
	Name   string   `json:"name"`
	Type   string   `json:"type"`
	Want   []string `json:"want"`
	Got    []string `json:"got,omitempty"`
	Status string   `json:"status"`
	Detail string   `json:"detail,omitempty"`
}

// HostRow is one of the domain's document hosts fetched over HTTPS.
type HostRow struct {
	Host    string `json:"host"`
	URL     string `json:"url"`
	Outcome string `json:"outcome"`
	Detail  string `json:"detail,omitempty"`
}

// DomainReport is the result of CheckDomain.
type DomainReport struct {
	Domain  string      `json:"domain"`
	Records []RecordRow `json:"records"`
	Hosts   []HostRow   `json:"hosts"`
	// Documents says, per document, whether it agrees with the policy.
	Documents []string          `json:"documents"`
	Findings  []finding.Finding `json:"findings"`
}

// Severity is the worst severity of the findings (OK without any).
func (r *DomainReport) Severity() finding.Severity {
	return worst(r.Findings)
}

func worst(fs []finding.Finding) finding.Severity {
	s := finding.OK
	for _, f := range fs {
		if f.Severity > s {
			s = f.Severity
		}
	}
	return s
}

// checkAddress is the address the domain check asks the documents for:
// an address of the domain that every provider must have (RFC 2142).
func checkAddress(domain string) string { return "postmaster@" + domain }

// CheckDomain checks the domain as a whole against its policy: every
// record `mailsetup records` prints against the resolver's answer, the
// autoconfig., autodiscover. and ua-auto-config. hosts over HTTPS with a
// valid certificate, and their three documents against the policy and
// so against each other.
func CheckDomain(ctx context.Context, p autoconfig.Policy, opts Options) (*DomainReport, error) {
	if opts.Resolver == "" {
		return nil, errors.New("the domain check needs a DNS resolver (--resolver HOST:PORT)")
	}
	e := &env{opts: opts}
	rep := &DomainReport{Domain: p.Domain}
	rep.checkRecords(ctx, e, p)
	docs := rep.fetchDocuments(ctx, e, p)
	rep.compareDocuments(ctx, e, p, docs)
	rep.Findings = finding.Merge(rep.Findings)
	finding.Sort(rep.Findings)
	return rep, nil
}

func (r *DomainReport) checkRecords(ctx context.Context, e *env, p autoconfig.Policy) {
	type key struct{ name, typ string }
	want := map[key][]string{}
	var keys []key
	for _, rec := range p.Records() {
		k := key{strings.ToLower(rec.Name), rec.Type}
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
		want[k] = append(want[k], rec.Data())
	}
	for _, k := range keys {
		w := want[k]
		slices.Sort(w)
		row := RecordRow{Name: k.name, Type: k.typ, Want: w}
		a := e.lookup(ctx, k.name, dns.StringToType[k.typ])
		row.Got = a.Values
		vars := finding.Vars{"value": k.name + " " + k.typ, "expected": strings.Join(w, ", ")}
		switch {
		case a.Err != nil:
			row.Status, row.Detail = RecordError, a.Err.Error()
			r.Findings = append(r.Findings, finding.New("domain.record-error", vars, row.Detail))
		case slices.Equal(a.Values, w):
			row.Status = RecordOK
		case k.typ == "TXT" && isSubset(w, a.Values):
			// A PACC rollover publishes earlier digests beside the current one.
			row.Status, row.Detail = RecordOK, "also earlier digests (a rollover)"
		case len(a.Values) == 0:
			row.Status = RecordMissing
			if a.CNAME != "" {
				row.Detail = "the name is a CNAME to " + a.CNAME
			}
			r.Findings = append(r.Findings, finding.New("domain.record-missing", vars, fmt.Sprintf("%s %s: no record, want %s", k.name, k.typ, strings.Join(w, ", "))))
		default:
			row.Status = RecordDiffers
			r.Findings = append(r.Findings, finding.New("domain.record-differs", vars,
				fmt.Sprintf("%s %s: DNS has %s, want %s", k.name, k.typ, strings.Join(a.Values, ", "), strings.Join(w, ", "))))
		}
		r.Records = append(r.Records, row)
	}
}

func isSubset(small, big []string) bool {
	for _, s := range small {
		if !slices.Contains(big, s) {
			return false
		}
	}
	return true
}

// documents are the three documents as the domain's hosts serve them;
// nil where the fetch failed.
type documents struct {
	thunderbird, pox, pacc []byte
}

// poxRequest is Outlook's Autodiscover request for address.
func poxRequest(address string) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>`)
	_ = xml.EscapeText(&b, []byte(address)) // a bytes.Buffer does not fail
	b.WriteString(`</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>`)
	return b.Bytes()
}

// Paths of the documents on their hosts.
const (
	thunderbirdPath = "/mail/config-v1.1.xml"
	wellKnownPath   = "/.well-known/autoconfig/mail/config-v1.1.xml"
	poxPath         = "/autodiscover/autodiscover.xml"
)

func (r *DomainReport) fetchDocuments(ctx context.Context, e *env, p autoconfig.Policy) documents {
	addr := checkAddress(p.Domain)
	var docs documents
	type target struct {
		host, method, path, ctype string
		body                      []byte
		dst                       *[]byte
	}
	targets := []target{
		{"autoconfig." + p.Domain, http.MethodGet, thunderbirdPath + "?emailaddress=" + url.QueryEscape(addr), "", nil, &docs.thunderbird},
		{"autodiscover." + p.Domain, http.MethodPost, poxPath, "text/xml; charset=utf-8", poxRequest(addr), &docs.pox},
	}
	if _, err := p.PACC(); err == nil {
		targets = append(targets, target{autoconfig.PACCHostLabel + "." + p.Domain, http.MethodGet, autoconfig.PACCPath, "", nil, &docs.pacc})
	}
	for _, t := range targets {
		f := e.fetch(ctx, t.method, "https", t.host, t.path, t.ctype, t.body)
		r.Hosts = append(r.Hosts, HostRow{Host: t.host, URL: f.URL, Outcome: f.Outcome, Detail: f.Detail})
		vars := finding.Vars{"value": t.host}
		switch f.Outcome {
		case fetchOK:
			*t.dst = f.Body
		case fetchCertificate:
			r.Findings = append(r.Findings, finding.New("domain.host-certificate", vars, f.URL+": "+f.Detail))
		default:
			r.Findings = append(r.Findings, finding.New("domain.host-unreachable", vars, f.URL+": "+f.Outcome+": "+f.Detail))
		}
	}
	return docs
}

// firstEndpoints are the first endpoint of each protocol: what a client
// that takes one server per protocol sets up.
func firstEndpoints(p autoconfig.Policy) map[autoconfig.Protocol]autoconfig.Endpoint {
	out := map[autoconfig.Protocol]autoconfig.Endpoint{}
	for _, proto := range []autoconfig.Protocol{autoconfig.IMAP, autoconfig.POP3, autoconfig.SMTP} {
		for _, ep := range p.Endpoints(proto) {
			if ep.Security != autoconfig.None {
				out[proto] = ep
				break
			}
		}
	}
	return out
}

// diffFirst lists how got's first endpoints differ from want's.
func diffFirst(want, got autoconfig.Policy) []string {
	w, g := firstEndpoints(want), firstEndpoints(got)
	var out []string
	for _, proto := range []autoconfig.Protocol{autoconfig.IMAP, autoconfig.POP3, autoconfig.SMTP} {
		we, wok := w[proto]
		ge, gok := g[proto]
		switch {
		case wok && !gok:
			out = append(out, fmt.Sprintf("no %s server, the policy has %s", proto, we))
		case !wok && gok:
			out = append(out, fmt.Sprintf("%s server %s, the policy has none", proto, ge))
		case wok && !sameEndpoint(we, ge):
			out = append(out, fmt.Sprintf("%s server %s, the policy has %s", proto, ge, we))
		}
	}
	return out
}

func sameEndpoint(a, b autoconfig.Endpoint) bool {
	return strings.EqualFold(strings.TrimSuffix(a.Host, "."), strings.TrimSuffix(b.Host, ".")) && a.Port == b.Port && a.Security == b.Security && a.Protocol == b.Protocol
}

// paccSettings reads a PACC document into endpoints (implicit TLS on
// the standard ports). The submission host is "submit" (-03) or "smtp"
// (-02, what Stalwart serves and pimconf reads); a document that names
// two different hosts under them sends the two generations of clients
// to different servers and is refused with both names.
func paccSettings(doc []byte) (autoconfig.Policy, error) {
	var d struct {
		Protocols map[string]struct {
			Host string `json:"host"`
		} `json:"protocols"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		return autoconfig.Policy{}, fmt.Errorf("not a PACC JSON document: %w", err)
	}
	host := func(key string) string { return strings.TrimSuffix(d.Protocols[key].Host, ".") }
	submit, smtp := host("submit"), host("smtp")
	if submit != "" && smtp != "" && !strings.EqualFold(submit, smtp) {
		return autoconfig.Policy{}, fmt.Errorf("the document names two submission hosts: %q under \"submit\" (read by -03 clients) and %q under \"smtp\" (read by -02 clients)", submit, smtp)
	}
	if submit == "" {
		submit = smtp
	}
	ep := func(proto autoconfig.Protocol, h string) []autoconfig.Endpoint {
		if h == "" {
			return nil
		}
		return []autoconfig.Endpoint{{Protocol: proto, Host: h, Port: autoconfig.PACCPorts[proto], Security: autoconfig.TLS}}
	}
	return autoconfig.Policy{
		IMAP:       ep(autoconfig.IMAP, host("imap")),
		POP3:       ep(autoconfig.POP3, host("pop3")),
		Submission: ep(autoconfig.SMTP, submit),
	}, nil
}

// paccView is the policy as PACC can say it: its first PACC endpoint of
// each protocol.
func paccView(p autoconfig.Policy) autoconfig.Policy {
	doc, err := p.PACC()
	if err != nil {
		return autoconfig.Policy{}
	}
	v, _ := paccSettings(doc)
	return v
}

// paccDigests returns the UAAC1 digests published for the domain.
func paccDigests(ctx context.Context, e *env, domain string) ([]string, error) {
	a := e.lookup(ctx, autoconfig.PACCTXTLabel+"."+domain, dns.TypeTXT)
	var out []string
	for _, v := range a.Values {
		if d := autoconfig.ParsePACCText(v); d != "" {
			out = append(out, d)
		}
	}
	return out, a.Err
}

func (r *DomainReport) compareDocuments(ctx context.Context, e *env, p autoconfig.Policy, docs documents) {
	disagree := func(doc string, diffs []string) {
		for _, d := range diffs {
			r.Documents = append(r.Documents, doc+": "+d)
		}
		r.Findings = append(r.Findings, finding.New("domain.documents-disagree", finding.Vars{"value": doc + ": " + diffs[0]}, diffs...))
	}
	if docs.thunderbird != nil {
		got, err := mozilla.Parse(bytes.NewReader(docs.thunderbird))
		switch {
		case err != nil:
			disagree("Thunderbird autoconfig", []string{err.Error()})
		case len(diffFirst(p, got)) > 0:
			disagree("Thunderbird autoconfig", diffFirst(p, got))
		default:
			r.Documents = append(r.Documents, "Thunderbird autoconfig: agrees with the policy")
		}
		if _, err := mozilla.ParseAndroid(bytes.NewReader(docs.thunderbird), checkAddress(p.Domain)); err != nil {
			r.Findings = append(r.Findings, finding.New("clients.document-rejected", finding.Vars{"value": "Thunderbird for Android", "expected": "the autoconfig document"}, err.Error()))
		}
	}
	if docs.pox != nil {
		got, err := autodiscover.ParseResponse(bytes.NewReader(docs.pox))
		switch {
		case err != nil:
			disagree("Outlook Autodiscover", []string{err.Error()})
		case len(diffFirst(p, got)) > 0:
			disagree("Outlook Autodiscover", diffFirst(p, got))
		default:
			r.Documents = append(r.Documents, "Outlook Autodiscover: agrees with the policy")
		}
	}
	if docs.pacc != nil {
		got, err := paccSettings(docs.pacc)
		want, _ := p.PACC()
		switch {
		case err != nil:
			disagree("PACC", []string{err.Error()})
		case len(diffFirst(paccView(p), got)) > 0:
			disagree("PACC", diffFirst(paccView(p), got))
		case !bytes.Equal(docs.pacc, want):
			disagree("PACC", []string{"the served bytes differ from the document rendered from the policy (the same servers, other text)"})
		default:
			r.Documents = append(r.Documents, "PACC: agrees with the policy, byte for byte")
		}
		digests, derr := paccDigests(ctx, e, p.Domain)
		served := autoconfig.PACCDigest(docs.pacc)
		if derr == nil && !slices.Contains(digests, served) {
			r.Findings = append(r.Findings, finding.New("pacc.digest-mismatch", finding.Vars{"value": p.Domain, "expected": autoconfig.PACCText(served)},
				fmt.Sprintf("served document's SHA-256 %s; _ua-auto-config TXT digests %q", served, digests)))
		}
	}
}
