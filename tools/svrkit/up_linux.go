package main

import "syscall"

// privateFiles makes what up and its services create readable by their
// owner only: the umask is inherited by every service up starts.
func privateFiles() { syscall.Umask(0o077) }

// dieWithParent asks the kernel to send SIGTERM to a service when up dies,
// so services do not outlive an up that was killed with SIGKILL (a SIGTERM
// or Ctrl-C to up stops them itself). A service then drains as on any
// SIGTERM.
func dieWithParent(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGTERM }
