package svrkit

// WaitingWorkers returns how many of s's workers wait on an outgoing
// call, for the tests of the worker pool's CPU check.
func WaitingWorkers(s *Server) int64 { return s.workers.waiting.Load() }
