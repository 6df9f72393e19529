package monitor

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/svrkit/svrkit/svrkit/monitor/internal/shm"
)

// Environment variables that steer a process's region when Open is not
// called with explicit Options.
const (
	// EnvDir names the directory of region files (default DefaultDir).
	EnvDir = "SVRKIT_MONITOR_DIR"
	// EnvService names the service (default: the executable's name).
	EnvService = "SVRKIT_MONITOR_SERVICE"
)

// DefaultDir is where regions live when neither Options.Dir nor EnvDir
// says otherwise: in memory on Linux, the temporary directory elsewhere.
func DefaultDir() string {
	if d := os.Getenv(EnvDir); d != "" {
		return d
	}
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		return "/dev/shm/svrkit-monitor"
	}
	return filepath.Join(os.TempDir(), "svrkit-monitor")
}

// Options say where a process's region goes.
type Options struct {
	// Service names the process's service (a Logicsvr's name); the center
	// shows it and the framework points carry it. Default: EnvService,
	// else the executable's base name.
	Service string
	// Dir is the region directory the machine's agent reads (default
	// DefaultDir()).
	Dir string
	// Capacity bounds the points of the process (default 65,536).
	Capacity int
	// Logger receives the region's problems (default slog.Default()).
	Logger *slog.Logger
}

var (
	regionMu  sync.Mutex
	region    *shm.Writer
	regionLog atomic.Pointer[slog.Logger]
)

func logger() *slog.Logger {
	if l := regionLog.Load(); l != nil {
		return l
	}
	return slog.Default()
}

// Open creates the process's region now, with o's settings, and returns
// the problems of the declarations made so far (see Problems). Without it
// the region is created with the defaults on the first Add or Set. Calling
// it once the region exists changes nothing and returns an error saying
// so, unless o asks for what exists. A region that cannot be created (an
// unwritable directory) is replaced by private memory, so that Add and Set
// keep working unseen, and Open returns why.
func Open(o Options) error {
	regionMu.Lock()
	defer regionMu.Unlock()
	if region != nil {
		if o.Service != "" && o.Service != region.Header().Service {
			return fmt.Errorf("monitor: region already open for service %q, not %q", region.Header().Service, o.Service)
		}
		return errors.Join(declErrs...)
	}
	err := openLocked(o)
	return errors.Join(err, errors.Join(declErrs...))
}

// Region returns the path of the process's region file ("" when none is
// open or it fell back to private memory).
func Region() string {
	regionMu.Lock()
	defer regionMu.Unlock()
	if region == nil {
		return ""
	}
	return region.Path()
}

// Service returns the service name of the process's region ("" before it
// opens).
func Service() string {
	regionMu.Lock()
	defer regionMu.Unlock()
	if region == nil {
		return ""
	}
	return region.Header().Service
}

func openLocked(o Options) error {
	if o.Logger != nil {
		regionLog.Store(o.Logger)
	}
	if o.Service == "" {
		o.Service = os.Getenv(EnvService)
	}
	if o.Service == "" {
		o.Service = filepath.Base(os.Args[0])
	}
	if o.Dir == "" {
		o.Dir = DefaultDir()
	}
	capacity := uint32(shm.DefaultCapacity)
	if o.Capacity > 0 && o.Capacity <= shm.MaxCapacity {
		capacity = uint32(o.Capacity)
	}
	// Regions of processes that died while no agent ran would pile up in
	// memory; a start collects a bounded number of old ones.
	shm.RemoveStale(o.Dir, 10*time.Minute, 256)
	w, err := shm.Create(o.Dir, o.Service, capacity, shm.DefaultDeclBytes)
	if err != nil {
		var perr error
		w, perr = shm.CreatePrivate(o.Service, capacity, shm.DefaultDeclBytes)
		if perr != nil {
			// Not even anonymous memory: leave region nil; points stay
			// unrecorded and cost one failed lookup each.
			return fmt.Errorf("monitor: no region, points are not recorded: %w", errors.Join(err, perr))
		}
		err = fmt.Errorf("monitor: points are recorded in private memory, unseen by the agent: %w", err)
		logger().Error(err.Error())
	}
	region = w
	for _, id := range sortedIDs() {
		if merr := materializeLocked(declared[id]); merr != nil {
			err = errors.Join(err, merr)
		}
	}
	undeclared = namedLocked("svrkit.monitor.undeclared", Counter, "count")
	for _, e := range declErrs {
		logger().Error("monitor: declaration refused", "err", e)
	}
	return err
}

func sortedIDs() []ID {
	ids := make([]ID, 0, len(declared))
	for id := range declared {
		ids = append(ids, id)
	}
	for i := 1; i < len(ids); i++ {
		for j := i; j > 0 && ids[j] < ids[j-1]; j-- {
			ids[j], ids[j-1] = ids[j-1], ids[j]
		}
	}
	return ids
}

// ensureRegion opens the region with the defaults if nothing opened it.
func ensureRegion() bool {
	regionMu.Lock()
	defer regionMu.Unlock()
	if region == nil {
		if err := openLocked(Options{}); err != nil && region == nil {
			return false
		}
	}
	return region != nil
}

// The ID index: two levels of 4,096 entries each map an ID to its slot
// with two loads and no lock. Entries are written once, under regionMu.
const pageBits = 12

type idPage [1 << pageBits]atomic.Pointer[shm.Slot]

var idPages [1 << (24 - pageBits)]atomic.Pointer[idPage]

func slotOf(id ID) *shm.Slot {
	if id > MaxID {
		return nil
	}
	pg := idPages[id>>pageBits].Load()
	if pg == nil {
		return nil
	}
	return pg[id&(1<<pageBits-1)].Load()
}

func materializeLocked(d Decl) error {
	s, _, err := region.Declare(shm.Decl{ID: uint32(d.ID), Kind: shm.Kind(d.Kind), Name: d.Name, Unit: d.Unit, Alert: d.Alert})
	if err != nil {
		return fmt.Errorf("monitor ID %d (%s): %w", d.ID, d.Name, err)
	}
	pg := idPages[d.ID>>pageBits].Load()
	if pg == nil {
		pg = new(idPage)
		idPages[d.ID>>pageBits].Store(pg)
	}
	pg[d.ID&(1<<pageBits-1)].Store(s)
	return nil
}

// Add adds n to the point id: a counter's count (n ≥ 0) or a gauge's
// level (either sign). It is lock-free, allocates nothing and is safe from
// any goroutine. An undeclared id is counted under the framework point
// svrkit.monitor.undeclared and logged once per id.
func Add(id ID, n int64) {
	if s := slotOf(id); s != nil {
		s.Value.Add(n)
		return
	}
	slow(id, n, false)
}

// Set sets the gauge id to v. It is lock-free, allocates nothing and is
// safe from any goroutine. Setting a counter, or an undeclared id, is
// refused as Add refuses an undeclared id.
func Set(id ID, v int64) {
	if s := slotOf(id); s != nil && s.Flags.Load()&shm.FlagGauge != 0 {
		s.Value.Store(v)
		if s.Flags.Load()&shm.FlagSet == 0 {
			s.Flags.Or(shm.FlagSet)
		}
		return
	}
	slow(id, v, true)
}

var (
	undeclared     *shm.Slot
	undeclaredSeen sync.Map // ID -> struct{}, bounded by undeclaredLogMax
	undeclaredN    atomic.Int32
)

const undeclaredLogMax = 64

// slow handles a point without a slot: the region is not open yet, the ID
// was never declared, or Set was called on a counter.
func slow(id ID, v int64, set bool) {
	if s := slotOf(id); s == nil && ensureRegion() {
		if s = slotOf(id); s != nil {
			if set {
				Set(id, v)
			} else {
				Add(id, v)
			}
			return
		}
	}
	if u := undeclaredSlot(); u != nil {
		u.Value.Add(1)
	}
	if _, seen := undeclaredSeen.Load(id); seen || undeclaredN.Load() >= undeclaredLogMax {
		return
	}
	if _, loaded := undeclaredSeen.LoadOrStore(id, struct{}{}); loaded {
		return
	}
	undeclaredN.Add(1)
	if d, ok := Lookup(id); ok && set {
		logger().Error("monitor: Set on a counter; use Add, or declare the point a gauge", "id", uint32(id), "name", d.Name)
		return
	}
	logger().Error("monitor: point used but never declared: declare it in the IDL (an enum value with option (svrkit.monitor)) or with monitor.Declare", "id", uint32(id))
}

func undeclaredSlot() *shm.Slot {
	regionMu.Lock()
	defer regionMu.Unlock()
	return undeclared
}
