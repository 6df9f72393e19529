package kv

import "encoding/binary"

// Namespaces: the first byte of every pebble key (see the package doc).
const (
	nsStore byte = 0x00 // store-level metadata
	nsKV    byte = 0x01 // KV records
	nsTable byte = 0x02 // Key-Table rows
)

// Tags after a row's prefix.
const (
	rowMetaTag  byte = 0x00
	rowEntryTag byte = 0x01
)

// recordFormat is the first byte of stored KV records and row metadata, so a
// later format can be told apart from this one.
const recordFormat byte = 0x01

const rowMetaLen = 1 + 8 + 8

var revisionBoundKey = []byte{nsStore, 'r', 'e', 'v'}

func kvKey(dst, key []byte) []byte {
	dst = append(dst, nsKV)
	return append(dst, key...)
}

// rowPrefix is the prefix every key of row starts with and no key of another
// row does: the 2-byte length makes it prefix-free.
func rowPrefix(dst, row []byte) []byte {
	dst = append(dst, nsTable, byte(len(row)>>8), byte(len(row)))
	return append(dst, row...)
}

func rowMetaKey(dst, row []byte) []byte {
	return append(rowPrefix(dst, row), rowMetaTag)
}

func entryKey(dst, row []byte, version uint64) []byte {
	dst = append(rowPrefix(dst, row), rowEntryTag)
	return binary.BigEndian.AppendUint64(dst, version)
}

// entryVersion reads the version from an entry key whose length the caller
// has checked.
func entryVersion(key []byte) uint64 {
	return binary.BigEndian.Uint64(key[len(key)-8:])
}

func encodeRecord(dst []byte, version uint64, value []byte) []byte {
	dst = append(dst, recordFormat)
	dst = binary.BigEndian.AppendUint64(dst, version)
	return append(dst, value...)
}

// decodeRecord splits a stored KV record. The value aliases raw.
func decodeRecord(raw []byte) (version uint64, value []byte, err error) {
	if len(raw) < 9 || raw[0] != recordFormat {
		return 0, nil, corruptf("KV record of %d bytes, format %s", len(raw), formatByte(raw))
	}
	version = binary.BigEndian.Uint64(raw[1:9])
	if version == 0 || version == AnyVersion {
		return 0, nil, corruptf("KV record with version %d", version)
	}
	return version, raw[9:], nil
}

func encodeRowMeta(dst []byte, m RowMeta) []byte {
	dst = append(dst, recordFormat)
	dst = binary.BigEndian.AppendUint64(dst, m.MaxVersion)
	return binary.BigEndian.AppendUint64(dst, m.TrimmedUpTo)
}

func decodeRowMeta(raw []byte) (RowMeta, error) {
	if len(raw) != rowMetaLen || raw[0] != recordFormat {
		return RowMeta{}, corruptf("row metadata of %d bytes, format %s", len(raw), formatByte(raw))
	}
	m := RowMeta{
		MaxVersion:  binary.BigEndian.Uint64(raw[1:9]),
		TrimmedUpTo: binary.BigEndian.Uint64(raw[9:17]),
	}
	if m.TrimmedUpTo > m.MaxVersion {
		return RowMeta{}, corruptf("row metadata trimmed %d above max %d", m.TrimmedUpTo, m.MaxVersion)
	}
	return m, nil
}

func formatByte(raw []byte) string {
	if len(raw) == 0 {
		return "none"
	}
	const hex = "0123456789abcdef"
	return "0x" + string([]byte{hex[raw[0]>>4], hex[raw[0]&15]})
}
