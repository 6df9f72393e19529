// Package labsvc is the code generated from lab.proto, the Logicsvr that
// package logicsvr's tests build and run as a real process: its main is
// generated (labsvc/logicsvr/lab) and its handlers are in
// labsvc/logicsvr/lab/handlers, by the convention of `svrkit gen -mains`.
package labsvc

//go:generate go run github.com/svrkit/svrkit/tools/svrkit gen -mains -I .. -out .. lab.proto
