package generator_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/svrkit/svrkit/protoc-gen-svrkit/compiler"
	"github.com/svrkit/svrkit/protoc-gen-svrkit/generator"
)

// TestInvalidIDL checks that each mistake is reported, at the position of
// the offending option or rpc, with a message that says what to fix. Every
// error of a run is reported, in position order.
func TestInvalidIDL(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files []string
		want  []string
	}{
		{"missing_cmdid", []string{"invalid/missing_cmdid.proto"}, []string{
			`invalid/missing_cmdid.proto:9:3: method invalid.S.NoOptions has no cmdid: set option (svrkit.method).cmdid`,
			`invalid/missing_cmdid.proto:10:3: method invalid.S.NoCmdID has no cmdid: set option (svrkit.method).cmdid`,
			`invalid/missing_cmdid.proto:14:5: method invalid.S.Zero: cmdid 0 is invalid: cmdids start at 1`,
		}},
		{"duplicate_cmdid", []string{"invalid/duplicate_cmdid.proto"}, []string{
			`invalid/duplicate_cmdid.proto:11:31: method invalid.A.Second: cmdid 7 is already used by invalid.A.First (invalid/duplicate_cmdid.proto:10:3) in logicsvr "one"`,
			`invalid/duplicate_cmdid.proto:18:5: method invalid.B.Third: cmdid 7 is already used by invalid.A.First (invalid/duplicate_cmdid.proto:10:3) in logicsvr "one"`,
		}},
		{"reserved_cmdid", []string{"invalid/reserved_cmdid.proto"}, []string{
			`invalid/reserved_cmdid.proto:10:33: method invalid.S.Reserved: cmdid 4294901761 (0xffff0001) is reserved for the framework: use a cmdid below 0xffff0000`,
		}},
		{"cgi", []string{"invalid/cgi_a.proto", "invalid/cgi_b.proto"}, []string{
			`invalid/cgi_a.proto:14:5: method invalid.cgi.A.Relative: CGI path "cgi-bin/relative" must start with "/"`,
			`invalid/cgi_a.proto:17:5: method invalid.cgi.A.Query: CGI path "/cgi-bin/q?x=1" must not contain spaces, '?' or '#'`,
			`invalid/cgi_b.proto:12:5: method invalid.cgi.B.Get: CGI path "/cgi-bin/get" is already used by invalid.cgi.A.Get (invalid/cgi_a.proto:10:3) in logicsvr "web"`,
		}},
		{"routing", []string{"invalid/routing.proto"}, []string{
			`invalid/routing.proto:16:15: method invalid.Routed.Missing: routing_key "uin": request message invalid.NoUin has no field "uin"`,
			`invalid/routing.proto:17:12: method invalid.Routed.List: routing_key "uin": field invalid.Repeated.uin is repeated, not a scalar`,
			`invalid/routing.proto:18:15: method invalid.Routed.Message: routing_key "uin": field invalid.Nested.uin is a message, not a scalar`,
			`invalid/routing.proto:19:16: method invalid.Routed.MapField: routing_key "uin": field invalid.Map.uin is a map, not a scalar`,
			`invalid/routing.proto:26:14: method invalid.Dotted.Scalar: routing_key "name.uin": field invalid.WithHeader.name is a string, not a message`,
		}},
		{"streaming", []string{"invalid/streaming.proto"}, []string{
			`invalid/streaming.proto:9:14: method invalid.Chat.Upload: streaming methods are not supported yet`,
			`invalid/streaming.proto:10:25: method invalid.Chat.Watch: streaming methods are not supported yet`,
			`invalid/streaming.proto:11:12: method invalid.Chat.Both: streaming methods are not supported yet`,
		}},
		{"priority", []string{"invalid/priority.proto"}, []string{
			`invalid/priority.proto:9:3: service invalid.S: logicsvr "9lives" is not a valid name: use letters, digits, '_' and '-', starting with a letter`,
			`invalid/priority.proto:12:5: method invalid.S.Over: priority 256 is out of range 0-255`,
			`invalid/priority.proto:20:3: service invalid.Guarded: caller "2fast" is not a valid Logicsvr name: use letters, digits, '_' and '-', starting with a letter`,
			`invalid/priority.proto:20:3: service invalid.Guarded: caller "send" is listed twice`,
		}},
		{"monitor", []string{"invalid/monitor.proto"}, []string{
			`invalid/monitor.proto:7:13: enum value invalid.ZERO: monitor ID 0 is invalid: keep the zero value without (svrkit.monitor)`,
			`invalid/monitor.proto:8:3: enum value invalid.MISSING: enum invalid.Points declares monitor points, so every value but the zero value needs option (svrkit.monitor).name`,
			`invalid/monitor.proto:9:17: enum value invalid.BAD_NAME: monitor name "Bad Name" must be dotted lower-case words (letters, digits, '_'), e.g. "im.messages_sent"`,
			`invalid/monitor.proto:10:18: enum value invalid.FRAMEWORK: monitor names starting "svrkit." belong to the framework`,
			`invalid/monitor.proto:12:18: enum value invalid.DUP_NAME2: monitor name "ok.first" is already declared by invalid.DUP_NAME (invalid/monitor.proto:11:3)`,
			`invalid/monitor.proto:13:17: enum value invalid.BAD_RULE: alert rule: column 14: expected a number, found the end of the rule (in "sum over 1m >")`,
			`invalid/monitor.proto:14:17: enum value invalid.BAD_UNIT: unit "two words" must be one short word, e.g. count, ms, bytes`,
			`invalid/monitor.proto:15:3: enum value invalid.TOO_BIG: monitor ID 16777216 is out of range 1..16777215`,
			`invalid/monitor.proto:20:3: enum value invalid.AGAIN: monitor ID 4 is already declared by invalid.DUP_NAME (invalid/monitor.proto:11:3)`,
		}},
		{"collision", []string{"invalid/collision.proto"}, []string{
			`invalid/collision.proto:9:1: service invalid.Greeter: generated name GreeterServer collides with message invalid.GreeterServer (invalid/collision.proto:7:1)`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set, err := compiler.Parse([]string{"testdata"}, tc.files...)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			files, err := compiler.Generate(set, tc.files, "paths=source_relative")
			if err == nil {
				t.Fatalf("generated %d files from invalid IDL, want errors", len(files))
			}
			var errs generator.Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error %v (%T) is not generator.Errors", err, err)
			}
			if got, want := err.Error(), strings.Join(tc.want, "\n"); got != want {
				t.Errorf("errors:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// TestSyntaxError checks that parse errors carry file:line:column too.
func TestSyntaxError(t *testing.T) {
	_, err := compiler.Parse([]string{"testdata"}, "invalid/syntax.proto")
	var errs compiler.PosErrors
	if !errors.As(err, &errs) {
		t.Fatalf("error %v (%T) is not compiler.PosErrors", err, err)
	}
	if got, want := err.Error(), `invalid/syntax.proto:7:1: syntax error: expecting ';'`; got != want {
		t.Errorf("error:\n%s\nwant:\n%s", got, want)
	}
}
