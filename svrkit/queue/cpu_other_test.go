//go:build !unix

package queue_test

import "time"

func processCPU() time.Duration { return 0 }
