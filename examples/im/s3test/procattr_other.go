//go:build !linux

package s3test

import "syscall"

// procAttr puts weed in its own process group (Stop signals the group).
func procAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
