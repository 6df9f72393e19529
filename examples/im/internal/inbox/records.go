package inbox

import (
	"encoding/binary"
	"slices"
	"strings"
)

// Stored records. Each starts with a format byte so a later format can be
// told apart; each decoder accepts only what its encoder writes.
const recordFormat byte = 1

// kv keys and rows of one user.
func inboxRow(user uint64, t DataType) []byte {
	b := make([]byte, 0, 3+8+1)
	b = append(b, "ib/"...)
	b = binary.BigEndian.AppendUint64(b, user)
	return append(b, byte(t))
}

func dedupKey[ID string | []byte](user uint64, t DataType, id ID) []byte {
	b := make([]byte, 0, 3+8+1+len(id))
	b = append(b, "dd/"...)
	b = binary.BigEndian.AppendUint64(b, user)
	b = append(b, byte(t))
	return append(b, id...)
}

func ackKey(user uint64) []byte {
	return binary.BigEndian.AppendUint64(append(make([]byte, 0, 3+8), "ak/"...), user)
}

// storedEntry is an inbox entry's kv value:
//
//	byte     recordFormat, or sharedFormat
//	uvarint  delivery time, Unix milliseconds
//	uvarint  length of the dedup id, then the id (empty: none)
//	rest     the payload; with sharedFormat, the SHA-256 of a shared
//	         payload (see shared.go)
type storedEntry struct {
	atMillis uint64
	dedupID  []byte // aliases the decoded record
	payload  []byte
	shared   []byte // a shared payload's hash; payload is then nil
}

// sharedFormat marks an entry whose payload is stored shared.
const sharedFormat byte = 2

func encodeEntry(dst []byte, e storedEntry) []byte {
	rest, format := e.payload, recordFormat
	if e.shared != nil {
		rest, format = e.shared, sharedFormat
	}
	dst = slices.Grow(dst, 1+2*binary.MaxVarintLen64+len(e.dedupID)+len(rest))
	dst = append(dst, format)
	dst = binary.AppendUvarint(dst, e.atMillis)
	dst = binary.AppendUvarint(dst, uint64(len(e.dedupID)))
	dst = append(dst, e.dedupID...)
	return append(dst, rest...)
}

// decodeEntry decodes an inbox entry. The payload aliases raw.
func decodeEntry(raw []byte) (storedEntry, string) {
	var e storedEntry
	if len(raw) == 0 || (raw[0] != recordFormat && raw[0] != sharedFormat) {
		return e, "unknown entry format"
	}
	b := raw[1:]
	at, n := binary.Uvarint(b)
	if n <= 0 || n != uvarintLen(at) {
		return e, "bad entry time"
	}
	b = b[n:]
	idLen, n := binary.Uvarint(b)
	if n <= 0 || n != uvarintLen(idLen) || idLen > MaxDedupIDLen || idLen > uint64(len(b)-n) {
		return e, "bad entry dedup id"
	}
	b = b[n:]
	e.atMillis = at
	e.dedupID = b[:idLen:idLen]
	if raw[0] == sharedFormat {
		if len(b[idLen:]) != payloadHashLen {
			return storedEntry{}, "bad shared payload reference"
		}
		e.shared = b[idLen:]
		return e, ""
	}
	e.payload = b[idLen:]
	return e, ""
}

// deviceAck is one device's ACK: the last SyncKey it sent and when it was
// last seen.
type deviceAck struct {
	device   string
	key      SyncKey
	seenUnix uint64 // seconds
}

// The ACK record of a user (kv key ackKey):
//
//	byte     recordFormat
//	uvarint  number of devices
//	per device, sorted by id, ids distinct:
//	  uvarint length of the id, the id
//	  uvarint last seen, Unix seconds
//	  the SyncKey's versions (see appendVersions)
func encodeAcks(dst []byte, acks []deviceAck) []byte {
	dst = append(dst, recordFormat)
	dst = binary.AppendUvarint(dst, uint64(len(acks)))
	for _, a := range acks {
		dst = binary.AppendUvarint(dst, uint64(len(a.device)))
		dst = append(dst, a.device...)
		dst = binary.AppendUvarint(dst, a.seenUnix)
		dst = appendVersions(dst, a.key)
	}
	return dst
}

func decodeAcks(raw []byte) ([]deviceAck, string) {
	if len(raw) == 0 || raw[0] != recordFormat {
		return nil, "unknown ack record format"
	}
	b := raw[1:]
	count, n := binary.Uvarint(b)
	if n <= 0 || n != uvarintLen(count) || count > MaxDevices {
		return nil, "bad device count"
	}
	b = b[n:]
	acks := make([]deviceAck, 0, count)
	for range count {
		idLen, n := binary.Uvarint(b)
		if n <= 0 || n != uvarintLen(idLen) || idLen == 0 || idLen > MaxDeviceIDLen || idLen > uint64(len(b)-n) {
			return nil, "bad device id"
		}
		b = b[n:]
		var a deviceAck
		a.device = string(b[:idLen])
		b = b[idLen:]
		if k := len(acks); k > 0 && acks[k-1].device >= a.device {
			return nil, "devices out of order"
		}
		a.seenUnix, n = binary.Uvarint(b)
		if n <= 0 || n != uvarintLen(a.seenUnix) {
			return nil, "bad last-seen time"
		}
		b = b[n:]
		var why string
		a.key, b, why = readVersions(b)
		if why != "" {
			return nil, why
		}
		acks = append(acks, a)
	}
	if len(b) != 0 {
		return nil, "trailing bytes"
	}
	return acks, ""
}

// findDevice returns the index of device in acks (sorted by id), or where
// it would be inserted and false.
func findDevice(acks []deviceAck, device string) (int, bool) {
	return slices.BinarySearchFunc(acks, device, func(a deviceAck, d string) int {
		return strings.Compare(a.device, d)
	})
}
