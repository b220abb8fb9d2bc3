package revocation

// Len returns how many sessions and users the state holds entries for.
func (l *List) Len() (sessions, users int) {
	s := l.state.Load()
	return len(s.sessions), len(s.users) + len(s.clients)
}
