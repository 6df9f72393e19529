package center

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"

	"github.com/cockroachdb/pebble/v2"
)

// regionKey names a region: its machine and its random instance.
type regionKey struct {
	machine  uint32
	instance uint64
}

// regionState is what the center remembers of a region: its last reading
// and what each slot is. It is stored as a header (g machine instance)
// and chunks of chunkSlots slots (G machine instance chunk), and a report
// rewrites only the chunks whose slots changed: a machine whose points are
// mostly quiet costs little to keep.
type regionState struct {
	service string
	lastMs  int64
	// synced: every slot's value is the last reading's; baselined: every
	// slot has a value from some full reading (stale, if not synced).
	synced, baselined bool
	series            []uint32 // slot -> series id (0: not declared yet)
	kinds             []uint8
	values            []int64
	set               []bool
	dirty             []bool // by chunk
}

const chunkSlots = 256

func (st *regionState) markDirty(slot int) {
	c := slot / chunkSlots
	for len(st.dirty) <= c {
		st.dirty = append(st.dirty, false)
	}
	st.dirty[c] = true
}

func regionDBKey(k regionKey) []byte {
	b := []byte{prefixRegion}
	b = binary.BigEndian.AppendUint32(b, k.machine)
	return binary.BigEndian.AppendUint64(b, k.instance)
}

func chunkKey(k regionKey, chunk uint32) []byte {
	b := []byte{prefixRegionChunk}
	b = binary.BigEndian.AppendUint32(b, k.machine)
	b = binary.BigEndian.AppendUint64(b, k.instance)
	return binary.BigEndian.AppendUint32(b, chunk)
}

func parseRegionDBKey(b []byte) (regionKey, bool) {
	if len(b) < 13 {
		return regionKey{}, false
	}
	return regionKey{binary.BigEndian.Uint32(b[1:]), binary.BigEndian.Uint64(b[5:])}, true
}

// save writes the header and the dirty chunks into b.
func (st *regionState) save(b *pebble.Batch, k regionKey) {
	h := binary.AppendUvarint(nil, uint64(len(st.service)))
	h = append(h, st.service...)
	h = binary.AppendVarint(h, st.lastMs)
	var flags byte
	if st.synced {
		flags |= 1
	}
	if st.baselined {
		flags |= 2
	}
	h = append(h, flags)
	h = binary.AppendUvarint(h, uint64(len(st.series)))
	b.Set(regionDBKey(k), h, nil)
	for c, d := range st.dirty {
		if !d {
			continue
		}
		st.dirty[c] = false
		var v []byte
		for i := c * chunkSlots; i < min(len(st.series), (c+1)*chunkSlots); i++ {
			v = binary.AppendUvarint(v, uint64(st.series[i]))
			f := st.kinds[i]
			if st.set[i] {
				f |= 0x80
			}
			v = append(v, f)
			v = binary.AppendVarint(v, st.values[i])
		}
		b.Set(chunkKey(k, uint32(c)), v, nil)
	}
}

func deleteRegion(b *pebble.Batch, k regionKey) {
	b.Delete(regionDBKey(k), nil)
	b.DeleteRange(chunkKey(k, 0), chunkKey(k, 1<<31), nil)
}

var errTruncated = errors.New("truncated region state")

func decodeRegionHeader(b []byte) (*regionState, int, error) {
	st := &regionState{}
	n, k := binary.Uvarint(b)
	if k <= 0 || uint64(len(b)-k) < n {
		return nil, 0, errTruncated
	}
	st.service = string(b[k : k+int(n)])
	b = b[k+int(n):]
	v, k := binary.Varint(b)
	if k <= 0 || len(b) < k+1 {
		return nil, 0, errTruncated
	}
	st.lastMs, st.synced, st.baselined = v, b[k]&1 != 0, b[k]&2 != 0
	slots, k2 := binary.Uvarint(b[k+1:])
	if k2 <= 0 || slots > maxValuesPerRegion {
		return nil, 0, errTruncated
	}
	st.series = make([]uint32, slots)
	st.kinds = make([]uint8, slots)
	st.values = make([]int64, slots)
	st.set = make([]bool, slots)
	return st, int(slots), nil
}

func (st *regionState) decodeChunk(chunk uint32, b []byte) error {
	for i := int(chunk) * chunkSlots; len(b) > 0; i++ {
		if i >= len(st.series) {
			return fmt.Errorf("chunk %d holds more slots than the region", chunk)
		}
		sid, k1 := binary.Uvarint(b)
		if k1 <= 0 || len(b) < k1+1 {
			return errTruncated
		}
		f := b[k1]
		val, k2 := binary.Varint(b[k1+1:])
		if k2 <= 0 {
			return errTruncated
		}
		b = b[k1+1+k2:]
		st.series[i], st.kinds[i], st.set[i], st.values[i] = uint32(sid), f&0x7f, f&0x80 != 0, val
	}
	return nil
}

// loadRegions reads every region state. An unreadable one is dropped with
// a warning: its region's next reading resynchronises it.
func loadRegions(db *pebble.DB, log *slog.Logger) (map[regionKey]*regionState, error) {
	out := map[regionKey]*regionState{}
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixRegion}, UpperBound: []byte{prefixRegion + 1}})
	if err != nil {
		return nil, err
	}
	for it.First(); it.Valid(); it.Next() {
		k, ok := parseRegionDBKey(it.Key())
		st, _, err := decodeRegionHeader(it.Value())
		if !ok || err != nil {
			log.Warn("monitor center: dropping an unreadable region state", "key", fmt.Sprintf("%x", it.Key()), "err", err)
			continue
		}
		out[k] = st
	}
	if err := it.Close(); err != nil {
		return nil, err
	}
	it, err = db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixRegionChunk}, UpperBound: []byte{prefixRegionChunk + 1}})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		k, ok := parseRegionDBKey(it.Key())
		st := out[k]
		if !ok || st == nil || len(it.Key()) != 17 {
			continue
		}
		if err := st.decodeChunk(binary.BigEndian.Uint32(it.Key()[13:]), it.Value()); err != nil {
			log.Warn("monitor center: dropping an unreadable region state", "key", fmt.Sprintf("%x", it.Key()), "err", err)
			delete(out, k)
		}
	}
	return out, nil
}
