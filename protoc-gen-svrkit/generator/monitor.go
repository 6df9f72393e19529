package generator

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/dave/jennifer/jen"
	svrkitpb "github.com/svrkit/svrkit/idl/svrkit"
	"github.com/svrkit/svrkit/svrkit/monitor/rule"
	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Monitor points: enum values with option (svrkit.monitor). For each such
// enum E the generated file declares a constant E_V_ID of type monitor.ID
// per value V, a table E_MonitorDecls, and an init function that declares
// the table, so that a process linking the package tells the agent (and
// through it the center) every point's name, unit and alert rule.

// monitorPkg is the import path of the monitor API. It is a runtime
// package, but the generator only names it in generated code; the rule
// language it validates with is a leaf package of its own.
const monitorPkg = "github.com/svrkit/svrkit/svrkit/monitor"

// maxMonitorID mirrors monitor.MaxID.
const maxMonitorID = 1<<24 - 1

// Field numbers for source positions of enum value options.
const enumValueOptionsField = 3 // EnumValueDescriptorProto.options

// MonitorEnum is an enum whose values declare monitor points.
type MonitorEnum struct {
	Proto  *protogen.Enum
	File   *protogen.File
	Points []*MonitorPoint
}

// MonitorPoint is one validated monitor point.
type MonitorPoint struct {
	Proto *protogen.EnumValue
	ID    uint32
	Name  string
	Unit  string
	Gauge bool
	Alert string
}

var monitorName = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$`)

// monitorEnums finds and validates the monitor enums of f.
func (l *loader) monitorEnums(f *protogen.File) []*MonitorEnum {
	var out []*MonitorEnum
	var walk func(enums []*protogen.Enum, msgs []*protogen.Message)
	walk = func(enums []*protogen.Enum, msgs []*protogen.Message) {
		for _, e := range enums {
			if me := l.monitorEnum(f, e); me != nil {
				out = append(out, me)
			}
		}
		for _, m := range msgs {
			walk(m.Enums, m.Messages)
		}
	}
	walk(f.Enums, f.Messages)
	return out
}

func monitorOptions(v *protogen.EnumValue) *svrkitpb.MonitorOptions {
	o, _ := proto.GetExtension(v.Desc.Options(), svrkitpb.E_Monitor).(*svrkitpb.MonitorOptions)
	return o
}

func (l *loader) monitorEnum(f *protogen.File, e *protogen.Enum) *MonitorEnum {
	declares := false
	for _, v := range e.Values {
		if monitorOptions(v) != nil {
			declares = true
		}
	}
	if !declares {
		return nil
	}
	me := &MonitorEnum{Proto: e, File: f}
	for _, v := range e.Values {
		o := monitorOptions(v)
		path := v.Location.Path
		optAt := func(field int32) []protoreflect.SourcePath {
			return at(path, enumValueOptionsField, svrkitpb.E_Monitor.Field, field)
		}
		name := v.Desc.FullName()
		num := int64(v.Desc.Number())
		if num == 0 {
			if o != nil {
				l.errorf(f, optAt(1), "enum value %s: monitor ID 0 is invalid: keep the zero value without (svrkit.monitor)", name)
			}
			continue
		}
		if o == nil || o.GetName() == "" {
			l.errorf(f, optAt(1), "enum value %s: enum %s declares monitor points, so every value but the zero value needs option (svrkit.monitor).name",
				name, e.Desc.FullName())
			continue
		}
		p := &MonitorPoint{Proto: v, Name: o.GetName(), Unit: o.GetUnit(), Gauge: o.GetGauge(), Alert: o.GetAlert()}
		if p.Unit == "" {
			p.Unit = "count"
		}
		ok := true
		switch {
		case num < 0 || num > maxMonitorID:
			l.errorf(f, at(path), "enum value %s: monitor ID %d is out of range 1..%d", name, num, maxMonitorID)
			ok = false
		case l.monitorIDs[uint32(num)] != nil:
			prev := l.monitorIDs[uint32(num)]
			l.errorf(f, at(path), "enum value %s: monitor ID %d is already declared by %s (%s)", name, num, prev.Proto.Desc.FullName(), l.whereLoc(prev.Proto.Location))
			ok = false
		}
		switch {
		case !monitorName.MatchString(p.Name):
			l.errorf(f, optAt(1), "enum value %s: monitor name %q must be dotted lower-case words (letters, digits, '_'), e.g. \"im.messages_sent\"", name, p.Name)
			ok = false
		case strings.HasPrefix(p.Name, "svrkit."):
			l.errorf(f, optAt(1), "enum value %s: monitor names starting \"svrkit.\" belong to the framework", name)
			ok = false
		case l.monitorNames[p.Name] != nil:
			prev := l.monitorNames[p.Name]
			l.errorf(f, optAt(1), "enum value %s: monitor name %q is already declared by %s (%s)", name, p.Name, prev.Proto.Desc.FullName(), l.whereLoc(prev.Proto.Location))
			ok = false
		}
		if len(p.Unit) > 32 || strings.ContainsAny(p.Unit, " \t\r\n\"") {
			l.errorf(f, optAt(2), "enum value %s: unit %q must be one short word, e.g. count, ms, bytes", name, p.Unit)
			ok = false
		}
		if p.Alert != "" {
			if _, err := rule.Parse(p.Alert); err != nil {
				var re *rule.Error
				if errors.As(err, &re) {
					err = fmt.Errorf("%s (in %q)", re, p.Alert)
				}
				l.errorf(f, optAt(4), "enum value %s: alert rule: %v", name, err)
				ok = false
			}
		}
		if !ok {
			continue
		}
		p.ID = uint32(num)
		l.monitorIDs[p.ID] = p
		l.monitorNames[p.Name] = p
		me.Points = append(me.Points, p)
	}
	return me
}

// monitorIdents lists the package-level identifiers generated for e.
func monitorIdents(e *MonitorEnum) []string {
	n := e.Proto.GoIdent.GoName
	ids := []string{n + "_MonitorDecls"}
	for _, p := range e.Points {
		ids = append(ids, p.Proto.GoIdent.GoName+"_ID")
	}
	return ids
}

func (e *emitter) monitorEnum(me *MonitorEnum) {
	f := e.f
	n := me.Proto.GoIdent.GoName
	full := string(me.Proto.Desc.FullName())
	f.Commentf("Monitor IDs of %s: pass them to monitor.Add and monitor.Set.", full)
	f.Const().DefsFunc(func(g *jen.Group) {
		for _, p := range me.Points {
			if c := p.Proto.Comments.Leading; c != "" {
				g.Add(comment(c))
			}
			g.Id(p.Proto.GoIdent.GoName+"_ID").Qual(monitorPkg, "ID").Op("=").Lit(int(p.ID))
		}
	})
	f.Line()
	f.Commentf("%s_MonitorDecls declares the monitor points of %s; the package", n, full)
	f.Comment("declares them at init, so the agent and the monitor center know their")
	f.Comment("names, units and alert rules.")
	var elems []jen.Code
	for _, p := range me.Points {
		kind := "Counter"
		if p.Gauge {
			kind = "Gauge"
		}
		fields := []jen.Code{
			field("ID", jen.Id(p.Proto.GoIdent.GoName+"_ID")),
			field("Name", jen.Lit(p.Name)),
			field("Unit", jen.Lit(p.Unit)),
			field("Kind", jen.Qual(monitorPkg, kind)),
		}
		if p.Alert != "" {
			fields = append(fields, field("Alert", jen.Lit(p.Alert)))
		}
		elems = append(elems, jen.Values(fields...))
	}
	f.Var().Id(n+"_MonitorDecls").Op("=").Index().Qual(monitorPkg, "Decl").Add(literal(elems...))
	f.Line()
	f.Func().Id("init").Params().Block(
		jen.Qual(monitorPkg, "Declare").Call(jen.Id(n + "_MonitorDecls").Op("...")),
	)
	f.Line()
}
