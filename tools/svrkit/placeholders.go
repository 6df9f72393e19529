package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Placeholders are how a topology file refers to what up decides at run
// time: ports, paths, the state file.
//
// In a service's args, env values, config strings and ready probe, the
// instance's own: {http} {rpc} {admin} {routes} {name} {dir} {data}, and
// its service credentials: {key} (its identity's private key file),
// {keyring} (the public keys of every identity) and {keys} (their
// directory).
//
// A service's extra ports ("ports": ["link"]) are placeholders of its
// instances too: {link} is the instance's link port.
//
// In the usage lines: {data} {dir} {state}, and {http:NAME} {rpc:NAME}
// {admin:NAME} where NAME is an instance, or a service (its first
// instance); {PORT:NAME} for a port the service names in "ports".
//
// A placeholder up does not know stays in the text literally; up warns
// about it when it loads the topology, before the long build, so a typo
// does not surface as a strange flag value minutes later.
var (
	instancePlaceholders = []string{"{http}", "{rpc}", "{admin}", "{routes}", "{name}", "{dir}", "{data}", "{key}", "{keyring}", "{keys}"}
	usagePlaceholders    = []string{"{data}", "{dir}", "{state}"}
	addrKinds            = []string{"http", "rpc", "admin"}
	// reservedPortNames cannot name a service's extra port.
	reservedPortNames = []string{"http", "rpc", "admin", "routes", "name", "dir", "data", "key", "keyring", "keys", "state"}

	// placeholderLike is what a person means as a placeholder: a word in
	// braces, optionally with a :NAME. JSON in usage lines ({"a": 1}) and
	// Go templates do not match.
	placeholderLike = regexp.MustCompile(`\{[A-Za-z]+(?::[^{}\s"]*)?\}`)
)

// expand replaces an instance's placeholders in s.
func (u *up) expand(in *instance, s string) string {
	pairs := []string{"{http}", in.http, "{rpc}", in.rpc, "{admin}", in.admin,
		"{routes}", u.routesPath(), "{name}", in.name, "{dir}", u.dir, "{data}", u.data,
		"{key}", u.keyPath(in), "{keyring}", u.keyring, "{keys}", u.keysDir()}
	for _, p := range in.svc.Ports {
		pairs = append(pairs, "{"+p+"}", in.ports[p])
	}
	return strings.NewReplacer(pairs...).Replace(s)
}

// expandJSON replaces an instance's placeholders in every string of a
// decoded JSON value.
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

// expandUsage replaces the placeholders of the topology's usage lines.
func (u *up) expandUsage(s string) string {
	pairs := []string{"{data}", u.data, "{dir}", u.dir, "{state}", u.statePath()}
	first := map[string]bool{}
	for _, in := range u.instances {
		names := []string{in.name}
		if in.name != in.svc.Name && !first[in.svc.Name] {
			// A service with replicas stands for its first instance.
			first[in.svc.Name] = true
			names = append(names, in.svc.Name)
		}
		for _, n := range names {
			pairs = append(pairs, "{http:"+n+"}", in.http, "{rpc:"+n+"}", in.rpc, "{admin:"+n+"}", in.admin)
			for _, p := range in.svc.Ports {
				pairs = append(pairs, "{"+p+":"+n+"}", in.ports[p])
			}
		}
	}
	return strings.NewReplacer(pairs...).Replace(s)
}

// placeholderWarnings lists the placeholders of t that up will leave as
// they are, one warning each.
func (t *topology) placeholderWarnings() []string {
	var warns []string
	unknown := func(s string, known func(string) bool) []string {
		var bad []string
		for _, p := range placeholderLike.FindAllString(s, -1) {
			if !known(p) && !slices.Contains(bad, p) {
				bad = append(bad, p)
			}
		}
		return bad
	}
	for _, s := range t.Services {
		isInstance := func(p string) bool {
			return slices.Contains(instancePlaceholders, p) || slices.Contains(s.Ports, strings.Trim(p, "{}"))
		}
		var texts []string
		texts = append(texts, s.Args...)
		for _, v := range s.Env {
			texts = append(texts, v)
		}
		texts = append(texts, s.Ready)
		if len(s.Config) > 0 {
			var cfg any
			if json.Unmarshal(s.Config, &cfg) == nil {
				texts = append(texts, jsonStrings(cfg)...)
			}
		}
		for _, text := range texts {
			for _, p := range unknown(text, isInstance) {
				warns = append(warns, fmt.Sprintf("service %s: %s is not a placeholder (known: %s); it is passed as it is",
					s.Name, p, strings.Join(instancePlaceholders, " ")))
			}
		}
	}
	owner := map[string]*topoService{} // instance and service names
	for _, s := range t.Services {
		owner[s.Name] = s
		for _, n := range s.instanceNames() {
			owner[n] = s
		}
	}
	isUsage := func(p string) bool {
		if slices.Contains(usagePlaceholders, p) {
			return true
		}
		kind, name, ok := strings.Cut(strings.Trim(p, "{}"), ":")
		s := owner[name]
		return ok && s != nil && (slices.Contains(addrKinds, kind) || slices.Contains(s.Ports, kind))
	}
	for _, line := range t.Usage {
		for _, p := range unknown(line, isUsage) {
			warns = append(warns, fmt.Sprintf("usage: %s is not a placeholder (known: %s, and {http:NAME} {rpc:NAME} {admin:NAME} with NAME a service or instance, {PORT:NAME} for its named ports); it is printed as it is",
				p, strings.Join(usagePlaceholders, " ")))
		}
	}
	return warns
}

// jsonStrings returns every string in a decoded JSON value.
func jsonStrings(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case map[string]any:
		var out []string
		for _, e := range v {
			out = append(out, jsonStrings(e)...)
		}
		return out
	case []any:
		var out []string
		for _, e := range v {
			out = append(out, jsonStrings(e)...)
		}
		return out
	}
	return nil
}
