package clients

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/miekg/dns"

	"mailsetup/autoconfig"
	"mailsetup/autoconfig/autodiscover"
	"mailsetup/autoconfig/mobileconfig"
	"mailsetup/autoconfig/mozilla"
	"mailsetup/finding"
)

// Settings are what a mail program ends up with: one incoming and one
// outgoing server and the username it logs in with.
type Settings struct {
	Incoming *autoconfig.Endpoint `json:"incoming,omitempty"`
	Outgoing *autoconfig.Endpoint `json:"outgoing,omitempty"`
	Username string               `json:"username,omitempty"`
}

func (s Settings) String() string {
	var parts []string
	if s.Incoming != nil {
		parts = append(parts, "incoming "+describe(*s.Incoming))
	}
	if s.Outgoing != nil {
		parts = append(parts, "outgoing "+describe(*s.Outgoing))
	}
	if s.Username != "" {
		parts = append(parts, "username "+s.Username)
	}
	return strings.Join(parts, ", ")
}

// describe says an endpoint as a settings dialog shows it.
func describe(e autoconfig.Endpoint) string {
	return fmt.Sprintf("%s %s port %d %s", strings.ToUpper(string(e.Protocol)), e.Host, e.Port, e.Security.Label())
}

// Source is one place a mail program looks for settings, in its order.
type Source struct {
	// Name says what the source is ("autoconfig host, HTTPS").
	Name string `json:"name"`
	// Where is the URL or DNS name asked.
	Where string `json:"where"`
	// Outcome: "used", "usable" (a later source than the one used),
	// "skipped" (it gave nothing usable: Detail says why), "not checked"
	// (a third party's service the simulator does not ask).
	Outcome string `json:"outcome"`
	Detail  string `json:"detail,omitempty"`
	// Kind names the source for the pages, which say it in their
	// language (one of SourceKinds; an SRV source's label is Label).
	Kind  string `json:"kind"`
	Label string `json:"label,omitempty"`
	// Reason is why a source was skipped or not checked (one of
	// SkipReasons), and Value its datum where it has one (the HTTP
	// status, a redirect's target, the SRV records), for the pages.
	Reason string `json:"reason,omitempty"`
	Value  string `json:"value,omitempty"`
	// Settings are what the source gives the program (when usable).
	Settings *Settings `json:"settings,omitempty"`
}

// Source outcomes.
const (
	SourceUsed       = "used"
	SourceUsable     = "usable"
	SourceSkipped    = "skipped"
	SourceNotChecked = "not checked"
)

// The kinds of sources (Source.Kind), for the pages' words.
const (
	KindAutoconfigHTTPS   = "autoconfig-https"
	KindWellKnownHTTPS    = "well-known-https"
	KindAutoconfigHTTP    = "autoconfig-http"
	KindWellKnownHTTP     = "well-known-http"
	KindISPDB             = "ispdb"
	KindMXAutoconfig      = "mx-autoconfig"
	KindAutodiscoverHTTPS = "autodiscover-domain"
	KindAutodiscoverHost  = "autodiscover-host"
	KindAutodiscoverHTTP  = "autodiscover-redirect"
	KindAutodiscoverSRV   = "autodiscover-srv"
	KindAutodiscoverSRVT  = "autodiscover-srv-target"
	KindProfile           = "profile"
	KindPACC              = "pacc"
	KindSRV               = "srv"
)

// SourceKinds are every Source.Kind.
var SourceKinds = []string{KindAutoconfigHTTPS, KindWellKnownHTTPS, KindAutoconfigHTTP, KindWellKnownHTTP, KindISPDB, KindMXAutoconfig,
	KindAutodiscoverHTTPS, KindAutodiscoverHost, KindAutodiscoverHTTP, KindAutodiscoverSRV, KindAutodiscoverSRVT, KindProfile, KindPACC, KindSRV}

// Why a source gave nothing (Source.Reason).
const (
	ReasonNoAddress   = "no-address"
	ReasonUnreachable = "unreachable"
	ReasonCertificate = "certificate"
	ReasonHTTPStatus  = "http-status"
	ReasonRedirect    = "redirect"
	ReasonRejected    = "rejected"
	ReasonNoRecord    = "no-record"
	ReasonDNSError    = "dns-error"
	ReasonRecords     = "unusable-records"
	ReasonThirdParty  = "third-party"
	ReasonNoWebURL    = "no-web-url"
	ReasonNoPACC      = "no-pacc"
)

// SkipReasons are every Source.Reason.
var SkipReasons = []string{ReasonNoAddress, ReasonUnreachable, ReasonCertificate, ReasonHTTPStatus, ReasonRedirect, ReasonRejected,
	ReasonNoRecord, ReasonDNSError, ReasonRecords, ReasonThirdParty, ReasonNoWebURL, ReasonNoPACC}

// The client families (ClientView.ID).
const (
	ClientThunderbird = "thunderbird"
	ClientAndroid     = "android"
	ClientOutlook     = "outlook-classic"
	ClientNewOutlook  = "outlook-new"
	ClientApple       = "apple"
	ClientPACC        = "pacc"
	ClientMSMTP       = "msmtp"
	ClientMPOP        = "mpop"
)

// ClientIDs are every ClientView.ID.
var ClientIDs = []string{ClientThunderbird, ClientAndroid, ClientOutlook, ClientNewOutlook, ClientApple, ClientPACC, ClientMSMTP, ClientMPOP}

// checkedOn is the month the lookup orders were checked (ClientView.CheckedOn).
const checkedOn = "2026-12"

// ClientView is one client family's view of the domain.
type ClientView struct {
	// ID names the family for the pages (one of ClientIDs); Client is
	// its name in English.
	ID     string `json:"id"`
	Client string `json:"client"`
	// Checked names the client version and date the lookup order was
	// checked against; CheckedOn is that month, "2026-12".
	Checked   string   `json:"checked"`
	CheckedOn string   `json:"checked_on"`
	Sources   []Source `json:"sources,omitempty"`
	// Settings are what the program would end up with; nil when it
	// finds nothing (or, for new Outlook, cannot be simulated).
	Settings *Settings `json:"settings,omitempty"`
	// Expected is what it would end up with from the policy's own
	// documents and records.
	Expected *Settings `json:"expected,omitempty"`
	// Manual: the program cannot be set up from the provider's sources;
	// Expected is what to type.
	Manual   bool              `json:"manual,omitempty"`
	Findings []finding.Finding `json:"findings,omitempty"`
}

// ClientsReport is the result of Simulate.
type ClientsReport struct {
	Address string       `json:"address"`
	Domain  string       `json:"domain"`
	Clients []ClientView `json:"clients"`
	// Findings are about the domain's sources themselves (a stale CNAME,
	// an SRV record to another host), beside each client's.
	Findings []finding.Finding `json:"findings,omitempty"`
}

// Severity is the worst severity of every finding in the report.
func (r *ClientsReport) Severity() finding.Severity {
	s := worst(r.Findings)
	for _, c := range r.Clients {
		s = max(s, worst(c.Findings))
	}
	return s
}

// sim is one simulation: the lookups, cached so that two clients asking
// the same URL see the same answer.
type sim struct {
	env     *env
	pol     autoconfig.Policy
	addr    autoconfig.Address
	fetches map[string]fetched
}

func (s *sim) get(ctx context.Context, method, scheme, host, path, ctype string, body []byte) fetched {
	key := method + " " + scheme + "://" + host + path
	if f, ok := s.fetches[key]; ok {
		return f
	}
	f := s.env.fetch(ctx, method, scheme, host, path, ctype, body)
	s.fetches[key] = f
	return f
}

// Simulate shows, for each client family, which sources it tries for
// address in its lookup order, which one wins and what it ends up
// with, compared with what the policy's own documents give it. Lookups
// go only to the domain's own names and the hosts the policy or the
// domain's DNS names, through opts.Resolver.
func Simulate(ctx context.Context, address string, p autoconfig.Policy, opts Options) (*ClientsReport, error) {
	if opts.Resolver == "" {
		return nil, fmt.Errorf("the client simulation needs a DNS resolver (--resolver HOST:PORT)")
	}
	a, err := autoconfig.ParseAddress(address)
	if err != nil {
		return nil, err
	}
	s := &sim{env: &env{opts: opts}, pol: p, addr: a, fetches: map[string]fetched{}}
	rep := &ClientsReport{Address: a.String(), Domain: a.Domain}
	rep.Findings = append(rep.Findings, s.staleNames(ctx)...)
	rep.Findings = append(rep.Findings, s.foreignSRV(ctx)...)
	rep.Clients = []ClientView{
		s.thunderbird(ctx),
		s.android(ctx),
		s.outlookClassic(ctx),
		s.outlookNew(),
		s.apple(ctx),
		s.pacc(ctx),
		s.srvClient(ctx, ClientMSMTP, "msmtp --configure", []string{"_submissions._tcp", "_submission._tcp"}, autoconfig.SMTP),
		s.srvClient(ctx, ClientMPOP, "mpop --configure", []string{"_pop3s._tcp", "_pop3._tcp"}, autoconfig.POP3),
	}
	for i := range rep.Clients {
		rep.Clients[i].Findings = finding.Merge(rep.Clients[i].Findings)
	}
	rep.Findings = finding.Merge(rep.Findings)
	return rep, nil
}

// staleNames finds autoconfig./autodiscover./ua-auto-config. names that
// are CNAMEs to a host the policy does not name (an old provider's).
func (s *sim) staleNames(ctx context.Context) []finding.Finding {
	want := map[string]string{} // name -> CNAME target the policy publishes ("" for A/AAAA)
	for _, r := range s.pol.Records() {
		switch r.Type {
		case "CNAME":
			want[strings.ToLower(r.Name)] = strings.ToLower(r.Target)
		case "A", "AAAA":
			if _, ok := want[strings.ToLower(r.Name)]; !ok {
				want[strings.ToLower(r.Name)] = ""
			}
		}
	}
	var out []finding.Finding
	for _, label := range []string{"autoconfig", "autodiscover", autoconfig.PACCHostLabel} {
		name := label + "." + s.addr.Domain + "."
		w, published := want[name]
		if !published {
			continue
		}
		a := s.env.lookup(ctx, name, dns.TypeCNAME)
		if a.Err != nil || len(a.Values) == 0 {
			continue
		}
		got := a.Values[0]
		if got != w {
			expected := got
			out = append(out, finding.New("clients.stale-cname", finding.Vars{"value": strings.TrimSuffix(name, "."), "expected": strings.TrimSuffix(expected, ".")},
				fmt.Sprintf("%s CNAME %s; the policy publishes %s", name, got, describeTarget(w))))
		}
	}
	return out
}

func describeTarget(cname string) string {
	if cname == "" {
		return "its own A/AAAA records"
	}
	return "CNAME " + cname
}

// policyHosts are the mail server host names the policy names.
func (s *sim) policyHosts() []string {
	var out []string
	for _, e := range append(append(slices.Clone(s.pol.IMAP), s.pol.POP3...), s.pol.Submission...) {
		out = append(out, strings.ToLower(strings.TrimSuffix(e.Host, "."))+".")
	}
	return out
}

// foreignSRV finds mail SRV records whose target is not a server of the
// policy, and an _autodiscover._tcp record that does not name the web
// host (an old provider's, another host).
func (s *sim) foreignSRV(ctx context.Context) []finding.Finding {
	hosts := s.policyHosts()
	web := strings.ToLower(strings.TrimSuffix(s.pol.Web.Host(), ".")) + "."
	var out []finding.Finding
	// The mail services' records, and _autodiscover._tcp, which must
	// name the web host (an old hoster's discovery host there blocks
	// Thunderbird's and Outlook's setup).
	for _, label := range append(slices.Clone(autoconfig.SRVServices), "_autodiscover._tcp") {
		name := label + "." + s.addr.Domain + "."
		a := s.env.lookup(ctx, name, dns.TypeSRV)
		for _, v := range a.Values {
			f := strings.Fields(v)
			if len(f) != 4 || f[3] == "." {
				continue
			}
			own := slices.Contains(hosts, f[3])
			if label == "_autodiscover._tcp" {
				own = f[3] == web
			}
			if own {
				continue
			}
			out = append(out, finding.New("clients.srv-other-host", finding.Vars{"value": strings.TrimSuffix(name, "."), "expected": strings.TrimSuffix(f[3], ".") + " port " + f[2]},
				fmt.Sprintf("%s SRV %s", name, v)))
		}
	}
	return out
}

// Lookup orders and where they were checked.
const (
	checkedThunderbird = "Thunderbird 140-153 (comm-central FindConfig/FetchConfig), December 2026"
	checkedAndroid     = "Thunderbird for Android / K-9 (thunderbird-android 0404b33: ProviderAutoconfigUrlProvider, RealAutoconfigParser), December 2026"
	checkedOutlook     = "classic Outlook 2016-2024 for IMAP/POP accounts ([MS-OXDSCLI] POX order), December 2026"
	checkedNewOutlook  = "new Outlook for Windows and Outlook mobile (settings looked up by Microsoft's cloud), December 2026"
	checkedApple       = "Apple Mail on macOS and iOS with the configuration profile, December 2026"
	checkedPACC        = "PACC clients: Evolution (GNOME MR 219), pimconf/Himalaya, " + autoconfig.PACCRevision + ", December 2026"
	checkedSRV         = "msmtp 1.8.23 and mpop 1.4.18 --configure (RFC 6186/8314 SRV), December 2026"
)

// autoconfigSources are the four ISP URLs of Thunderbird (desktop and
// Android) in their order.
func (s *sim) autoconfigSources() []struct{ name, kind, scheme, host, path string } {
	q := "?emailaddress=" + url.QueryEscape(s.addr.String())
	d := s.addr.Domain
	return []struct{ name, kind, scheme, host, path string }{
		{"autoconfig host, HTTPS", KindAutoconfigHTTPS, "https", "autoconfig." + d, thunderbirdPath + q},
		{"domain's .well-known, HTTPS", KindWellKnownHTTPS, "https", d, wellKnownPath + q},
		{"autoconfig host, HTTP", KindAutoconfigHTTP, "http", "autoconfig." + d, thunderbirdPath + q},
		{"domain's .well-known, HTTP", KindWellKnownHTTP, "http", d, wellKnownPath + q},
	}
}

// mxAutoconfigHost is autoconfig.<the first MX host's parent domain>,
// or "" when that is the mail domain itself or there is no MX.
func (s *sim) mxAutoconfigHost(ctx context.Context) string {
	a := s.env.lookup(ctx, s.addr.Domain, dns.TypeMX)
	best, bestPref := "", 1<<17
	for _, v := range a.Values {
		f := strings.Fields(v)
		if len(f) != 2 {
			continue
		}
		pref, _ := strconv.Atoi(f[0])
		if pref < bestPref {
			best, bestPref = strings.TrimSuffix(f[1], "."), pref
		}
	}
	_, parent, ok := strings.Cut(best, ".")
	if !ok || parent == s.addr.Domain || !strings.Contains(parent, ".") {
		return ""
	}
	return "autoconfig." + parent
}

// fromDocument turns a fetched document into settings with parse, and
// records the source.
type parseFunc func(body []byte) (*Settings, error)

// try fetches one source and adds it to v; it returns whether the
// source gave settings. A certificate rejection and an HTTPS failure
// whose HTTP twin works are findings.
func (s *sim) try(ctx context.Context, v *ClientView, name, kind, method, scheme, host, path, ctype string, body []byte, parse parseFunc) bool {
	f := s.get(ctx, method, scheme, host, path, ctype, body)
	src := Source{Name: name, Kind: kind, Where: f.URL}
	defer func() { v.Sources = append(v.Sources, src) }()
	if !f.ok() {
		src.Outcome, src.Detail = SourceSkipped, f.Outcome
		src.Reason, src.Value = f.reason()
		if f.Detail != "" {
			src.Detail += ": " + f.Detail
		}
		if f.Location != "" {
			src.Detail += " (redirect to " + f.Location + ", not followed)"
		}
		if f.Outcome == fetchCertificate {
			v.Findings = append(v.Findings, finding.New("clients.certificate-skipped", finding.Vars{"value": host, "expected": v.Client}, f.URL+": "+f.Detail))
		}
		return false
	}
	st, err := parse(f.Body)
	if err != nil {
		src.Outcome, src.Detail, src.Reason = SourceSkipped, "rejected: "+err.Error(), ReasonRejected
		v.Findings = append(v.Findings, finding.New("clients.document-rejected", finding.Vars{"value": v.Client, "expected": f.URL}, err.Error()))
		return false
	}
	src.Settings = st
	src.Outcome = SourceUsable
	if v.Settings == nil {
		src.Outcome = SourceUsed
		v.Settings = st
		if scheme == "http" {
			v.Findings = append(v.Findings, finding.New("clients.http-only", finding.Vars{"value": f.URL}, v.Client+" takes its settings from "+f.URL+" without encryption"))
		}
	}
	return true
}

// settingsFromPolicy is what a Thunderbird-like client takes from a
// parsed document: the first incoming server of the document's order,
// the first SMTP server, the username for the address.
func (s *sim) settingsFromPolicy(p autoconfig.Policy) *Settings {
	st := &Settings{Username: s.addr.String()}
	if p.Username == autoconfig.LocalPart {
		st.Username = s.addr.Local
	}
	if e, ok := p.Preferred(); ok {
		st.Incoming = &e
	}
	if len(p.Submission) > 0 {
		e := p.Submission[0]
		st.Outgoing = &e
	}
	return st
}

func (s *sim) parseThunderbird(body []byte) (*Settings, error) {
	p, err := mozilla.Parse(bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	p.IMAP, p.POP3, p.Submission = withoutPlain(p.IMAP), withoutPlain(p.POP3), withoutPlain(p.Submission)
	return s.settingsFromPolicy(p), nil
}

func withoutPlain(list []autoconfig.Endpoint) []autoconfig.Endpoint {
	return slices.DeleteFunc(slices.Clone(list), func(e autoconfig.Endpoint) bool { return e.Security == autoconfig.None })
}

func (s *sim) parsePOX(body []byte) (*Settings, error) {
	p, err := autodiscover.ParseResponse(bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if p.Prefer == "" {
		p.Prefer = autoconfig.IMAP
		if len(p.IMAP) == 0 {
			p.Prefer = autoconfig.POP3
		}
	}
	return s.settingsFromPolicy(p), nil
}

func (s *sim) parseAndroid(body []byte) (*Settings, error) {
	a, err := mozilla.ParseAndroid(bytes.NewReader(body), s.addr.String())
	if err != nil {
		return nil, err
	}
	return &Settings{Incoming: &a.IMAP, Outgoing: &a.SMTP, Username: a.IMAPUsername}, nil
}

// expect renders the policy's own document and reads it as the client
// would: what a correct source gives.
func (s *sim) expect(render func(*bytes.Buffer) error, parse parseFunc) *Settings {
	var buf bytes.Buffer
	if err := render(&buf); err != nil {
		return nil
	}
	st, err := parse(buf.Bytes())
	if err != nil {
		return nil
	}
	return st
}

// finish compares what the client ends up with with what it should.
func (s *sim) finish(v *ClientView) {
	switch {
	case v.Expected == nil:
	case v.Settings == nil:
		v.Findings = append(v.Findings, finding.New("clients.no-source", finding.Vars{"value": v.Client, "expected": v.Expected.String()}))
	case !sameSettings(*v.Settings, *v.Expected):
		v.Findings = append(v.Findings, finding.New("clients.conflict", finding.Vars{"value": v.Client, "expected": v.Expected.String()},
			"would set up: "+v.Settings.String(), "the policy gives: "+v.Expected.String()))
	}
}

func sameSettings(a, b Settings) bool {
	eq := func(x, y *autoconfig.Endpoint) bool {
		if x == nil || y == nil {
			return x == y
		}
		return sameEndpoint(*x, *y)
	}
	return eq(a.Incoming, b.Incoming) && eq(a.Outgoing, b.Outgoing) && strings.EqualFold(a.Username, b.Username)
}

func (s *sim) thunderbird(ctx context.Context) ClientView {
	v := ClientView{ID: ClientThunderbird, Client: "Thunderbird desktop", Checked: checkedThunderbird, CheckedOn: checkedOn}
	v.Expected = s.expect(func(b *bytes.Buffer) error { return mozilla.Render(b, s.pol, s.addr.String()) }, s.parseThunderbird)
	for _, src := range s.autoconfigSources() {
		s.try(ctx, &v, src.name, src.kind, http.MethodGet, src.scheme, src.host, src.path, "", nil, s.parseThunderbird)
	}
	v.Sources = append(v.Sources, Source{Name: "Thunderbird's ISP database", Where: "https://live.thunderbird.net/autoconfig/v1.1/" + s.addr.Domain, Outcome: SourceNotChecked, Detail: "a third party's service", Kind: KindISPDB, Reason: ReasonThirdParty})
	if host := s.mxAutoconfigHost(ctx); host != "" {
		s.try(ctx, &v, "MX domain's autoconfig host, HTTPS", KindMXAutoconfig, http.MethodGet, "https", host, thunderbirdPath+"?emailaddress="+url.QueryEscape(s.addr.String()), "", nil, s.parseThunderbird)
	}
	// Exchange Autodiscover, asked in parallel; used only without autoconfig.
	s.tryPOX(ctx, &v)
	s.finish(&v)
	return v
}

func (s *sim) android(ctx context.Context) ClientView {
	v := ClientView{ID: ClientAndroid, Client: "Thunderbird for Android / K-9 Mail", Checked: checkedAndroid, CheckedOn: checkedOn}
	v.Expected = s.expect(func(b *bytes.Buffer) error { return mozilla.Render(b, s.pol, s.addr.String()) }, s.parseAndroid)
	for _, src := range s.autoconfigSources() {
		s.try(ctx, &v, src.name, src.kind, http.MethodGet, src.scheme, src.host, src.path, "", nil, s.parseAndroid)
	}
	v.Sources = append(v.Sources, Source{Name: "Thunderbird's ISP database", Where: "https://autoconfig.thunderbird.net/v1.1/" + s.addr.Domain, Outcome: SourceNotChecked, Detail: "a third party's service", Kind: KindISPDB, Reason: ReasonThirdParty})
	if host := s.mxAutoconfigHost(ctx); host != "" {
		s.try(ctx, &v, "MX domain's autoconfig host, HTTPS", KindMXAutoconfig, http.MethodGet, "https", host, thunderbirdPath+"?emailaddress="+url.QueryEscape(s.addr.String()), "", nil, s.parseAndroid)
	}
	s.finish(&v)
	return v
}

// tryPOX tries Outlook's Autodiscover sources in [MS-OXDSCLI] order.
func (s *sim) tryPOX(ctx context.Context, v *ClientView) {
	d := s.addr.Domain
	req := poxRequest(s.addr.String())
	ct := "text/xml; charset=utf-8"
	s.try(ctx, v, "Autodiscover on the domain, HTTPS", KindAutodiscoverHTTPS, http.MethodPost, "https", d, poxPath, ct, req, s.parsePOX)
	s.try(ctx, v, "autodiscover host, HTTPS", KindAutodiscoverHost, http.MethodPost, "https", "autodiscover."+d, poxPath, ct, req, s.parsePOX)
	// HTTP is only asked for a redirect to an HTTPS URL.
	f := s.get(ctx, http.MethodGet, "http", "autodiscover."+d, poxPath, "", nil)
	src := Source{Name: "autodiscover host, HTTP redirect", Kind: KindAutodiscoverHTTP, Where: f.URL, Outcome: SourceSkipped, Detail: f.Outcome}
	src.Reason, src.Value = f.reason()
	if f.Detail != "" {
		src.Detail += ": " + f.Detail
	}
	if f.Location != "" {
		src.Detail = "redirects to " + f.Location + " (Outlook asks the user before following it)"
		src.Reason, src.Value = ReasonRedirect, f.Location
	}
	v.Sources = append(v.Sources, src)
	a := s.env.lookup(ctx, "_autodiscover._tcp."+d, dns.TypeSRV)
	for _, val := range a.Values {
		fl := strings.Fields(val)
		if len(fl) != 4 || fl[3] == "." {
			continue
		}
		host := strings.TrimSuffix(fl[3], ".")
		if fl[2] != "443" {
			host = net.JoinHostPort(host, fl[2])
		}
		s.try(ctx, v, "_autodiscover._tcp SRV target, HTTPS (Outlook asks the user first)", KindAutodiscoverSRVT, http.MethodPost, "https", host, poxPath, ct, req, s.parsePOX)
		break
	}
	if len(a.Values) == 0 {
		v.Sources = append(v.Sources, Source{Name: "_autodiscover._tcp SRV", Kind: KindAutodiscoverSRV, Where: "_autodiscover._tcp." + d, Outcome: SourceSkipped, Detail: "no record", Reason: ReasonNoRecord})
	}
}

func (s *sim) outlookClassic(ctx context.Context) ClientView {
	v := ClientView{ID: ClientOutlook, Client: "classic Outlook (Autodiscover POX)", Checked: checkedOutlook, CheckedOn: checkedOn}
	v.Expected = s.expect(func(b *bytes.Buffer) error { return autodiscover.WriteResponse(b, s.pol, s.addr.String()) }, s.parsePOX)
	s.tryPOX(ctx, &v)
	s.finish(&v)
	return v
}

func (s *sim) outlookNew() ClientView {
	v := ClientView{ID: ClientNewOutlook, Client: "new Outlook and Outlook mobile", Checked: checkedNewOutlook, CheckedOn: checkedOn, Manual: true}
	v.Expected = s.settingsFromPolicy(s.pol)
	v.Findings = append(v.Findings, finding.New("clients.type-by-hand", finding.Vars{"value": v.Client, "expected": v.Expected.String()}))
	return v
}

func (s *sim) apple(ctx context.Context) ClientView {
	v := ClientView{ID: ClientApple, Client: "Apple Mail with the profile", Checked: checkedApple, CheckedOn: checkedOn}
	parse := func(body []byte) (*Settings, error) {
		content, _, err := mobileconfig.Content(body)
		if err != nil {
			return nil, err
		}
		p, err := mobileconfig.Parse(content)
		if err != nil {
			return nil, err
		}
		return s.settingsFromPolicy(p), nil
	}
	v.Expected = s.expect(func(b *bytes.Buffer) error {
		data, err := mobileconfig.Render(s.pol, s.addr.String())
		b.Write(data)
		return err
	}, parse)
	u, err := url.Parse(s.pol.Web.BaseURL)
	if err != nil || u.Host == "" {
		v.Sources = append(v.Sources, Source{Name: "the profile on the web host", Kind: KindProfile, Where: s.pol.Web.BaseURL, Outcome: SourceSkipped, Detail: "the policy has no web URL", Reason: ReasonNoWebURL})
		s.finish(&v)
		return v
	}
	s.try(ctx, &v, "the profile on the policy's web host", KindProfile, http.MethodGet, u.Scheme, u.Host, "/apple/mail.mobileconfig?email="+url.QueryEscape(s.addr.String()), "", nil, parse)
	s.finish(&v)
	return v
}

func (s *sim) pacc(ctx context.Context) ClientView {
	v := ClientView{ID: ClientPACC, Client: "PACC clients (Evolution, pimconf/Himalaya)", Checked: checkedPACC, CheckedOn: checkedOn}
	parse := func(body []byte) (*Settings, error) {
		digests, err := paccDigests(ctx, s.env, s.addr.Domain)
		if err != nil {
			return nil, fmt.Errorf("TXT %s.%s: %w", autoconfig.PACCTXTLabel, s.addr.Domain, err)
		}
		if !slices.Contains(digests, autoconfig.PACCDigest(body)) {
			return nil, fmt.Errorf("no _ua-auto-config TXT digest matches the document's SHA-256 %s (published: %q)", autoconfig.PACCDigest(body), digests)
		}
		p, err := paccSettings(body)
		if err != nil {
			return nil, err
		}
		p.Prefer = autoconfig.IMAP
		if len(p.IMAP) == 0 {
			p.Prefer = autoconfig.POP3
		}
		return s.settingsFromPolicy(p), nil
	}
	if doc, err := s.pol.PACC(); err == nil {
		view, _ := paccSettings(doc)
		view.Prefer = autoconfig.IMAP
		if len(view.IMAP) == 0 {
			view.Prefer = autoconfig.POP3
		}
		v.Expected = s.settingsFromPolicy(view)
	}
	s.try(ctx, &v, "ua-auto-config host, HTTPS, with the TXT digest", KindPACC, http.MethodGet, "https", autoconfig.PACCHostLabel+"."+s.addr.Domain, autoconfig.PACCPath, "", nil, parse)
	if v.Expected == nil && v.Settings == nil {
		v.Sources[len(v.Sources)-1].Detail += " (the policy cannot be said in PACC; Evolution goes on to Thunderbird autoconfig)"
		v.Sources[len(v.Sources)-1].Reason = ReasonNoPACC
	}
	s.finish(&v)
	return v
}

// srvClient is msmtp or mpop --configure: the first label with a
// record, its lowest priority target; the username they write is the
// local part.
func (s *sim) srvClient(ctx context.Context, id, client string, labels []string, proto autoconfig.Protocol) ClientView {
	v := ClientView{ID: id, Client: client, Checked: checkedSRV, CheckedOn: checkedOn}
	pick := func(records map[string][]string) *Settings {
		for _, label := range labels {
			best := ""
			bestPrio := 1 << 17
			for _, val := range records[label] {
				f := strings.Fields(val)
				if len(f) != 4 {
					continue
				}
				prio, _ := strconv.Atoi(f[0])
				if prio < bestPrio {
					best, bestPrio = val, prio
				}
			}
			if best == "" {
				continue
			}
			f := strings.Fields(best)
			if f[3] == "." {
				continue // "decidedly not offered"
			}
			port, _ := strconv.Atoi(f[2])
			sec := autoconfig.STARTTLS
			if strings.HasSuffix(strings.SplitN(label, ".", 2)[0], "s") {
				sec = autoconfig.TLS
			}
			e := autoconfig.Endpoint{Protocol: proto, Host: strings.TrimSuffix(f[3], "."), Port: port, Security: sec}
			st := &Settings{Username: s.addr.Local}
			if proto == autoconfig.SMTP {
				st.Outgoing = &e
			} else {
				st.Incoming = &e
			}
			return st
		}
		return nil
	}
	want := map[string][]string{}
	for _, r := range s.pol.Records() {
		if r.Type == "SRV" {
			label := strings.TrimSuffix(r.Name, "."+s.addr.Domain+".")
			want[label] = append(want[label], r.Data())
		}
	}
	v.Expected = pick(want)
	got := map[string][]string{}
	for _, label := range labels {
		name := label + "." + s.addr.Domain
		a := s.env.lookup(ctx, name, dns.TypeSRV)
		got[label] = a.Values
		src := Source{Name: label + " SRV", Kind: KindSRV, Label: label, Where: name, Outcome: SourceSkipped}
		switch {
		case a.Err != nil:
			src.Detail, src.Reason = a.Err.Error(), ReasonDNSError
		case len(a.Values) == 0:
			src.Detail, src.Reason = "no record", ReasonNoRecord
		default:
			src.Detail = strings.Join(a.Values, ", ")
			src.Reason, src.Value = ReasonRecords, src.Detail
			if st := pick(map[string][]string{label: a.Values}); st != nil {
				src.Reason, src.Value = "", ""
				src.Settings = st
				src.Outcome = SourceUsable
				if v.Settings == nil {
					src.Outcome, v.Settings = SourceUsed, st
				}
			}
		}
		v.Sources = append(v.Sources, src)
	}
	s.finish(&v)
	if v.Settings != nil {
		// Both write the bare local part; the server needs the address.
		v.Findings = append(v.Findings, finding.New("clients.local-part-username", finding.Vars{"value": client, "field": s.addr.Local, "address": s.addr.String()},
			client+" writes user "+s.addr.Local))
	}
	return v
}
