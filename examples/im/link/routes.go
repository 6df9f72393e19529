package link

import (
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/svrkit"
)

// Services are the client-facing services the long link carries, each with
// a base in the IDL (option (im.link).base). A new client-facing service
// goes here and gets a base in its .proto; TestEveryClientServiceIsLinked
// fails until both are done.
var Services = []*svrkit.ServiceDesc{
	&im.Account_ServiceDesc,
	&im.Contact_ServiceDesc,
	&im.Send_ServiceDesc,
	&im.Sync_ServiceDesc,
	&im.SendMedia_ServiceDesc,
	&im.Group_ServiceDesc,
}

// MaxBase bounds a service's link base; a method's svrkit cmdid under a
// base stays below BaseStep.
const (
	MaxBase  = 99900
	BaseStep = 100
)

// Route is one method on the long link.
type Route struct {
	// CmdID is the method's link cmdid: its service's base plus its
	// svrkit cmdid.
	CmdID uint32
	// Service is the protobuf service's full name ("im.Send"), the name
	// the Logicsvr that serves it is found by in a routing table.
	Service string
	// Method is the generated descriptor the call is made with.
	Method *svrkit.MethodDesc
}

// Name is the method's name without the leading slash: "im.Send/SendText",
// how JSON messages may address it.
func (r *Route) Name() string { return strings.TrimPrefix(r.Method.FullName, "/") }

// Routes is the long link's method table. It is immutable and safe for
// concurrent use.
type Routes struct {
	byCmd  map[uint32]*Route
	byName map[string]*Route
	all    []*Route
}

// Default is the table of Services.
var Default = mustRoutes(Services)

func mustRoutes(sds []*svrkit.ServiceDesc) *Routes {
	r, err := NewRoutes(sds)
	if err != nil {
		panic(err)
	}
	return r
}

// NewRoutes builds the table of the given services from their IDL link
// bases. A service without a base, a base out of range, a method cmdid of
// BaseStep or more, or two methods with one link cmdid is an error.
func NewRoutes(sds []*svrkit.ServiceDesc) (*Routes, error) {
	r := &Routes{byCmd: map[uint32]*Route{}, byName: map[string]*Route{}}
	for _, sd := range sds {
		base, err := BaseOf(sd.Name)
		if err != nil {
			return nil, err
		}
		for i := range sd.Methods {
			m := &sd.Methods[i]
			if m.CmdID >= BaseStep {
				return nil, fmt.Errorf("link: %s has svrkit cmdid %d: a linked service's cmdids stay below %d", m.FullName, m.CmdID, BaseStep)
			}
			rt := &Route{CmdID: base + m.CmdID, Service: sd.Name, Method: m}
			if prev := r.byCmd[rt.CmdID]; prev != nil {
				return nil, fmt.Errorf("link: %s and %s both have link cmdid %d", prev.Method.FullName, m.FullName, rt.CmdID)
			}
			r.byCmd[rt.CmdID] = rt
			r.byName[rt.Name()] = rt
			r.byName[m.FullName] = rt
			r.all = append(r.all, rt)
		}
	}
	slices.SortFunc(r.all, func(a, b *Route) int { return int(a.CmdID) - int(b.CmdID) })
	return r, nil
}

// BaseOf reads a service's link base from its IDL (the compiled
// descriptors in the protobuf registry).
func BaseOf(service string) (uint32, error) {
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(service))
	if err != nil {
		return 0, fmt.Errorf("link: service %s is not in the protobuf registry: %w", service, err)
	}
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if !ok {
		return 0, fmt.Errorf("link: %s is not a service", service)
	}
	opts, _ := proto.GetExtension(sd.Options(), im.E_Link).(*im.LinkOptions)
	base := opts.GetBase()
	switch {
	case base == 0:
		return 0, fmt.Errorf("link: service %s has no link base: add option (im.link).base to its .proto", service)
	case base%BaseStep != 0 || base > MaxBase:
		return 0, fmt.Errorf("link: service %s has link base %d: want a multiple of %d up to %d", service, base, BaseStep, MaxBase)
	}
	return base, nil
}

// ByCmdID returns the route of a link cmdid, or nil.
func (r *Routes) ByCmdID(id uint32) *Route { return r.byCmd[id] }

// ByName returns the route of a method by name, "im.Send/SendText" or
// "/im.Send/SendText", or nil.
func (r *Routes) ByName(name string) *Route { return r.byName[name] }

// All returns every route in link cmdid order.
func (r *Routes) All() []*Route { return slices.Clone(r.all) }

// String prints the table, one method a line.
func (r *Routes) String() string {
	var b strings.Builder
	for _, rt := range r.all {
		fmt.Fprintf(&b, "%6d  %s\n", rt.CmdID, rt.Name())
	}
	return b.String()
}
