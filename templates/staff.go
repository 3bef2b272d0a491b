package templates

import (
	"io"
	"time"

	"mailsetup/autoconfig"
	"mailsetup/finding"
	"mailsetup/probe"
	"mailsetup/probe/clients"
)

// The staff console's pages (staff_*.html, laid out by
// staff_layout.html). Package server/web/console fills these view
// models from the session, the observations and the probe; the
// templates only lay them out.

// StaffFrame is what every console page has besides the Frame: who is
// signed in (empty on the sign-in page, which then shows no menu).
// Frame.CSRF is the session's token, for the sign-out button and the
// page's forms.
type StaffFrame struct {
	Frame
	User string
}

// StaffSignInPage is the sign-in form (staff_signin.html); Frame.CSRF
// is the signed form token.
type StaffSignInPage struct {
	StaffFrame
	// Next is the console page to go to after signing in.
	Next string
	// Name is the name as typed, to re-fill the form.
	Name  string
	Error string
}

// StaffAuditEntry is one line of the audit log as the console shows it.
type StaffAuditEntry struct {
	Time time.Time
	// Staff is the staff member's name, or "token:<name>" for the API.
	Staff, Action, Target, Remote, Detail string
}

// StaffHomePage is the start page (staff_home.html): the lookup form,
// a partial search's matches and the accounts in trouble.
type StaffHomePage struct {
	StaffFrame
	Address, Error string
	// Matches are the accounts a partial address matched.
	Matches []string
	// DomainCount is how many domains are served here; DomainMatches
	// how many of them contain DomainFilter (all without one); Domains
	// one page of those, by name, the first being number DomainsFrom;
	// DomainsPrev and DomainsNext link to the pages around it.
	DomainCount, DomainMatches int
	DomainFilter               string
	Domains                    []string
	DomainsFrom                int
	DomainsPrev, DomainsNext   string
	// FirstDomain is a served domain for the address field's example.
	FirstDomain string
	// Recent are the signed-in member's latest lookups and probes.
	Recent []StaffAuditEntry
	// Troubles are the accounts whose clients had trouble in the last
	// 24 hours; ShowTroubles is false when the server observes nothing.
	Troubles     []StaffTrouble
	ShowTroubles bool
	// Redownloads are the domains whose accounts' POP3 clients
	// downloaded messages again in the last 24 hours (the alarm after a
	// cutover); the box is shown only when there are any.
	Redownloads []StaffRedownloads
}

// StaffAccountInfo is what the console shows of the account itself.
type StaffAccountInfo struct {
	Exists          bool
	Aliases         []string
	QuotaBytes      int64
	Created         time.Time
	PasswordChanged time.Time
	// Messages, Bytes and Oldest describe the inbox, when it was read.
	MailboxKnown bool
	Messages     int
	Bytes        int64
	Oldest       time.Time
}

// StaffLoginBlock is one block of the shared login throttle.
type StaffLoginBlock struct {
	What string // "the account" or an address
	Wait string // "12 minutes"
}

// StaffAccountPage is an account's view (staff_account.html).
type StaffAccountPage struct {
	StaffFrame
	Address string
	Policy  autoconfig.Policy
	Account StaffAccountInfo
	// Observed is false when the server saw nothing of the account in
	// the retention period (or runs without mail).
	Observed     bool
	Observations StaffObservations
	Findings     []finding.Finding
	// Form is the probe form as typed, Error what is wrong with it.
	Form  HelpCheckForm
	Error string
	// Blocks are the login blocks of the shared throttle that concern
	// the account now: its own, and those of the addresses its clients
	// failed from in the last day.
	Blocks []StaffLoginBlock
	// Clients is what each mail program would set up (asked for with
	// ?clients=1); ClientsError why it could not be shown.
	Clients      *clients.ClientsReport
	ClientsError string
	// Timeline is the account's last days drawn (TimelineChart), nil
	// when the server observes nothing.
	Timeline *ChartDrawing
}

// StaffOverviewPage is the ISP's overview (staff_overview.html): per
// domain and day the accounts whose clients made the incident's
// mistakes, the trend of the selected domains, and their CSV.
type StaffOverviewPage struct {
	StaffFrame
	// Observed is false when the server observes nothing (no mail
	// listeners and no log sources).
	Observed bool
	Report   StaffOverview
	// Trend is Report.All drawn (OverviewChart).
	Trend ChartDrawing
	// Filter is the domain filter as typed; Error what is wrong with it.
	Filter, Error string
	// Prev and Next are the links to the neighbouring pages of domains
	// ("" on the first and last), CSV the CSV of this selection.
	Prev, Next, CSV string
	// From is the number of the page's first domain (1 on the first).
	From int
}

// StaffReportPage is a probe report (staff_report.html); Print is the
// printable view, without the menu.
type StaffReportPage struct {
	StaffFrame
	ID     string
	Report *probe.Report
	Print  bool
	// Steps are the report's steps, worst first; Right and Wrong its
	// findings that are OK and the others.
	Steps []probe.Step
	Right []finding.Finding
	Wrong []finding.Finding
}

// OutgoingAuth is what the caller said of "my outgoing server requires
// authentication": "on", "off", or "" when they did not say.
func (p *StaffReportPage) OutgoingAuth() string {
	if p.Report == nil || p.Report.Client == nil || p.Report.Client.Outgoing.Auth == nil {
		return ""
	}
	if *p.Report.Client.Outgoing.Auth {
		return "on"
	}
	return "off"
}

// StaffAuditPage is the latest audit log entries (staff_audit.html).
type StaffAuditPage struct {
	StaffFrame
	Entries []StaffAuditEntry
}

// StaffSignIn renders the sign-in form.
func (s *Set) StaffSignIn(w io.Writer, p StaffSignInPage) error {
	return s.render(w, "staff_signin.html", &p)
}

// StaffHome renders the console's start page.
func (s *Set) StaffHome(w io.Writer, p StaffHomePage) error {
	return s.render(w, "staff_home.html", &p)
}

// StaffAccount renders an account's view.
func (s *Set) StaffAccount(w io.Writer, p StaffAccountPage) error {
	return s.render(w, "staff_account.html", &p)
}

// StaffReport renders a probe report.
func (s *Set) StaffReport(w io.Writer, p StaffReportPage) error {
	return s.render(w, "staff_report.html", &p)
}

// StaffOverview renders the ISP's overview.
func (s *Set) StaffOverview(w io.Writer, p StaffOverviewPage) error {
	return s.render(w, "staff_overview.html", &p)
}

// StaffAudit renders the audit log page.
func (s *Set) StaffAudit(w io.Writer, p StaffAuditPage) error {
	return s.render(w, "staff_audit.html", &p)
}
