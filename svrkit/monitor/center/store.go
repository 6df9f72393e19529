package center

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// The store keeps curves in pebble, in three resolutions, each in its own
// key space partitioned by time so that retention drops whole partitions
// with one range deletion:
//
//	r part series machine second  -> {sum, n} (merge: adds)     part = 1 hour
//	m part series machine minute  -> {sum, n} (merge: adds)     part = 1 day
//	h part series machine hour    -> {sum, n} (merge: adds)     part = 30 days
//
// Series 0 is the machines' heartbeat: 1 per second a machine reported.
//
// All integers are big-endian, so keys sort by time within a series and
// machine, and a query is one seek per partition it spans. A counter's
// per-second value is its increase in that second, stored only when not
// zero: a second with a heartbeat and no value is a zero, a second
// without a heartbeat is a gap. Every level is a merge of {sum, n}, so
// two reports in one second (an agent reading faster than once a second)
// add up, and a gauge's value is the average of its readings. A gauge's value is stored every second it
// is set. Minute and hour rollups are pebble merge operands summed by the
// merger, so late points (an agent replaying its buffer) land in the
// right bucket without a read; they are gathered in memory and written
// every few seconds (see flushRollups).
//
// Catalog and state keys: n name -> series id; s id -> series record
// (JSON); M name -> machine id; g machine instance -> region state, G
// machine instance chunk -> 256 of its slots (region.go); a key -> alert
// state.
const (
	prefixRaw         = 'r'
	prefixMinute      = 'm'
	prefixHour        = 'h'
	prefixName        = 'n'
	prefixSeries      = 's'
	prefixMachine     = 'M'
	prefixRegion      = 'g'
	prefixRegionChunk = 'G'
	prefixAlert       = 'a'
)

// A level is one resolution of the store.
type level struct {
	prefix byte
	step   time.Duration // one point
	part   time.Duration // one partition
	name   string
}

var (
	levelRaw    = level{prefixRaw, time.Second, time.Hour, "second"}
	levelMinute = level{prefixMinute, time.Minute, 24 * time.Hour, "minute"}
	levelHour   = level{prefixHour, time.Hour, 30 * 24 * time.Hour, "hour"}
)

func (l level) partOf(unixSec int64) uint32 { return uint32(unixSec / int64(l.part/time.Second)) }
func (l level) bucketOf(unixSec int64) uint32 {
	return uint32(unixSec / int64(l.step/time.Second))
}

// pointKey is a curve point's key.
func pointKey(l level, series, machine uint32, unixSec int64) []byte {
	k := make([]byte, 17)
	k[0] = l.prefix
	binary.BigEndian.PutUint32(k[1:], l.partOf(unixSec))
	binary.BigEndian.PutUint32(k[5:], series)
	binary.BigEndian.PutUint32(k[9:], machine)
	binary.BigEndian.PutUint32(k[13:], l.bucketOf(unixSec))
	return k
}

// seriesPrefix is where one series' points of a partition start.
func seriesPrefix(l level, part, series uint32) []byte {
	k := make([]byte, 9)
	k[0] = l.prefix
	binary.BigEndian.PutUint32(k[1:], part)
	binary.BigEndian.PutUint32(k[5:], series)
	return k
}

// A rollup is the sum and count of a bucket's per-second values.
type rollup struct{ sum, n int64 }

func (r rollup) encode() []byte {
	b := binary.AppendVarint(nil, r.sum)
	return binary.AppendVarint(b, r.n)
}

func decodeRollup(b []byte) (rollup, error) {
	s, n1 := binary.Varint(b)
	if n1 <= 0 {
		return rollup{}, errors.New("bad rollup")
	}
	c, n2 := binary.Varint(b[n1:])
	if n2 <= 0 {
		return rollup{}, errors.New("bad rollup")
	}
	return rollup{s, c}, nil
}

// rollupMerger adds rollups. Its name is stored in the database.
var rollupMerger = &pebble.Merger{
	Name: "svrkit.monitor.rollup.v1",
	Merge: func(key, value []byte) (pebble.ValueMerger, error) {
		r, err := decodeRollup(value)
		if err != nil {
			return nil, err
		}
		return &rollupAcc{r}, nil
	},
}

type rollupAcc struct{ r rollup }

func (a *rollupAcc) add(b []byte) error {
	r, err := decodeRollup(b)
	if err != nil {
		return err
	}
	a.r.sum += r.sum
	a.r.n += r.n
	return nil
}

func (a *rollupAcc) MergeNewer(b []byte) error { return a.add(b) }
func (a *rollupAcc) MergeOlder(b []byte) error { return a.add(b) }
func (a *rollupAcc) Finish(bool) ([]byte, io.Closer, error) {
	return a.r.encode(), nil, nil
}

type quietLogger struct{}

func (quietLogger) Infof(string, ...any)         {}
func (quietLogger) Errorf(string, ...any)        {}
func (quietLogger) Fatalf(f string, args ...any) { panic(fmt.Sprintf(f, args...)) }

func openPebble(dir string) (*pebble.DB, error) {
	cache := pebble.NewCache(32 << 20)
	defer cache.Unref()
	return pebble.Open(dir, &pebble.Options{
		Cache: cache,
		// A report of a machine with many busy points is a batch of a
		// few MB; below half the memtable it is applied in place rather
		// than flushed as a memtable of its own, which costs several times
		// more.
		MemTableSize:       64 << 20,
		Logger:             quietLogger{},
		Merger:             rollupMerger,
		FormatMajorVersion: pebble.FormatNewest,
	})
}

// Retention says how long each resolution is kept.
type Retention struct {
	Raw    time.Duration
	Minute time.Duration
	Hour   time.Duration
}

// DefaultRetention keeps seconds for 26 hours (so that "vs yesterday"
// rules read seconds), minutes for 15 days and hours for 400 days.
var DefaultRetention = Retention{Raw: 26 * time.Hour, Minute: 15 * 24 * time.Hour, Hour: 400 * 24 * time.Hour}

// dropExpired deletes the partitions that lie wholly before each
// resolution's retention.
func dropExpired(db *pebble.DB, now time.Time, ret Retention) error {
	for _, x := range []struct {
		l    level
		keep time.Duration
	}{{levelRaw, ret.Raw}, {levelMinute, ret.Minute}, {levelHour, ret.Hour}} {
		cut := x.l.partOf(now.Add(-x.keep).Unix())
		if cut == 0 {
			continue
		}
		lo := []byte{x.l.prefix, 0, 0, 0, 0}
		hi := make([]byte, 5)
		hi[0] = x.l.prefix
		binary.BigEndian.PutUint32(hi[1:], cut)
		if err := db.DeleteRange(lo, hi, pebble.NoSync); err != nil {
			return err
		}
	}
	return nil
}
