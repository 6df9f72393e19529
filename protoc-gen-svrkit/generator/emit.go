package generator

import (
	"path"
	"strings"
	"time"

	"github.com/dave/jennifer/jen"
	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
)

// Import paths of the packages generated code uses.
const (
	contextPkg = "context"
	protoPkg   = "google.golang.org/protobuf/proto"
	strconvPkg = "strconv"
	svrkitPkg  = "github.com/svrkit/svrkit/svrkit"
	timePkg    = "time"
)

// localNames are the parameter and variable names generated functions use.
// No import may take one of these names, or a local would shadow it.
var localNames = map[string]bool{
	"ctx": true, "in": true, "out": true, "opts": true, "impl": true,
	"req": true, "inv": true, "c": true, "r": true, "err": true,
}

// nameImports tells jennifer the real package name of every import the file
// will use, renaming those that would collide with a local name.
func nameImports(gen *protogen.Plugin, jf *jen.File, f *protogen.File, services []*Service) {
	names := map[string]string{
		contextPkg: "context",
		protoPkg:   "proto",
		strconvPkg: "strconv",
		svrkitPkg:  "svrkit",
		timePkg:    "time",
		monitorPkg: "monitor",
	}
	var addMessage func(m *protogen.Message)
	addMessage = func(m *protogen.Message) {
		if m.GoIdent.GoImportPath == f.GoImportPath {
			return
		}
		if mf := gen.FilesByPath[m.Desc.ParentFile().Path()]; mf != nil {
			names[string(m.GoIdent.GoImportPath)] = string(mf.GoPackageName)
		}
	}
	for _, s := range services {
		for _, m := range s.Methods {
			addMessage(m.Proto.Input)
			addMessage(m.Proto.Output)
		}
	}
	for importPath, name := range names {
		switch {
		case localNames[name]:
			jf.ImportAlias(importPath, name+"pkg")
		case name != path.Base(importPath):
			// Say the name when the path does not, as protoc-gen-go does.
			jf.ImportAlias(importPath, name)
		default:
			jf.ImportName(importPath, name)
		}
	}
}

// serviceIdents lists the package-level identifiers generated for s.
func serviceIdents(s *Service) []string {
	n := s.Proto.GoName
	ids := []string{
		n + "_ServiceName", n + "Server", "Unimplemented" + n + "Server",
		n + "_ServiceDesc", "Register" + n + "Server",
		n + "Client", "New" + n + "Client", unexport(n) + "Client",
	}
	for _, m := range s.Methods {
		p := n + "_" + m.Proto.GoName
		ids = append(ids, p+"_CmdID", p+"_FullMethodName", "_"+p+"_Handler")
	}
	return ids
}

func unexport(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

type emitter struct {
	gen *protogen.Plugin
	f   *jen.File
}

// msg is the Go type of a message, qualified when it lives in another package.
func msg(m *protogen.Message) *jen.Statement {
	return jen.Qual(string(m.GoIdent.GoImportPath), m.GoIdent.GoName)
}

// comment renders .proto comments as Go comment lines, or nothing.
func comment(c protogen.Comments) jen.Code {
	s := strings.TrimSuffix(c.String(), "\n")
	if s == "" {
		return jen.Null()
	}
	return jen.Comment(s)
}

func deprecatedService(d protoreflect.ServiceDescriptor) bool {
	o, _ := d.Options().(*descriptorpb.ServiceOptions)
	return o.GetDeprecated()
}

func deprecatedMethod(d protoreflect.MethodDescriptor) bool {
	o, _ := d.Options().(*descriptorpb.MethodOptions)
	return o.GetDeprecated()
}

// literal renders a composite literal's elements one per line, in the
// order given (jen.Dict would sort them).
func literal(elems ...jen.Code) *jen.Statement {
	return jen.Custom(jen.Options{Open: "{", Close: "}", Separator: ",", Multi: true}, elems...)
}

// field is one key: value element of a struct literal.
func field(key string, value jen.Code) jen.Code {
	return jen.Id(key).Op(":").Add(value)
}

func (e *emitter) service(s *Service) {
	n := s.Proto.GoName
	full := string(s.Proto.Desc.FullName())
	f := e.f
	svcDeprecated := deprecatedService(s.Proto.Desc)

	// Names.
	f.Commentf("%s_ServiceName is the fully-qualified name of the %s service.", n, full)
	f.Const().Id(n + "_ServiceName").Op("=").Lit(full)
	f.Line()
	f.Comment("cmdids of the " + full + " methods: the numbers calls carry on the wire.")
	f.Const().DefsFunc(func(g *jen.Group) {
		for _, m := range s.Methods {
			g.Id(n + "_" + m.Proto.GoName + "_CmdID").Uint32().Op("=").Lit(int(m.CmdID))
		}
	})
	f.Line()
	f.Comment("Full names of the " + full + " methods: their Connect and HTTP routes.")
	f.Const().DefsFunc(func(g *jen.Group) {
		for _, m := range s.Methods {
			g.Id(n + "_" + m.Proto.GoName + "_FullMethodName").Op("=").Lit(fullMethodName(m))
		}
	})
	f.Line()

	// Server interface.
	f.Commentf("%sServer is the server API for the %s service. Embed", n, full)
	f.Commentf("Unimplemented%sServer in implementations so that methods added to the", n)
	f.Comment("IDL later answer Unimplemented instead of breaking the build.")
	if c := s.Proto.Comments.Leading; c != "" {
		f.Comment("")
		f.Add(comment(c))
	}
	if svcDeprecated {
		f.Comment("")
		f.Comment("Deprecated: Do not use.")
	}
	f.Type().Id(n + "Server").InterfaceFunc(func(g *jen.Group) {
		for _, m := range s.Methods {
			e.methodDoc(g, m)
			g.Id(m.Proto.GoName).Params(
				jen.Qual(contextPkg, "Context"), jen.Op("*").Add(msg(m.Proto.Input)),
			).Params(jen.Op("*").Add(msg(m.Proto.Output)), jen.Error())
		}
	})
	f.Line()

	// Unimplemented server.
	f.Commentf("Unimplemented%sServer answers every %s method with an", n, full)
	f.Comment("Unimplemented error. Embed it by value in server implementations.")
	f.Type().Id("Unimplemented" + n + "Server").Struct()
	f.Line()
	for _, m := range s.Methods {
		f.Func().Params(jen.Id("Unimplemented"+n+"Server")).Id(m.Proto.GoName).Params(
			jen.Qual(contextPkg, "Context"), jen.Op("*").Add(msg(m.Proto.Input)),
		).Params(jen.Op("*").Add(msg(m.Proto.Output)), jen.Error()).Block(
			jen.Return(jen.Nil(), jen.Qual(svrkitPkg, "NewError").Call(
				jen.Qual(svrkitPkg, "Unimplemented"),
				jen.Lit("method "+string(m.Proto.Desc.FullName())+" not implemented"),
			)),
		)
		f.Line()
	}

	// Service descriptor.
	f.Commentf("%s_ServiceDesc describes the %s service as the IDL declares it,", n, full)
	f.Commentf("for svrkit.Registrar.RegisterService; Register%sServer passes it.", n)
	f.Commentf("Its Methods are in IDL order; %sClient calls through them.", n)
	descFields := []jen.Code{
		field("Name", jen.Id(n+"_ServiceName")),
		field("HandlerType", jen.Parens(jen.Op("*").Id(n+"Server")).Call(jen.Nil())),
	}
	if s.Logicsvr != "" {
		descFields = append(descFields, field("Logicsvr", jen.Lit(s.Logicsvr)))
	}
	if len(s.Callers) > 0 {
		var callers []jen.Code
		for _, c := range s.Callers {
			callers = append(callers, jen.Lit(c))
		}
		descFields = append(descFields, field("Callers", jen.Index().String().Values(callers...)))
	}
	var methods []jen.Code
	for _, m := range s.Methods {
		methods = append(methods, e.methodDesc(s, m))
	}
	descFields = append(descFields, field("Methods", jen.Index().Qual(svrkitPkg, "MethodDesc").Add(literal(methods...))))
	f.Var().Id(n+"_ServiceDesc").Op("=").Qual(svrkitPkg, "ServiceDesc").Add(literal(descFields...))
	f.Line()
	for _, m := range s.Methods {
		p := n + "_" + m.Proto.GoName
		f.Func().Id("_"+p+"_Handler").Params(
			jen.Id("impl").Any(), jen.Id("ctx").Qual(contextPkg, "Context"), jen.Id("req").Qual(protoPkg, "Message"),
		).Params(jen.Qual(protoPkg, "Message"), jen.Error()).Block(
			jen.List(jen.Id("out"), jen.Err()).Op(":=").Id("impl").Assert(jen.Id(n+"Server")).Dot(m.Proto.GoName).Call(
				jen.Id("ctx"), jen.Id("req").Assert(jen.Op("*").Add(msg(m.Proto.Input))),
			),
			// A nil *Resp in a proto.Message would be a non-nil interface;
			// on error the caller must see a nil message.
			jen.If(jen.Err().Op("!=").Nil()).Block(jen.Return(jen.Nil(), jen.Err())),
			jen.Return(jen.Id("out"), jen.Nil()),
		)
		f.Line()
	}

	// Registration.
	f.Commentf("Register%sServer registers impl to serve the %s service on r:", n, full)
	f.Comment("a *svrkit.Server for binary RPC, or a *cgi.Handler for HTTP.")
	f.Func().Id("Register"+n+"Server").Params(
		jen.Id("r").Qual(svrkitPkg, "Registrar"), jen.Id("impl").Id(n+"Server"),
	).Block(
		jen.Id("r").Dot("RegisterService").Call(jen.Op("&").Id(n+"_ServiceDesc"), jen.Id("impl")),
	)
	f.Line()

	// Client.
	f.Commentf("%sClient is the client API for the %s service.", n, full)
	if c := s.Proto.Comments.Leading; c != "" {
		f.Comment("")
		f.Add(comment(c))
	}
	if svcDeprecated {
		f.Comment("")
		f.Comment("Deprecated: Do not use.")
	}
	f.Type().Id(n + "Client").InterfaceFunc(func(g *jen.Group) {
		for _, m := range s.Methods {
			e.methodDoc(g, m)
			g.Id(m.Proto.GoName).Params(
				jen.Id("ctx").Qual(contextPkg, "Context"),
				jen.Id("in").Op("*").Add(msg(m.Proto.Input)),
				jen.Id("opts").Op("...").Qual(svrkitPkg, "CallOption"),
			).Params(jen.Op("*").Add(msg(m.Proto.Output)), jen.Error())
		}
	})
	f.Line()
	client := unexport(n) + "Client"
	f.Type().Id(client).Struct(jen.Id("inv").Qual(svrkitPkg, "Invoker"))
	f.Line()
	f.Commentf("New%sClient returns a %sClient that calls through inv, usually a", n, n)
	f.Comment("*svrkit.Client connected to the service's endpoints.")
	if svcDeprecated {
		f.Comment("")
		f.Comment("Deprecated: Do not use.")
	}
	f.Func().Id("New" + n + "Client").Params(jen.Id("inv").Qual(svrkitPkg, "Invoker")).Id(n + "Client").Block(
		jen.Return(jen.Op("&").Id(client).Values(jen.Id("inv"))),
	)
	f.Line()
	for i, m := range s.Methods {
		f.Func().Params(jen.Id("c").Op("*").Id(client)).Id(m.Proto.GoName).Params(
			jen.Id("ctx").Qual(contextPkg, "Context"),
			jen.Id("in").Op("*").Add(msg(m.Proto.Input)),
			jen.Id("opts").Op("...").Qual(svrkitPkg, "CallOption"),
		).Params(jen.Op("*").Add(msg(m.Proto.Output)), jen.Error()).Block(
			jen.Id("out").Op(":=").New(msg(m.Proto.Output)),
			jen.If(
				jen.Err().Op(":=").Id("c").Dot("inv").Dot("Invoke").Call(
					jen.Id("ctx"), jen.Op("&").Id(n+"_ServiceDesc").Dot("Methods").Index(jen.Lit(i)),
					jen.Id("in"), jen.Id("out"), jen.Id("opts").Op("..."),
				),
				jen.Err().Op("!=").Nil(),
			).Block(jen.Return(jen.Nil(), jen.Err())),
			jen.Return(jen.Id("out"), jen.Nil()),
		)
		f.Line()
	}
}

// methodDoc adds an rpc's .proto comments (and deprecation) to an interface.
func (e *emitter) methodDoc(g *jen.Group, m *Method) {
	c := m.Proto.Comments.Leading
	if c != "" {
		g.Add(comment(c))
	}
	if deprecatedMethod(m.Proto.Desc) {
		if c != "" {
			g.Comment("")
		}
		g.Comment("Deprecated: Do not use.")
	}
}

func fullMethodName(m *Method) string {
	return "/" + string(m.Proto.Parent.Desc.FullName()) + "/" + string(m.Proto.Desc.Name())
}

// methodDesc builds one svrkit.MethodDesc literal; zero fields are omitted.
func (e *emitter) methodDesc(s *Service, m *Method) jen.Code {
	p := s.Proto.GoName + "_" + m.Proto.GoName
	fields := []jen.Code{
		field("CmdID", jen.Id(p+"_CmdID")),
		field("FullName", jen.Id(p+"_FullMethodName")),
	}
	if m.CGIPath != "" {
		fields = append(fields, field("CGIPath", jen.Lit(m.CGIPath)))
	}
	if m.Timeout > 0 {
		fields = append(fields, field("Timeout", jen.Lit(int(m.Timeout/time.Millisecond)).Op("*").Qual(timePkg, "Millisecond")))
	}
	if m.Idempotent {
		fields = append(fields, field("Idempotent", jen.True()))
	}
	if m.NonBlocking {
		fields = append(fields, field("NonBlocking", jen.True()))
	}
	if m.Priority > 0 {
		fields = append(fields, field("Priority", jen.Lit(int(m.Priority))))
	}
	fields = append(fields,
		field("NewRequest", jen.Func().Params().Qual(protoPkg, "Message").Block(jen.Return(jen.New(msg(m.Proto.Input))))),
		field("NewResponse", jen.Func().Params().Qual(protoPkg, "Message").Block(jen.Return(jen.New(msg(m.Proto.Output))))),
	)
	if len(m.RoutingFields) > 0 {
		fields = append(fields, field("RoutingKey", jen.Func().Params(jen.Id("req").Qual(protoPkg, "Message")).String().Block(
			jen.Return(routingKeyExpr(m)),
		)))
	}
	fields = append(fields, field("Handler", jen.Id("_"+p+"_Handler")))
	return literal(fields...)
}

// routingKeyExpr formats the routing key field of req as a string. The
// getters are nil-safe, so an unset message on the path yields the zero
// value's key rather than a panic.
func routingKeyExpr(m *Method) jen.Code {
	v := jen.Id("req").Assert(jen.Op("*").Add(msg(m.Proto.Input)))
	for _, fd := range m.RoutingFields {
		v = v.Dot("Get" + fd.GoName).Call()
	}
	last := m.RoutingFields[len(m.RoutingFields)-1]
	switch last.Desc.Kind() {
	case protoreflect.StringKind:
		return v
	case protoreflect.BytesKind:
		return jen.String().Call(v)
	case protoreflect.BoolKind:
		return jen.Qual(strconvPkg, "FormatBool").Call(v)
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return jen.Qual(strconvPkg, "FormatInt").Call(v, jen.Lit(10))
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return jen.Qual(strconvPkg, "FormatUint").Call(v, jen.Lit(10))
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind, protoreflect.EnumKind:
		return jen.Qual(strconvPkg, "FormatInt").Call(jen.Int64().Call(v), jen.Lit(10))
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return jen.Qual(strconvPkg, "FormatUint").Call(jen.Uint64().Call(v), jen.Lit(10))
	case protoreflect.FloatKind:
		return jen.Qual(strconvPkg, "FormatFloat").Call(jen.Float64().Call(v), jen.LitRune('g'), jen.Lit(-1), jen.Lit(32))
	case protoreflect.DoubleKind:
		return jen.Qual(strconvPkg, "FormatFloat").Call(v, jen.LitRune('g'), jen.Lit(-1), jen.Lit(64))
	}
	panic("generator: routing key of kind " + last.Desc.Kind().String() + " passed validation")
}
