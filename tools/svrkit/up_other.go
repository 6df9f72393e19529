//go:build !linux

package main

import "syscall"

// privateFiles is a no-op where umask is not available.
func privateFiles() {}

// dieWithParent has no portable equivalent outside Linux: there a killed up
// leaves its services running.
func dieWithParent(*syscall.SysProcAttr) {}
