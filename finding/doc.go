// Package finding is the findings catalog: the Severity scale, the
// Finding a report or the support console shows, and Catalog, every
// kind of finding by its stable, documented id ("area.thing") with its
// severity, title, the fix in the words of the client's settings dialog
// and one line for support staff. New builds a finding from its id and
// the placeholder values; Merge folds findings of one id (a fix is said
// once); Sort orders them worst first, then in catalog order.
//
// The probe (what the live check found) and the server's observations
// (what the server saw from an account's clients) both build their
// findings here, so the two read alike. A Finding's JSON ({"id",
// "severity", "title", "evidence", "fix", "staff"}) is part of the
// probe's report and of the support API.
//
// Imports: the standard library only; nothing of this project.
package finding
