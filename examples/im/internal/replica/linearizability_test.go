package replica_test

import (
	"context"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/svrkit"
)

var long = flag.Bool("replica.long", false, "run the linearizability test longer and over more seeds")

// The linearizability check: clients read, write and compare-and-set a few
// keys of the group concurrently while a nemesis SIGKILLs the leader,
// SIGSTOPs and resumes a replica and restarts killed ones; every call's
// invocation, answer and times are recorded, and porcupine checks that
// some order of the operations, each taking effect between its call and
// its return, explains every answer.
//
// A write that failed with Unavailable or a deadline may or may not have
// taken effect: it is recorded with an unknown outcome and a return time
// of forever. Failed reads change nothing and are dropped.
func TestLinearizableUnderFaults(t *testing.T) {
	seeds, run := []uint64{1, 2}, 8*time.Second
	if *long {
		seeds, run = []uint64{1, 2, 3, 4, 5, 6}, 40*time.Second
	}
	if testing.Short() {
		seeds, run = seeds[:1], 5*time.Second
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { checkLinearizable(t, seed, run) })
	}
}

type kvInput struct {
	op     int // opGet, opPut, opCAS
	key    string
	value  string
	expect uint64
}

type kvOutput struct {
	value   string // "" when absent
	version uint64
	ok      bool // get: found; cas: applied
	unknown bool // a write whose outcome is unknown
}

const (
	opGet = iota
	opPut
	opCAS
)

// kvState is one key's state. Versions are the store's revisions; after a
// write of unknown outcome took effect, the new version is not known
// until a read shows it.
type kvState struct {
	value   string
	version uint64
	known   bool
}

var kvModel = porcupine.NondeterministicModel{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		by := map[string][]porcupine.Operation{}
		for _, op := range h {
			k := op.Input.(kvInput).key
			by[k] = append(by[k], op)
		}
		var out [][]porcupine.Operation
		for _, ops := range by {
			out = append(out, ops)
		}
		return out
	},
	Init: func() []any { return []any{kvState{known: true}} },
	Step: func(st, in, out any) []any {
		s, i, o := st.(kvState), in.(kvInput), out.(kvOutput)
		written := kvState{value: i.value, version: o.version, known: true}
		switch i.op {
		case opGet:
			if !o.ok {
				if s.value == "" {
					return []any{s}
				}
				return nil
			}
			if s.value == o.value && (!s.known || s.version == o.version) {
				return []any{kvState{value: o.value, version: o.version, known: true}}
			}
			return nil
		case opPut:
			if o.unknown {
				return []any{s, kvState{value: i.value}}
			}
			if s.known && o.version <= s.version {
				return nil
			}
			return []any{written}
		case opCAS:
			surely := (i.expect == 0 && s.value == "") || (i.expect != 0 && s.value != "" && s.known && s.version == i.expect)
			maybe := surely || (i.expect != 0 && s.value != "" && !s.known)
			switch {
			case o.unknown && maybe:
				return []any{s, kvState{value: i.value}}
			case o.unknown:
				return []any{s}
			case o.ok && maybe && (!s.known || o.version > s.version):
				return []any{written}
			case !o.ok && !surely:
				return []any{s}
			}
			return nil
		}
		return nil
	},
	Equal: func(a, b any) bool { return a.(kvState) == b.(kvState) },
	DescribeOperation: func(in, out any) string {
		i, o := in.(kvInput), out.(kvOutput)
		return fmt.Sprintf("%d %s %q exp %d -> %+v", i.op, i.key, i.value, i.expect, o)
	},
}

func checkLinearizable(t *testing.T, seed uint64, run time.Duration) {
	g := startProcGroup(t, 3)
	g.waitLeader(30 * time.Second)
	rng := rand.New(rand.NewPCG(seed, 14))
	keys := []string{"x", "y", "z"}
	start := time.Now()
	now := func() int64 { return int64(time.Since(start)) }

	var mu sync.Mutex
	var history []porcupine.Operation
	failures := map[string]int{} // by first words of the message, for the log
	record := func(client int, in kvInput, call int64, out kvOutput, ret int64) {
		mu.Lock()
		history = append(history, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
		mu.Unlock()
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	const clients = 6
	for c := range clients {
		crng := rand.New(rand.NewPCG(seed, uint64(c)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			seen := map[string]uint64{} // a version this client read, for its CAS
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				in := kvInput{op: crng.IntN(3), key: keys[crng.IntN(len(keys))], value: fmt.Sprintf("c%d-%d", c, n)}
				if in.op == opCAS {
					in.expect = seen[in.key]
				}
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				call := now()
				out, err := doOp(ctx, g.store, in)
				ret := now()
				cancel()
				switch {
				case err == nil:
					if in.op == opGet {
						seen[in.key] = out.version
					}
					record(c, in, call, out, ret)
				case in.op == opGet:
					// A failed read changed nothing.
				default:
					msg := svrkit.AsError(err).Message()
					mu.Lock()
					failures[msg[:min(len(msg), 40)]]++
					mu.Unlock()
					out.unknown = true
					record(c, in, call, out, math.MaxInt64)
				}
			}
		}()
	}

	// The nemesis.
	deadline := time.Now().Add(run)
	faults := 0
	for time.Now().Before(deadline) {
		time.Sleep(time.Duration(300+rng.IntN(700)) * time.Millisecond)
		switch rng.IntN(3) {
		case 0: // kill the leader, restart it a moment later
			if l := g.leader(); l >= 0 {
				g.kill(l)
				time.Sleep(time.Duration(200+rng.IntN(800)) * time.Millisecond)
				g.start(l)
				faults++
			}
		case 1: // pause a replica (perhaps the leader) and resume it
			i := rng.IntN(3)
			g.signal(i, syscall.SIGSTOP)
			time.Sleep(time.Duration(300+rng.IntN(1500)) * time.Millisecond)
			g.signal(i, syscall.SIGCONT)
			faults++
		case 2: // kill any replica and restart it
			i := rng.IntN(3)
			g.kill(i)
			time.Sleep(time.Duration(100+rng.IntN(500)) * time.Millisecond)
			g.start(i)
			faults++
		}
	}
	close(stop)
	wg.Wait()

	ok, unknown := 0, 0
	for _, op := range history {
		if op.Output.(kvOutput).unknown {
			unknown++
		} else {
			ok++
		}
	}
	t.Logf("seed %d: %d faults, %d operations answered, %d writes of unknown outcome: %v", seed, faults, ok, unknown, failures)
	if ok < 50 {
		t.Fatalf("only %d operations answered: the group was not serving", ok)
	}
	res, _ := porcupine.CheckOperationsVerbose(kvModel.ToModel(), history, 60*time.Second)
	switch res {
	case porcupine.Ok:
	case porcupine.Illegal:
		t.Fatalf("seed %d: the history is not linearizable", seed)
	default:
		t.Fatalf("seed %d: the checker could not decide in time", seed)
	}
}

// doOp runs one operation through the routed storage client.
func doOp(ctx context.Context, st im.StorageClient, in kvInput) (kvOutput, error) {
	const user = 42
	switch in.op {
	case opGet:
		r, err := st.Get(ctx, &im.KVGetRequest{UserId: user, Key: []byte(in.key)})
		if svrkit.CodeOf(err) == svrkit.NotFound {
			return kvOutput{}, nil
		}
		if err != nil {
			return kvOutput{}, err
		}
		return kvOutput{value: string(r.GetValue()), version: r.GetVersion(), ok: true}, nil
	case opPut:
		r, err := st.Put(ctx, &im.KVPutRequest{UserId: user, Key: []byte(in.key), Value: []byte(in.value), AnyVersion: true})
		if err != nil {
			return kvOutput{}, err
		}
		return kvOutput{version: r.GetVersion(), ok: true}, nil
	default:
		r, err := st.Put(ctx, &im.KVPutRequest{UserId: user, Key: []byte(in.key), Value: []byte(in.value), ExpectVersion: in.expect})
		if svrkit.CodeOf(err) == svrkit.Aborted {
			return kvOutput{}, nil // the condition failed: nothing written
		}
		if err != nil {
			return kvOutput{}, err
		}
		return kvOutput{version: r.GetVersion(), ok: true}, nil
	}
}

// The model is not vacuous: a read that misses a write completed before
// it began, a lost CAS winner and a version going back are refused.
func TestModelRefusesAnomalies(t *testing.T) {
	m := kvModel.ToModel()
	op := func(call, ret int64, in kvInput, out kvOutput) porcupine.Operation {
		return porcupine.Operation{Input: in, Call: call, Output: out, Return: ret}
	}
	for name, h := range map[string][]porcupine.Operation{
		"stale read": {
			op(0, 1, kvInput{op: opPut, key: "x", value: "a"}, kvOutput{version: 5, ok: true}),
			op(2, 3, kvInput{op: opGet, key: "x"}, kvOutput{}),
		},
		"two CAS winners": {
			op(0, 1, kvInput{op: opPut, key: "x", value: "a"}, kvOutput{version: 5, ok: true}),
			op(2, 5, kvInput{op: opCAS, key: "x", value: "b", expect: 5}, kvOutput{version: 6, ok: true}),
			op(2, 5, kvInput{op: opCAS, key: "x", value: "c", expect: 5}, kvOutput{version: 7, ok: true}),
		},
		"version going back": {
			op(0, 1, kvInput{op: opPut, key: "x", value: "a"}, kvOutput{version: 5, ok: true}),
			op(2, 3, kvInput{op: opPut, key: "x", value: "b"}, kvOutput{version: 4, ok: true}),
		},
		"read of a value never written": {
			op(0, 1, kvInput{op: opPut, key: "x", value: "a"}, kvOutput{unknown: true}),
			op(2, 3, kvInput{op: opGet, key: "x"}, kvOutput{value: "b", version: 9, ok: true}),
		},
	} {
		if porcupine.CheckOperations(m, h) {
			t.Errorf("%s: accepted", name)
		}
	}
	ok := []porcupine.Operation{
		op(0, 1, kvInput{op: opPut, key: "x", value: "a"}, kvOutput{version: 5, ok: true}),
		op(2, math.MaxInt64, kvInput{op: opPut, key: "x", value: "b"}, kvOutput{unknown: true}),
		op(3, 4, kvInput{op: opGet, key: "x"}, kvOutput{value: "b", version: 8, ok: true}),
		op(5, 6, kvInput{op: opCAS, key: "x", value: "c", expect: 8}, kvOutput{version: 9, ok: true}),
	}
	if !porcupine.CheckOperations(m, ok) {
		t.Error("a linearizable history with an unknown write was refused")
	}
}
