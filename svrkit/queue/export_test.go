package queue

// KillConnection closes c's connection the way a crash would: no ack, no
// nak, no goodbye; what its handlers hold is redelivered after the ack
// wait. The Client is unusable afterwards (Close it).
func KillConnection(c *Client) { c.nc.Close() }

var (
	DecodeDeadLetter = decodeDeadLetter
	EncodeDeadLetter = encodeDeadLetter
)

var (
	CheckKey   = checkKey
	CheckID    = checkID
	ItemHeader = itemHeader
	DecodeItem = decodeItem
	HeaderSafe = headerSafe
)
