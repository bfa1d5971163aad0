package postgres

// LoseAnswers makes s lose the answers to the commits for which lose returns true,
// as a connection lost between the commit and its answer does: the records are
// stored, and the writer does not know it.
func LoseAnswers(s *Store, lose func() bool) { s.loseAnswer.Store(&lose) }
