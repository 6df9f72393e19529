package secrets

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	strong := strings.Repeat("k", MinBytes)
	for _, tc := range []struct {
		name, secret string
		dev          bool
		refused      string // a part of the error, "" when accepted
		warns        bool
	}{
		{"strong", strong, false, "", false},
		{"strong in dev", strong, true, "", false},
		{"development secret", development[0], false, "public development secret", false},
		{"development secret in dev", development[0], true, "", true},
		{"short", "s3cret", false, "has 6 bytes, fewer than 32", false},
		{"short in dev", "s3cret", true, "", true},
		{"empty", "", false, "is required", false},
		{"empty in dev", "", true, "is required", false},
		{"dev-only prefix", "dev-only: " + strong, false, "public development secret", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			warning, err := check("session_secret", tc.secret, tc.dev)
			if tc.refused == "" && err != nil || tc.refused != "" && (err == nil || !strings.Contains(err.Error(), tc.refused)) {
				t.Fatalf("check = %v, want refused %q", err, tc.refused)
			}
			if err != nil && !strings.Contains(err.Error(), "session_secret") {
				t.Fatalf("error %q does not name the field", err)
			}
			if (warning != "") != tc.warns {
				t.Fatalf("warning %q, want one: %v", warning, tc.warns)
			}
		})
	}
}

// Every secret topology.json publishes is a development secret, and every
// service that reads one is in development mode there.
func TestTopologySecretsAreDevelopment(t *testing.T) {
	for _, file := range []string{"../../topology.json", "../../topology-replicated.json", "../../topology-sharded.json"} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var topo struct {
			Services []struct {
				Name   string `json:"name"`
				Config struct {
					Dev bool           `json:"dev"`
					App map[string]any `json:"app"`
				} `json:"config"`
			} `json:"services"`
		}
		if err := json.Unmarshal(b, &topo); err != nil {
			t.Fatal(err)
		}
		seen := 0
		for _, s := range topo.Services {
			for k, v := range s.Config.App {
				if !strings.HasSuffix(k, "_secret") {
					continue
				}
				seen++
				if sv, _ := v.(string); !IsDevelopment(sv) {
					t.Errorf("%s: %s: %s %q is published in the repository but not a development secret", file, s.Name, k, sv)
				}
				if !s.Config.Dev {
					t.Errorf("%s: %s: reads %s but its config does not say \"dev\": true", file, s.Name, k)
				}
			}
		}
		if seen == 0 {
			t.Fatalf("no secrets found in %s", file)
		}
	}
}
