package mailbackend

import "strings"

// Known reports whether address is an account or an alias, re-reading
// the accounts file (one stat) only when it is not: an account added
// by `mailsetup user add` since is seen at once.
func (m *Backend) Known(address string) bool {
	if _, ok := m.accounts.Resolve(address); ok {
		return true
	}
	_ = m.accounts.Reload() // a failed reload keeps the last good accounts
	_, ok := m.accounts.Resolve(address)
	return ok
}

// Search returns up to limit accounts whose address or an alias
// contains q (lower case), sorted.
func (m *Backend) Search(q string, limit int) []string {
	_ = m.accounts.Reload() // a failed reload keeps the last good accounts
	var out []string
	for _, a := range m.accounts.List() {
		match := strings.Contains(strings.ToLower(a.Address), q)
		for _, al := range a.Aliases {
			match = match || strings.Contains(strings.ToLower(al), q)
		}
		if match {
			out = append(out, a.Address)
			if len(out) >= limit {
				break
			}
		}
	}
	return out
}
