package groups

import (
	"context"
	"sync"
)

// ForEach calls f(ctx, i) for i in [0, n), at most parallel at a time,
// and returns the first error; after one, the calls not started yet are
// not made and the running ones see ctx cancelled. It is how the group
// services do one call per member (up to MaxMembers) without one
// goroutine per member or one member at a time.
func ForEach(ctx context.Context, n, parallel int, f func(ctx context.Context, i int) error) error {
	if n == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu    sync.Mutex
		next  int
		first error
		wg    sync.WaitGroup
	)
	take := func() (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		if next >= n || first != nil {
			return 0, false
		}
		next++
		return next - 1, true
	}
	for range min(max(parallel, 1), n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i, ok := take()
				if !ok {
					return
				}
				if err := f(ctx, i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
						cancel()
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}
