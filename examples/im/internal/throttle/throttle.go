// Package throttle keeps an expensive, open door (the account Logicsvr's
// Login: an argon2id hash per attempt, for anyone who asks) usable by its
// legitimate users while someone hammers it. Two mechanisms, independent of
// each other:
//
//   - Backoff counts failures per key (a client address, an account, a
//     device cookie) and, past a few free ones, refuses further attempts
//     until a delay that doubles with each failure has passed. A refusal
//     costs a map lookup, not a hash, so hammering a throttled key costs
//     the server almost nothing and teaches the attacker nothing. Attempts
//     in flight count as failures until they end, so a burst of parallel
//     guesses gets no more than the free ones.
//
//   - Fair shares a fixed number of slots (the hashes the machine can
//     compute at once) among queues, one per client, round robin, with a
//     bound on each queue: a client that sends many attempts at once waits
//     behind its own, and a newcomer waits for at most one slot per other
//     busy client, not for everyone's backlog. Beyond its bound a client's
//     attempt is refused at once, so one client cannot hold more than that
//     many of the method's concurrency slots either.
//
// Both keep their state in memory, per process. With several replicas of a
// Logicsvr behind a balancer that does not route by client, each replica
// throttles on its own: an attacker gets the free attempts once per
// replica. Entries live in bounded LRUs; an attacker who floods them with
// keys can evict a key's history, but to flood them it must get past the
// per-client keys first.
package throttle
