package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/svrkit/svrkit/tools/svrkit/upstate"
)

// The backend's CPU: imload reads every backend process's user and system
// time from /proc/PID/stat before and after a run, so "CPU per delivered
// message" is what the backend spent, not imload itself (which shares the
// machine and would otherwise blur push against polling).

// clockTick is Linux's USER_HZ, the unit of /proc/PID/stat's times: 100
// on every architecture Go runs Linux on.
const clockTick = 10 * time.Millisecond

// processes are the backend's processes, by instance name.
type processes map[string]int

// backend reads, from svrkit up's state file, the PIDs of the instances
// (for their CPU) and their admin addresses (for the calls they served,
// rpcs.go).
func backend(statePath string) (processes, admins, error) {
	st, err := upstate.Read(statePath)
	if err != nil {
		return nil, nil, err
	}
	ps, as := processes{}, admins{}
	for _, in := range st.Instances {
		if in.PID > 0 {
			ps[in.Name] = in.PID
		}
		if in.Admin != "" {
			as[in.Name] = in.Admin
		}
	}
	return ps, as, nil
}

// cpuTimes returns each process's CPU time so far (user + system); a
// process that is gone is left out.
func (ps processes) cpuTimes() map[string]time.Duration {
	out := map[string]time.Duration{}
	for name, pid := range ps {
		if d, err := processCPU(pid); err == nil {
			out[name] = d
		}
	}
	return out
}

// processCPU reads utime + stime of pid.
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// count fields after its closing one. utime and stime are fields 14
	// and 15, so the 12th and 13th after it.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad times", pid)
	}
	return time.Duration(u+st) * clockTick, nil
}

// cpuSpent returns what each process spent between two readings, and the
// total; a process missing from either (restarted) is left out.
func cpuSpent(before, after map[string]time.Duration) (map[string]time.Duration, time.Duration) {
	by := map[string]time.Duration{}
	var total time.Duration
	for name, a := range after {
		if b, ok := before[name]; ok && a >= b {
			by[name] = a - b
			total += a - b
		}
	}
	return by, total
}
