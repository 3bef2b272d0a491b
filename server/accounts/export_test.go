package accounts

// SetCompactAt sets the smallest journal that is compacted (tests).
func (s *Store) SetCompactAt(n int64) { s.compactAt = n }
