package logicsvr

import (
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	svrkitpb "github.com/svrkit/svrkit/idl/svrkit"
	"github.com/svrkit/svrkit/svrkit"
)

// describeMethod is the framework's describe method, which both transports
// serve on their own, each with its own copy of its descriptor: the host
// recognises it by cmdid (isDescribe) and keeps one methodState for both.
var describeMethod = &svrkit.DescribeServiceDesc().Methods[0]

func isDescribe(m *svrkit.MethodDesc) bool { return m.CmdID == svrkit.DescribeCmdID }

// state returns m's methodState, or nil for a method the host did not
// register.
func (h *Host) state(m *svrkit.MethodDesc) *methodState {
	if st := h.methods[m]; st != nil {
		return st
	}
	if isDescribe(m) {
		return h.methods[describeMethod]
	}
	return nil
}

// methodState is what the host keeps per method: its limits, its in-flight
// count and its metrics on each transport. It is created at registration and
// read without locks afterwards.
type methodState struct {
	desc     *svrkit.MethodDesc
	limit    int64 // 0: unbounded
	inflight atomic.Int64
	http     *transportMetrics
	rpc      *transportMetrics
	panics   prometheus.Counter
}

func (h *Host) newMethodState(md *svrkit.MethodDesc, limit int) *methodState {
	st := &methodState{desc: md, limit: int64(limit)}
	st.http = h.metrics.forMethod(md, "http")
	st.rpc = h.metrics.forMethod(md, "rpc")
	cmdid := strconv.FormatUint(uint64(md.CmdID), 10)
	st.panics = h.metrics.panics.WithLabelValues(md.FullName, cmdid)
	h.metrics.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        metricInFlight,
		Help:        "Calls running now, over both transports, by method.",
		ConstLabels: prometheus.Labels{"method": md.FullName, "cmdid": cmdid},
	}, func() float64 { return float64(st.inflight.Load()) }))
	return st
}

// idlMaxConcurrent reads a method's max_concurrent option (or its service's)
// from the descriptor the generated code registered.
func idlMaxConcurrent(service string, md *svrkit.MethodDesc) int {
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(service))
	if err != nil {
		return 0
	}
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if !ok {
		return 0
	}
	name, ok := strings.CutPrefix(md.FullName, "/"+service+"/")
	if !ok {
		return 0
	}
	if m := sd.Methods().ByName(protoreflect.Name(name)); m != nil {
		if o, _ := proto.GetExtension(m.Options(), svrkitpb.E_Method).(*svrkitpb.MethodOptions); o.GetMaxConcurrent() > 0 {
			return int(o.GetMaxConcurrent())
		}
	}
	o, _ := proto.GetExtension(sd.Options(), svrkitpb.E_Service).(*svrkitpb.ServiceOptions)
	return int(o.GetMaxConcurrent())
}
