package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"
)

// build compiles every service's main, two at a time.
func (u *up) build(topo *topology, binDir string) error {
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return err
	}
	start := time.Now()
	u.logf("building %d services into %s", len(topo.Services), binDir)
	sem := make(chan struct{}, 2)
	errs := make([]error, len(topo.Services))
	var wg sync.WaitGroup
	for i, s := range topo.Services {
		s.bin = filepath.Join(binDir, s.Name)
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			cmd := exec.CommandContext(u.e.ctx, "go", "build", "-o", s.bin, s.Package)
			cmd.Dir = u.dir
			if out, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("building %s (%s): %v\n%s", s.Name, s.Package, err, out)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	u.logf("built in %v", time.Since(start).Round(time.Millisecond))
	return nil
}
