package documents

// Running returns the number of operations running, for user and in all.
func (s *Slots) Running(user int64) (ofUser, all int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byUser[user], s.running
}
