package main

import (
	"strings"
)

// expand replaces an instance's placeholders in s.
func (u *up) expand(in *instance, s string) string {
	return strings.NewReplacer("{http}", in.http, "{rpc}", in.rpc, "{admin}", in.admin,
		"{routes}", u.routesPath(), "{name}", in.name, "{dir}", u.dir, "{data}", u.data).Replace(s)
}

// expandUsage replaces {data}, {dir} and {state} (the state file) in the
// topology's usage text, and {http:NAME} {rpc:NAME} {admin:NAME} with an
// instance's addresses.
func (u *up) expandUsage(s string) string {
	pairs := []string{"{data}", u.data, "{dir}", u.dir, "{state}", u.statePath()}
	for _, in := range u.instances {
		pairs = append(pairs, "{http:"+in.name+"}", in.http, "{rpc:"+in.name+"}", in.rpc, "{admin:"+in.name+"}", in.admin)
	}
	return strings.NewReplacer(pairs...).Replace(s)
}

// expandJSON replaces placeholders in every string of a decoded JSON value.
func (u *up) expandJSON(in *instance, v any) any {
	switch v := v.(type) {
	case string:
		return u.expand(in, v)
	case map[string]any:
		for k, e := range v {
			v[k] = u.expandJSON(in, e)
		}
	case []any:
		for i, e := range v {
			v[i] = u.expandJSON(in, e)
		}
	}
	return v
}
