package s3test

import "syscall"

// procAttr puts weed in its own process group (Stop signals the group)
// and has the kernel kill it if the test process dies first.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
