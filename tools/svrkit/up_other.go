//go:build !linux

package main

import "syscall"

// dieWithParent has no portable equivalent outside Linux: there a killed up
// leaves its services running.
func dieWithParent(*syscall.SysProcAttr) {}
