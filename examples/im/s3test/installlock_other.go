//go:build !unix

package s3test

import "context"

// lockInstall is a no-op where flock is not available: concurrent test
// processes may then build weed twice (see installlock_unix.go).
func lockInstall(context.Context, string, func()) (func(), error) { return func() {}, nil }
