package templates

import (
	"net/netip"
	"time"

	"mailsetup/finding"
)

// The staff pages' views of what the server saw: the console
// (server/web/console) converts the observations store's types into
// these, so that templates never imports the server (the one-way rule
// server -> templates; internal/layout's test).

// StaffTrouble is an account with current findings, for the start
// page's list.
type StaffTrouble struct {
	Address string
	// Last is the latest problem event.
	Last time.Time
	// Worst is the worst finding's severity ("critical", ...).
	Worst    string
	Findings []finding.Finding
}

// StaffRedownloads is one domain's POP3 re-downloads of the last hours
// (the alarm after a cutover).
type StaffRedownloads struct {
	Domain             string
	Accounts, Messages int
	Last               time.Time
	// Addresses are a few of the accounts, most recent first.
	Addresses []string
}

// StaffObservations is what the server saw of an account's clients,
// the raw lists of the account page.
type StaffObservations struct {
	FirstSeen, LastSeen time.Time
	Sent                []StaffSent
	Logins              []StaffLogin
	Failures            []StaffFailure
	Refusals            []StaffRefusal
	POP3                []StaffPOP3Client
}

// StaffSent is one outbound delivery's outcome (Result "ok" is
// delivered).
type StaffSent struct {
	Time           time.Time
	Result, Detail string
	TLS            bool
}

// StaffLogin is a group of successful logins.
type StaffLogin struct {
	Protocol, Client string
	Remote           netip.Addr
	TLS              bool
	Count            int
	Last             time.Time
}

// StaffFailure is a group of refused logins: Result is why, Form the
// username's form.
type StaffFailure struct {
	Protocol, Client, Username, Result, Form string
	Remote                                   netip.Addr
	Count, Today                             int
	Last                                     time.Time
}

// StaffRefusal is a group of refused submissions.
type StaffRefusal struct {
	Protocol, Result, Detail string
	Remote                   netip.Addr
	Count                    int
	Last                     time.Time
}

// StaffPOP3Client adds up the POP3 sessions from one address; Messages
// and Bytes are the maildrop at the last session.
type StaffPOP3Client struct {
	Remote                                     netip.Addr
	Sessions, Retrieved, Redownloaded, Deleted int
	Messages                                   int
	Bytes                                      int64
	Last                                       time.Time
}

// TimelineDay is one UTC day of an account's timeline.
type TimelineDay struct {
	// Date is the day's start (00:00 UTC).
	Date time.Time
	// Logins succeeded; BadPassword, UsernameForm and Throttled are the
	// refused logins by reason; Refused the refused submissions;
	// Redownloaded the messages POP3 clients retrieved again.
	Logins, BadPassword, UsernameForm, Throttled, Refused, Redownloaded int
}

// Failures returns the day's refused logins, all reasons.
func (d TimelineDay) Failures() int { return d.BadPassword + d.UsernameForm + d.Throttled }

// ChartMistakes are the accounts that made each of the incident's
// mistakes on one UTC day (or in a period).
type ChartMistakes struct {
	// Date is the day's start (00:00 UTC); zero in a total.
	Date                                        time.Time
	LocalPart, NoAuth, LeaveForever, Redownload int
}

// Sum returns the four together: the size of the day's bar.
func (m ChartMistakes) Sum() int { return m.LocalPart + m.NoAuth + m.LeaveForever + m.Redownload }

// StaffOverview is the overview of the selected domains: the trend
// (All, per day), how many Domains have any mistake, and one page of
// them from Offset.
type StaffOverview struct {
	// AsOf is when it was counted (the console keeps it a few seconds).
	AsOf            time.Time
	Days            int
	Filter          string
	All             []ChartMistakes
	Domains, Offset int
	Page            []StaffDomainMistakes
}

// StaffDomainMistakes is one domain's mistakes in the period (Total)
// and today.
type StaffDomainMistakes struct {
	Domain       string
	Total, Today ChartMistakes
}
