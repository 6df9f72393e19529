// Package online counts the IM backend's online devices until the access
// layer exists: a device is online if it synced in the last Window. Clients
// pull with sync and hold no connection yet, so a device that syncs is
// what "online" means today; the access layer's connection count will
// replace this.
//
// Count where a user's calls always land on the same process — the
// messagedata Logicsvr, routed by user id — so that a device is counted by
// one process only and the machine's sum of the gauge is a true count:
//
//	online.Seen(req.GetUserId(), req.GetDeviceId())   // in MessageData.SyncInbox
package online

import (
	"sync"
	"time"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/svrkit/monitor"
)

// Window is how recently a device must have synced to count as online.
const Window = time.Minute

// Devices counts the devices seen within a window and publishes the count
// to a gauge every second. Its methods are safe for concurrent use.
type Devices struct {
	window time.Duration
	gauge  monitor.ID
	now    func() time.Time

	mu    sync.Mutex
	seen  map[device]time.Time
	start sync.Once
}

type device struct {
	user uint64
	id   string
}

// New returns a counter of the devices seen within window, published to
// the gauge id.
func New(window time.Duration, id monitor.ID) *Devices {
	return &Devices{window: window, gauge: id, now: time.Now, seen: map[device]time.Time{}}
}

// Default publishes im.online.devices.
var Default = New(Window, im.Monitor_ONLINE_DEVICES_ID)

// Seen records that a user's device synced now, with Default.
func Seen(user uint64, deviceID string) { Default.Seen(user, deviceID) }

// Seen records that a user's device synced now. The first call starts the
// once-a-second publication, which runs for the life of the process.
func (d *Devices) Seen(user uint64, deviceID string) {
	d.start.Do(func() { go d.publish() })
	if len(deviceID) > 64 {
		deviceID = deviceID[:64]
	}
	d.mu.Lock()
	d.seen[device{user, deviceID}] = d.now()
	d.mu.Unlock()
}

// Count forgets the devices not seen within the window and returns how
// many remain.
func (d *Devices) Count() int {
	cut := d.now().Add(-d.window)
	d.mu.Lock()
	defer d.mu.Unlock()
	for k, at := range d.seen {
		if at.Before(cut) {
			delete(d.seen, k)
		}
	}
	return len(d.seen)
}

func (d *Devices) publish() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		monitor.Set(d.gauge, int64(d.Count()))
		<-t.C
	}
}
