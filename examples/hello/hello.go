// Package hello is the code generated from hello.proto: the HelloRequest and
// HelloReply messages, and the Greeter service's server interface,
// descriptor, registration function and typed client. It is the smallest
// complete svrkit example; examples/hello/server implements and serves it.
//
// Everything in this package but this file is generated. After editing
// hello.proto, regenerate with
//
//	go generate ./examples/hello
package hello

//go:generate go run github.com/svrkit/svrkit/tools/svrkit gen -I .. -out .. hello.proto
