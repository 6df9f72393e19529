package generator

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	svrkitpb "github.com/svrkit/svrkit/idl/svrkit"
	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// reservedCmdIDBase mirrors svrkit.ReservedCmdIDBase. The generator does not
// import the runtime: the runtime's tests import generated code, and a
// generator that needs the runtime to build could not regenerate it after a
// breaking change.
const reservedCmdIDBase uint32 = 0xFFFF0000

// Field numbers of descriptor.proto used to build source paths for positions.
const (
	serviceOptionsField = 3 // ServiceDescriptorProto.options
	methodInputField    = 2 // MethodDescriptorProto.input_type
	methodOptionsField  = 4 // MethodDescriptorProto.options
	methodClientStream  = 5 // MethodDescriptorProto.client_streaming
	methodServerStream  = 6 // MethodDescriptorProto.server_streaming
)

// Service is a validated service and its svrkit options.
type Service struct {
	Proto *protogen.Service
	File  *protogen.File
	// Logicsvr is the Logicsvr the service belongs to; empty if the IDL
	// names none.
	Logicsvr string
	// RoutingKey is the request field path of the routing key, as written
	// in the IDL ("user_id", "header.uin"); empty if none.
	RoutingKey string
	// Callers are the Logicsvrs allowed to call the service; empty means
	// any authenticated caller.
	Callers []string
	Methods []*Method
}

// Method is a validated rpc and its svrkit options, with the service's
// defaults applied.
type Method struct {
	Proto       *protogen.Method
	CmdID       uint32
	CGIPath     string
	Timeout     time.Duration
	Idempotent  bool
	NonBlocking bool
	Priority    uint8
	// RoutingFields is the path from the request message to the routing key
	// field; nil if the service has no routing key.
	RoutingFields []*protogen.Field
}

// Error is a mistake in the IDL, at a position in a .proto file.
type Error struct {
	// File is the file's path as imported (its descriptor name).
	File string
	// Line and Column are 1-based; 0 when the IDL has no source info.
	Line, Column int
	Msg          string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Msg)
}

// Errors is every mistake found in one run, sorted by position.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Load reads and validates the svrkit options of every service in the files
// gen is asked to generate. cmdids and CGI paths are checked for uniqueness
// across all of those files, within each Logicsvr (a service without one is
// its own scope). The error, if any, is an Errors.
func Load(gen *protogen.Plugin) ([]*Service, error) {
	services, _, err := load(gen)
	return services, err
}

// load is Load that also returns the monitor enums of the files, validated
// with the services so that every mistake is reported in one run.
func load(gen *protogen.Plugin) ([]*Service, []*MonitorEnum, error) {
	l := &loader{
		gen:          gen,
		cmdIDs:       map[string]map[uint32]*Method{},
		cgis:         map[string]map[string]*Method{},
		goNames:      map[protogen.GoImportPath]map[string]string{},
		monitorIDs:   map[uint32]*MonitorPoint{},
		monitorNames: map[string]*MonitorPoint{},
	}
	var services []*Service
	var monitors []*MonitorEnum
	for _, f := range gen.Files {
		if !f.Generate {
			continue
		}
		for _, s := range f.Services {
			services = append(services, l.service(f, s))
		}
		monitors = append(monitors, l.monitorEnums(f)...)
	}
	for _, s := range services {
		l.checkNames(s)
	}
	for _, me := range monitors {
		l.checkIdents(me.File, me.Proto.Location.Path, "enum "+string(me.Proto.Desc.FullName()), monitorIdents(me))
	}
	if len(l.errs) > 0 {
		sort.SliceStable(l.errs, func(i, j int) bool {
			a, b := l.errs[i], l.errs[j]
			if a.File != b.File {
				return a.File < b.File
			}
			if a.Line != b.Line {
				return a.Line < b.Line
			}
			return a.Column < b.Column
		})
		return nil, nil, l.errs
	}
	return services, monitors, nil
}

type loader struct {
	gen  *protogen.Plugin
	errs Errors
	// cmdIDs and cgis map a uniqueness scope (see scope) to what is taken.
	cmdIDs map[string]map[uint32]*Method
	cgis   map[string]map[string]*Method
	// goNames maps a Go package to the identifiers its .pb.go files
	// declare, each with what declares it.
	goNames map[protogen.GoImportPath]map[string]string
	// monitorIDs and monitorNames hold the monitor points declared so far.
	monitorIDs   map[uint32]*MonitorPoint
	monitorNames map[string]*MonitorPoint
}

var logicsvrName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]*$`)

func (l *loader) service(f *protogen.File, ps *protogen.Service) *Service {
	s := &Service{Proto: ps, File: f}
	opts, _ := proto.GetExtension(ps.Desc.Options(), svrkitpb.E_Service).(*svrkitpb.ServiceOptions)
	s.Logicsvr = opts.GetLogicsvr()
	s.RoutingKey = opts.GetRoutingKey()
	if s.Logicsvr != "" && !logicsvrName.MatchString(s.Logicsvr) {
		l.errorf(f, at(ps.Location.Path, serviceOptionsField, svrkitpb.E_Service.Field, 1), "service %s: logicsvr %q is not a valid name: use letters, digits, '_' and '-', starting with a letter",
			ps.Desc.FullName(), s.Logicsvr)
	}
	seen := map[string]bool{}
	for i, c := range opts.GetCallers() {
		switch {
		case !logicsvrName.MatchString(c):
			l.errorf(f, at(ps.Location.Path, serviceOptionsField, svrkitpb.E_Service.Field, 5, int32(i)), "service %s: caller %q is not a valid Logicsvr name: use letters, digits, '_' and '-', starting with a letter",
				ps.Desc.FullName(), c)
		case seen[c]:
			l.errorf(f, at(ps.Location.Path, serviceOptionsField, svrkitpb.E_Service.Field, 5, int32(i)), "service %s: caller %q is listed twice", ps.Desc.FullName(), c)
		default:
			seen[c] = true
			s.Callers = append(s.Callers, c)
		}
	}
	for _, pm := range ps.Methods {
		s.Methods = append(s.Methods, l.method(f, s, pm, opts))
	}
	return s
}

// scope names the set within which cmdids and CGI paths must be unique, and
// says it in words for error messages.
func (s *Service) scope() (key, words string) {
	if s.Logicsvr != "" {
		return "logicsvr:" + s.Logicsvr, fmt.Sprintf("logicsvr %q", s.Logicsvr)
	}
	return "service:" + string(s.Proto.Desc.FullName()), "service " + string(s.Proto.Desc.FullName())
}

func (l *loader) method(f *protogen.File, s *Service, pm *protogen.Method, sopts *svrkitpb.ServiceOptions) *Method {
	m := &Method{Proto: pm}
	name := pm.Desc.FullName()
	path := pm.Location.Path
	optAt := func(field int32) []protoreflect.SourcePath {
		return at(path, methodOptionsField, svrkitpb.E_Method.Field, field)
	}
	opts, _ := proto.GetExtension(pm.Desc.Options(), svrkitpb.E_Method).(*svrkitpb.MethodOptions)

	if pm.Desc.IsStreamingClient() || pm.Desc.IsStreamingServer() {
		stream := int32(methodClientStream)
		if !pm.Desc.IsStreamingClient() {
			stream = methodServerStream
		}
		l.errorf(f, at(path, stream), "method %s: streaming methods are not supported yet", name)
	}

	scopeKey, scopeWords := s.scope()
	switch {
	case opts == nil || opts.Cmdid == nil:
		l.errorf(f, at(path), "method %s has no cmdid: set option (svrkit.method).cmdid", name)
	case opts.GetCmdid() == 0:
		l.errorf(f, optAt(1), "method %s: cmdid 0 is invalid: cmdids start at 1", name)
	case opts.GetCmdid() >= reservedCmdIDBase:
		l.errorf(f, optAt(1), "method %s: cmdid %d (%#x) is reserved for the framework: use a cmdid below %#x",
			name, opts.GetCmdid(), opts.GetCmdid(), reservedCmdIDBase)
	default:
		m.CmdID = opts.GetCmdid()
		taken := l.cmdIDs[scopeKey]
		if taken == nil {
			taken = map[uint32]*Method{}
			l.cmdIDs[scopeKey] = taken
		}
		if prev := taken[m.CmdID]; prev != nil {
			l.errorf(f, optAt(1), "method %s: cmdid %d is already used by %s (%s) in %s",
				name, m.CmdID, prev.Proto.Desc.FullName(), l.where(prev.Proto), scopeWords)
		} else {
			taken[m.CmdID] = m
		}
	}

	if cgi := opts.GetCgiPath(); cgi != "" {
		switch {
		case !strings.HasPrefix(cgi, "/"):
			l.errorf(f, optAt(2), "method %s: CGI path %q must start with \"/\"", name, cgi)
		case strings.ContainsAny(cgi, " \t\r\n?#"):
			l.errorf(f, optAt(2), "method %s: CGI path %q must not contain spaces, '?' or '#'", name, cgi)
		default:
			m.CGIPath = cgi
			taken := l.cgis[scopeKey]
			if taken == nil {
				taken = map[string]*Method{}
				l.cgis[scopeKey] = taken
			}
			if prev := taken[cgi]; prev != nil {
				l.errorf(f, optAt(2), "method %s: CGI path %q is already used by %s (%s) in %s",
					name, cgi, prev.Proto.Desc.FullName(), l.where(prev.Proto), scopeWords)
			} else {
				taken[cgi] = m
			}
		}
	}

	timeoutMS := opts.GetTimeoutMs()
	if timeoutMS == 0 {
		timeoutMS = sopts.GetTimeoutMs()
	}
	m.Timeout = time.Duration(timeoutMS) * time.Millisecond
	m.Idempotent = opts.GetIdempotent()
	m.NonBlocking = opts.GetNonBlocking()
	if p := opts.GetPriority(); p > 255 {
		l.errorf(f, optAt(5), "method %s: priority %d is out of range 0-255", name, p)
	} else {
		m.Priority = uint8(p)
	}

	if s.RoutingKey != "" {
		m.RoutingFields = l.routingFields(f, s, pm)
	}
	return m
}

// routingFields resolves the service's routing key in the request of pm.
func (l *loader) routingFields(f *protogen.File, s *Service, pm *protogen.Method) []*protogen.Field {
	fail := func(format string, args ...any) []*protogen.Field {
		prefix := fmt.Sprintf("method %s: routing_key %q: ", pm.Desc.FullName(), s.RoutingKey)
		l.errorf(f, at(pm.Location.Path, methodInputField), prefix+format, args...)
		return nil
	}
	var fields []*protogen.Field
	msg := pm.Input
	parts := strings.Split(s.RoutingKey, ".")
	for i, part := range parts {
		var field *protogen.Field
		for _, fd := range msg.Fields {
			if string(fd.Desc.Name()) == part {
				field = fd
				break
			}
		}
		if field == nil {
			return fail("request message %s has no field %q", msg.Desc.FullName(), part)
		}
		fields = append(fields, field)
		last := i == len(parts)-1
		switch {
		case field.Desc.IsMap():
			return fail("field %s is a map, not a scalar", field.Desc.FullName())
		case field.Desc.IsList():
			return fail("field %s is repeated, not a scalar", field.Desc.FullName())
		case last && field.Message != nil:
			return fail("field %s is a message, not a scalar", field.Desc.FullName())
		case !last && field.Message == nil:
			return fail("field %s is a %s, not a message", field.Desc.FullName(), field.Desc.Kind())
		}
		msg = field.Message
	}
	return fields
}

// checkNames reports generated identifiers that collide with identifiers
// protoc-gen-go declares in the same Go package, or with those of another
// service.
func (l *loader) checkNames(s *Service) {
	l.checkIdents(s.File, s.Proto.Location.Path, "service "+string(s.Proto.Desc.FullName()), serviceIdents(s))
}

// checkIdents reports each of ids, generated for the element at path
// (named by what), that another declaration of the package already took.
func (l *loader) checkIdents(f *protogen.File, path protoreflect.SourcePath, what string, ids []string) {
	names := l.packageNames(f.GoImportPath)
	where := fmt.Sprintf("%s (%s)", what, l.whereLoc(protogen.Location{SourceFile: f.Desc.Path(), Path: path}))
	for _, id := range ids {
		if prev, ok := names[id]; ok {
			l.errorf(f, at(path), "%s: generated name %s collides with %s", what, id, prev)
			continue
		}
		names[id] = "the same name generated for " + where
	}
}

// packageNames returns the identifiers protoc-gen-go declares for all files
// of a Go package in the request.
func (l *loader) packageNames(pkg protogen.GoImportPath) map[string]string {
	if names, ok := l.goNames[pkg]; ok {
		return names
	}
	names := map[string]string{}
	add := func(id protogen.GoIdent, what string, loc protogen.Location) {
		if _, ok := names[id.GoName]; !ok {
			names[id.GoName] = fmt.Sprintf("%s (%s)", what, l.whereLoc(loc))
		}
	}
	var addEnum func(e *protogen.Enum)
	addEnum = func(e *protogen.Enum) {
		add(e.GoIdent, "enum "+string(e.Desc.FullName()), e.Location)
		for _, v := range e.Values {
			add(v.GoIdent, "enum value "+string(v.Desc.FullName()), v.Location)
		}
	}
	var addMessage func(m *protogen.Message)
	addMessage = func(m *protogen.Message) {
		add(m.GoIdent, "message "+string(m.Desc.FullName()), m.Location)
		for _, fd := range m.Fields {
			if fd.Oneof != nil && !fd.Oneof.Desc.IsSynthetic() {
				add(fd.GoIdent, "oneof field "+string(fd.Desc.FullName()), fd.Location)
			}
		}
		for _, e := range m.Enums {
			addEnum(e)
		}
		for _, n := range m.Messages {
			addMessage(n)
		}
		for _, x := range m.Extensions {
			add(protogen.GoIdent{GoName: "E_" + x.GoIdent.GoName}, "extension "+string(x.Desc.FullName()), x.Location)
		}
	}
	for _, f := range l.gen.Files {
		if f.GoImportPath != pkg {
			continue
		}
		add(f.GoDescriptorIdent, "the descriptor of "+f.Desc.Path(), protogen.Location{SourceFile: f.Desc.Path()})
		for _, e := range f.Enums {
			addEnum(e)
		}
		for _, m := range f.Messages {
			addMessage(m)
		}
		for _, x := range f.Extensions {
			add(protogen.GoIdent{GoName: "E_" + x.GoIdent.GoName}, "extension "+string(x.Desc.FullName()), x.Location)
		}
	}
	l.goNames[pkg] = names
	return names
}

// errorf records an error at the first of paths that has a source
// location: callers list the most specific (the option field) first, then
// the option statement, then the element it belongs to.
func (l *loader) errorf(f *protogen.File, paths []protoreflect.SourcePath, format string, args ...any) {
	e := &Error{File: f.Desc.Path(), Msg: fmt.Sprintf(format, args...)}
	locs := f.Desc.SourceLocations()
	for _, p := range paths {
		if loc := locs.ByPath(p); len(loc.Path) > 0 {
			e.Line, e.Column = loc.StartLine+1, loc.StartColumn+1
			break
		}
	}
	l.errs = append(l.errs, e)
}

// at lists source paths for errorf: base extended by each of ext in turn,
// most specific first, ending with base itself.
func at(base protoreflect.SourcePath, ext ...int32) []protoreflect.SourcePath {
	var paths []protoreflect.SourcePath
	for i := len(ext); i > 0; i-- {
		p := make(protoreflect.SourcePath, 0, len(base)+i)
		paths = append(paths, append(append(p, base...), ext[:i]...))
	}
	return append(paths, base)
}

// where says where a method or service is declared, as file:line:column.
func (l *loader) where(d any) string {
	switch d := d.(type) {
	case *protogen.Method:
		return l.whereLoc(d.Location)
	case *protogen.Service:
		return l.whereLoc(d.Location)
	}
	return "?"
}

func (l *loader) whereLoc(loc protogen.Location) string {
	f := l.gen.FilesByPath[loc.SourceFile]
	if f != nil && len(loc.Path) > 0 {
		if sl := f.Desc.SourceLocations().ByPath(loc.Path); len(sl.Path) > 0 {
			return fmt.Sprintf("%s:%d:%d", loc.SourceFile, sl.StartLine+1, sl.StartColumn+1)
		}
	}
	return loc.SourceFile
}
