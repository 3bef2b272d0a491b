package console

import (
	"mailsetup/server/observe"
	"mailsetup/templates"
)

// The observations store's types as the staff pages' views (templates
// may not import the server).

func troublesView(in []observe.Trouble) []templates.StaffTrouble {
	out := make([]templates.StaffTrouble, len(in))
	for i, t := range in {
		out[i] = templates.StaffTrouble{Address: t.Address, Last: t.Last, Worst: t.Worst.String(), Findings: t.Findings}
	}
	return out
}

func redownloadsView(in []observe.DomainRedownloads) []templates.StaffRedownloads {
	out := make([]templates.StaffRedownloads, len(in))
	for i, d := range in {
		out[i] = templates.StaffRedownloads{Domain: d.Domain, Accounts: d.Accounts, Messages: d.Messages, Last: d.Last, Addresses: d.Addresses}
	}
	return out
}

func observationsView(a observe.Account) templates.StaffObservations {
	v := templates.StaffObservations{FirstSeen: a.FirstSeen, LastSeen: a.LastSeen}
	for _, s := range a.Sent {
		v.Sent = append(v.Sent, templates.StaffSent{Time: s.Time, Result: string(s.Result), Detail: s.Detail, TLS: s.TLS})
	}
	for _, l := range a.Logins {
		v.Logins = append(v.Logins, templates.StaffLogin{Protocol: string(l.Protocol), Client: l.Client, Remote: l.Remote, TLS: l.TLS, Count: l.Count, Last: l.Last})
	}
	for _, f := range a.Failures {
		v.Failures = append(v.Failures, templates.StaffFailure{Protocol: string(f.Protocol), Client: f.Client, Username: f.Username,
			Result: string(f.Result), Form: string(f.Form), Remote: f.Remote, Count: f.Count, Today: f.Today, Last: f.Last})
	}
	for _, r := range a.Refusals {
		v.Refusals = append(v.Refusals, templates.StaffRefusal{Protocol: string(r.Protocol), Result: string(r.Result), Detail: r.Detail,
			Remote: r.Remote, Count: r.Count, Last: r.Last})
	}
	for _, p := range a.POP3 {
		v.POP3 = append(v.POP3, templates.StaffPOP3Client{Remote: p.Remote, Sessions: p.Sessions, Retrieved: p.Retrieved,
			Redownloaded: p.Redownloaded, Deleted: p.Deleted, Messages: p.Maildrop.Messages, Bytes: p.Maildrop.Bytes, Last: p.Last})
	}
	return v
}

func timelineView(in []observe.Day) []templates.TimelineDay {
	out := make([]templates.TimelineDay, len(in))
	for i, d := range in {
		out[i] = templates.TimelineDay{Date: d.Date, Logins: d.Logins, BadPassword: d.BadPassword, UsernameForm: d.UsernameForm,
			Throttled: d.Throttled, Refused: d.Refused, Redownloaded: d.Redownloaded}
	}
	return out
}

func mistakesView(m observe.Mistakes) templates.ChartMistakes {
	return templates.ChartMistakes{Date: m.Date, LocalPart: m.LocalPart, NoAuth: m.NoAuth, LeaveForever: m.LeaveForever, Redownload: m.Redownload}
}

func overviewView(r observe.OverviewReport) templates.StaffOverview {
	v := templates.StaffOverview{AsOf: r.AsOf, Days: r.Days, Filter: r.Filter, Domains: r.Domains, Offset: r.Offset}
	for _, d := range r.All {
		v.All = append(v.All, mistakesView(d))
	}
	for _, d := range r.Page {
		v.Page = append(v.Page, templates.StaffDomainMistakes{Domain: d.Domain, Total: mistakesView(d.Total), Today: mistakesView(d.Today())})
	}
	return v
}
