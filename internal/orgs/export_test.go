package orgs

// Membership is one membership to Set.
type Membership struct {
	User, Org int64
	Roles     []string // nil removes the membership
}

// Set applies memberships to the copy at once, as a catch-up would.
func (m *Memberships) Set(ms ...Membership) {
	m.mu.Lock()
	defer m.mu.Unlock()
	set := make(map[memberKey]*roleSet, len(ms))
	for _, x := range ms {
		var rs *roleSet
		if x.Roles != nil {
			rs = m.sets.get(normalize(x.Roles))
		}
		set[memberKey{x.User, x.Org}] = rs
	}
	m.apply(set)
}

// InternedSets returns how many distinct sets of roles the copy holds.
func (m *Memberships) InternedSets() int { return m.sets.len() }
