// Package notes is the code generated from notes.proto: two Logicsvrs,
// users and notes, declared in one IDL file and built into two binaries.
//
// It shows the Logicsvr convention of `svrkit gen -mains`:
//
//	notes.proto                       the IDL (logicsvr: "users" / "notes")
//	notes.pb.go, notes.svrkit.go      generated messages, interfaces, clients
//	logicsvr/users/main.go            generated main of the users Logicsvr
//	logicsvr/users/handlers/          hand-written: func NewUsers(*logicsvr.Host) (UsersServer, error)
//	logicsvr/notes/main.go            generated main of the notes Logicsvr
//	logicsvr/notes/handlers/          hand-written: func NewNotes(*logicsvr.Host) (NotesServer, error)
//	topology.json                     both, wired together, for `svrkit up`
//
// Run both on this machine, with routing tables written for you:
//
//	go run ./tools/svrkit up examples/notes
//
// Each main imports only its own handlers package, so the notes binary does
// not contain the users CGIs and the other way round (notes_test.go checks
// the binaries' symbol tables).
package notes

//go:generate go run github.com/svrkit/svrkit/tools/svrkit gen -mains -I .. -out .. notes.proto
