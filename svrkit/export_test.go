package svrkit

// WaitingWorkers returns how many of s's workers wait on an outgoing
// call, for the tests of the worker pool's CPU check.
func WaitingWorkers(s *Server) int64 { return s.workers.waiting.Load() }

// SetAdmissionLevel sets s's admission level, as its overload control
// would: requests below (business, user) are refused.
func SetAdmissionLevel(s *Server, business, user uint8) {
	s.adm.level.Store(uint32(business)<<7 | uint32(user))
}
