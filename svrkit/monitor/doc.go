// Package monitor is svrkit's ID-Value monitoring, after QQ's: a monitor
// point is a number (an ID) declared once with a name, a unit and an
// optional alert rule, and recording it is one call:
//
//	monitor.Add(im.Monitor_REGISTRATIONS_ID, 1)        // a counter: one more registration
//	monitor.Set(im.Monitor_ONLINE_DEVICES_ID, n)       // a gauge: the level now
//
// Declare points in the IDL, as enum values with option (svrkit.monitor)
// (see idl/svrkit/options.proto); `svrkit gen` emits the typed constants
// and a declaration table the generated package declares at init. Every
// server and client also records framework points per method — calls,
// errors by code, latency buckets — through ServerInterceptor and
// ClientInterceptor, and SampleProcess records the process's vital signs.
//
// # Data flow
//
//	process: Add/Set ──atomic──> its region file (/dev/shm/svrkit-monitor/*.svrmon)
//	agent (one per machine): reads every region each period ──svrkit RPC──> monitor center
//	center (a Logicsvr): curves per point and machine, alerts, dashboard, Prometheus
//
// A region (package internal/shm has the layout) is the process's points
// in a memory-mapped file: 16 bytes per point, and the declarations that
// name them, so the agent needs nothing but the file. Add is a locked add
// on the point's word, found through a two-level table indexed by ID: no
// lock, no allocation, no system call. The agent reads the words with
// plain loads.
//
// # Restarts: what is kept and what is not
//
// Regions are per process. A process that dies, however it dies, leaves
// its region behind with every count it made up to its last instruction:
// the agent notices the owner is gone (its file lock is released), reports
// the final values and only then deletes the file. So a crash loses no
// count (nothing it should keep). Its gauges stop contributing at once —
// the online count of a dead process is not online — and the restarted
// process starts a new region from zero (nothing it should not keep).
// Counters are reported as cumulative values and turned into per-second
// increases by the center, which remembers each region's last value: an
// agent that restarts re-reads the regions and resends cumulative values,
// so it counts nothing twice. Regions live in memory: a machine reboot
// loses them along with the processes.
//
// # Errors
//
// Recording never fails and never panics: an ID that was never declared
// is counted under svrkit.monitor.undeclared and logged once; a process
// that cannot create its region file records into private memory and says
// so once. Declarations that conflict (one ID, two names) are refused and
// reported by Open and Problems; conflicts between processes are the
// agent's and the center's to report.
package monitor
