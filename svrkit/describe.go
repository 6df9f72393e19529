package svrkit

import (
	"context"
	"slices"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/emptypb"
)

// The describe method is svrkit's equivalent of gRPC server reflection, cut
// down to one call: it returns the .proto descriptors of the services a
// server serves, so that a generic caller (`svrkit call`) can turn JSON into
// requests and responses into JSON without the caller having the .proto
// files. The descriptors carry svrkit's options, so the caller also learns
// each method's cmdid.
const (
	// DescribeCmdID is the describe method's cmdid, the first after the
	// reserved base.
	DescribeCmdID = ReservedCmdIDBase + 1
	// DescribeServiceName names the describe service. No .proto declares
	// it; it exists only as DescribeServiceDesc returns it.
	DescribeServiceName = "svrkit.Describe"
	// DescribeFullMethodName is the describe method's route, which the HTTP
	// front serves too.
	DescribeFullMethodName = "/svrkit.Describe/Describe"
)

// Describer is the describe service's implementation interface.
type Describer interface {
	// Describe returns the files that declare the served services and
	// everything they import, each file after its imports.
	Describe(ctx context.Context, req *emptypb.Empty) (*descriptorpb.FileDescriptorSet, error)
}

// DescribeServiceDesc returns a new copy of the describe service's
// descriptor, for registrars other than Server (which serves describe by
// itself), with NewDescriber over their own service list:
//
//	front.RegisterService(svrkit.DescribeServiceDesc(), svrkit.NewDescriber(front.Services))
//
// Recognise the method by its cmdid (DescribeCmdID) or name, not by
// pointer: each call returns a new copy, so that no caller can change what
// every server serves.
func DescribeServiceDesc() *ServiceDesc {
	d := describeServiceDesc
	d.Methods = slices.Clone(d.Methods)
	return &d
}

// Describe asks the server behind inv for the descriptors of the services
// it serves (see Describer).
func Describe(ctx context.Context, inv Invoker) (*descriptorpb.FileDescriptorSet, error) {
	set := &descriptorpb.FileDescriptorSet{}
	if err := inv.Invoke(ctx, &describeServiceDesc.Methods[0], &emptypb.Empty{}, set); err != nil {
		return nil, err
	}
	return set, nil
}

var describeServiceDesc = ServiceDesc{
	Name:        DescribeServiceName,
	HandlerType: (*Describer)(nil),
	Methods: []MethodDesc{{
		CmdID:       DescribeCmdID,
		FullName:    DescribeFullMethodName,
		Idempotent:  true,
		NewRequest:  func() proto.Message { return new(emptypb.Empty) },
		NewResponse: func() proto.Message { return new(descriptorpb.FileDescriptorSet) },
		Handler: func(impl any, ctx context.Context, req proto.Message) (proto.Message, error) {
			out, err := impl.(Describer).Describe(ctx, req.(*emptypb.Empty))
			if err != nil {
				return nil, err
			}
			return out, nil
		},
	}},
}

// NewDescriber returns a Describer over the services that services returns
// at the time of each call (a server's Services method).
func NewDescriber(services func() []*ServiceDesc) Describer {
	return describer(services)
}

type describer func() []*ServiceDesc

func (d describer) Describe(context.Context, *emptypb.Empty) (*descriptorpb.FileDescriptorSet, error) {
	return DescribeFiles(d()), nil
}

// DescribeFiles returns the .proto files that declare services, with all
// they import, each file once and after its imports. A service is found by
// its Name in protoregistry.GlobalFiles, where the generated message code
// registers every file; services without a registered descriptor (the
// describe service itself, hand-written descriptors) are left out.
func DescribeFiles(services []*ServiceDesc) *descriptorpb.FileDescriptorSet {
	set := &descriptorpb.FileDescriptorSet{}
	seen := map[string]bool{}
	var add func(fd protoreflect.FileDescriptor)
	add = func(fd protoreflect.FileDescriptor) {
		if fd.IsPlaceholder() || seen[fd.Path()] {
			return
		}
		seen[fd.Path()] = true
		imports := fd.Imports()
		for i := 0; i < imports.Len(); i++ {
			add(imports.Get(i).FileDescriptor)
		}
		set.File = append(set.File, protodesc.ToFileDescriptorProto(fd))
	}
	for _, sd := range services {
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(sd.Name))
		if err != nil {
			continue
		}
		if svc, ok := d.(protoreflect.ServiceDescriptor); ok {
			add(svc.ParentFile())
		}
	}
	return set
}
