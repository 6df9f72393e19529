package monitor

import (
	"strings"

	"github.com/svrkit/svrkit/svrkit/monitor/internal/shm"
)

// Framework points have no ID: they are named series,
// name{label="value",...}, made as the framework meets methods and codes,
// and known to the center by name. Their names start with "svrkit.".

var namedSlots = map[string]*shm.Slot{} // guarded by regionMu

// named returns the slot of a framework series, declaring it the first
// time; nil when there is no region.
func named(name string, kind Kind, unit string) *shm.Slot {
	if !ensureRegion() {
		return nil
	}
	regionMu.Lock()
	defer regionMu.Unlock()
	return namedLocked(name, kind, unit)
}

func namedLocked(name string, kind Kind, unit string) *shm.Slot {
	if s := namedSlots[name]; s != nil {
		return s
	}
	if region == nil {
		return nil
	}
	s, _, err := region.Declare(shm.Decl{Kind: shm.Kind(kind), Name: name, Unit: unit})
	if err != nil {
		logger().Error("monitor: framework point not recorded", "name", name, "err", err)
		return nil
	}
	namedSlots[name] = s
	return s
}

// SeriesName formats a framework series name with its labels, in the
// order given: SeriesName("svrkit.server.calls", "method", "/a.B/C") is
// svrkit.server.calls{method="/a.B/C"}.
func SeriesName(name string, labels ...string) string {
	if len(labels) == 0 {
		return name
	}
	var b strings.Builder
	b.WriteString(name)
	b.WriteByte('{')
	for i := 0; i+1 < len(labels); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(labels[i])
		b.WriteString(`="`)
		b.WriteString(strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(labels[i+1]))
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}
