package svrkit

import (
	"testing"
)

func TestParseRoutes(t *testing.T) {
	cases := []struct {
		name, in string
		ok       bool
	}{
		{"good", `{"services": {"a.B": ["127.0.0.1:1"]}}`, true},
		{"empty list", `{"services": {"a.B": []}}`, true},
		{"no services", `{}`, false},
		{"unknown field", `{"services": {}, "extra": 1}`, false},
		{"empty endpoint", `{"services": {"a.B": [""]}}`, false},
		{"not json", `services: a`, false},
		{"wrong type", `{"services": {"a.B": "127.0.0.1:1"}}`, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseRoutes([]byte(c.in))
			if (err == nil) != c.ok {
				t.Fatalf("err = %v, want ok=%v", err, c.ok)
			}
		})
	}
}

func FuzzParseRoutes(f *testing.F) {
	f.Add([]byte(`{"services": {"a.B": ["127.0.0.1:1", "127.0.0.1:2"]}}`))
	f.Add([]byte(`{"services": {}}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, b []byte) {
		routes, err := parseRoutes(b)
		if err != nil {
			return
		}
		for svc, addrs := range routes {
			for _, a := range addrs {
				if a == "" {
					t.Fatalf("service %q accepted an empty endpoint", svc)
				}
			}
		}
	})
}
