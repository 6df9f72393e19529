package monitor

import (
	"errors"
	"fmt"
	"regexp"

	"github.com/svrkit/svrkit/svrkit/monitor/internal/shm"
	"github.com/svrkit/svrkit/svrkit/monitor/rule"
)

// ID is a monitor point's number, declared once in the IDL (see Decl). IDs
// are unique across everything reporting to one monitor center.
type ID uint32

// MaxID is the largest ID.
const MaxID ID = 1<<24 - 1

// Kind says how a point's value behaves.
type Kind uint8

const (
	// Counter points count events: Add(id, n) with n ≥ 0. A curve shows
	// how much they grew per period, summed over the machine's processes.
	Counter Kind = Kind(shm.Counter)
	// Gauge points are levels: Set(id, v), or Add up and down. A curve
	// shows the value, summed over the machine's live processes; a
	// process that exits stops contributing.
	Gauge Kind = Kind(shm.Gauge)
)

func (k Kind) String() string { return shm.Kind(k).String() }

// Decl declares one monitor point. protoc-gen-svrkit generates a table of
// them from enum values carrying (svrkit.monitor) options and declares it
// in the generated package's init; hand-written declarations work the
// same.
type Decl struct {
	ID ID
	// Name is unique, dotted lower-case words: "im.messages_sent.text".
	// Names starting "svrkit." belong to the framework.
	Name string
	// Unit says what one counts: "count", "ms", "bytes", "connections".
	Unit string
	Kind Kind
	// Alert is an optional alert rule the center evaluates on the curve
	// (syntax: package rule), e.g. "sum over 1m > 100 for 2m".
	Alert string
}

var nameSyntax = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$`)

// Check reports what is wrong with d, or nil.
func (d Decl) Check() error {
	switch {
	case d.ID == 0 || d.ID > MaxID:
		return fmt.Errorf("monitor ID %d of %q is out of range 1..%d", d.ID, d.Name, MaxID)
	case !nameSyntax.MatchString(d.Name):
		return fmt.Errorf("monitor ID %d: name %q must be dotted lower-case words (letters, digits, '_')", d.ID, d.Name)
	case len(d.Name) > shm.MaxFieldLen || len(d.Unit) > 32:
		return fmt.Errorf("monitor ID %d: name or unit too long", d.ID)
	case d.Kind != Counter && d.Kind != Gauge:
		return fmt.Errorf("monitor ID %d (%s): kind must be Counter or Gauge", d.ID, d.Name)
	}
	if d.Alert != "" {
		if _, err := rule.Parse(d.Alert); err != nil {
			return fmt.Errorf("monitor ID %d (%s): alert rule: %w", d.ID, d.Name, err)
		}
	}
	return nil
}

// declared is every declaration the process made, by ID, and the problems
// declarations had. Guarded by regionMu.
var (
	declared   = map[ID]Decl{}
	declByName = map[string]ID{}
	declErrs   []error
)

// Declare declares monitor points. A declaration that repeats an earlier
// one is a no-op; one that conflicts with an earlier one (the same ID with
// another name, unit, kind or rule, or the same name with another ID) or
// is invalid is ignored, and the error is logged and returned by Open and
// Problems. Declare never panics: it runs in package init.
func Declare(decls ...Decl) {
	regionMu.Lock()
	defer regionMu.Unlock()
	for _, d := range decls {
		if err := declareLocked(d); err != nil {
			declErrs = append(declErrs, err)
			if region != nil {
				logger().Error("monitor: declaration refused", "err", err)
			}
		}
	}
}

func declareLocked(d Decl) error {
	if err := d.Check(); err != nil {
		return err
	}
	if prev, ok := declared[d.ID]; ok {
		if prev == d {
			return nil
		}
		return fmt.Errorf("monitor ID %d is declared twice, differently: %+v and %+v", d.ID, prev, d)
	}
	if id, ok := declByName[d.Name]; ok {
		return fmt.Errorf("monitor name %q is declared for IDs %d and %d", d.Name, id, d.ID)
	}
	declared[d.ID] = d
	declByName[d.Name] = d.ID
	if region != nil {
		return materializeLocked(d)
	}
	return nil
}

// Problems returns every declaration the process refused, and why.
func Problems() error {
	regionMu.Lock()
	defer regionMu.Unlock()
	return errors.Join(declErrs...)
}

// Lookup returns the declaration of id.
func Lookup(id ID) (Decl, bool) {
	regionMu.Lock()
	defer regionMu.Unlock()
	d, ok := declared[id]
	return d, ok
}
