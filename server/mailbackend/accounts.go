package mailbackend

// Known reports whether address is an account or an alias, reading
// the accounts journal's new lines (two stats when there are none) only
// when it is not: an account added by `mailsetup user add` since is
// seen at once. With a database the lookup is cached, unknown
// addresses too, until the change feed says otherwise.
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
	out, _ := m.accounts.Search(q, limit)
	return out
}
