// Package monitorpb is svrkit/monitor.proto compiled: the messages the
// monitor agent reports with and the monitor center's services. The
// center's generated main is logicsvr/monitor below it, with its handlers
// in logicsvr/monitor/handlers.
package monitorpb

//go:generate go run github.com/svrkit/svrkit/tools/svrkit gen -mains -I ../../../idl -module github.com/svrkit/svrkit -out ../../.. ../../../idl/svrkit/monitor.proto
