// Package chain folds interceptors around a call. svrkit's server and
// client and its HTTP front share the one rule it encodes — the first
// interceptor in a list is the outermost — without making the folding
// itself part of svrkit's public API.
package chain

// Fold returns h wrapped in every interceptor of ics, ics[0] outermost;
// around puts one interceptor around the handler it is given.
func Fold[H, I any](h H, ics []I, around func(ic I, next H) H) H {
	for i := len(ics) - 1; i >= 0; i-- {
		h = around(ics[i], h)
	}
	return h
}
