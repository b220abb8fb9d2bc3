package orgs

// Set applies memberships to the copy at once, as a catch-up would.
func (m *Memberships) Set(ms ...Membership) { m.Apply(0, ms...) }

// InternedSets returns how many distinct sets of roles the copy holds.
func (m *Memberships) InternedSets() int { return m.sets.len() }
