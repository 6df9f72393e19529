// Package secrets is the IM backend's rule for the secrets in its
// Logicsvrs' app configs (session_secret, sync_key_secret): a production
// run refuses, at start, the development secrets that
// examples/im/topology.json publishes and any secret shorter than MinBytes,
// with a message that says what to do instead; a development run ("dev":
// true in the Logicsvr's config, which `svrkit up` writes) accepts them and
// logs a warning.
//
// Why refuse rather than warn: a token signed with the topology's secret is
// as good as a real one to a deployment that kept it, and nobody reads the
// warnings of a service that works. A short secret is refused because the
// session MAC is only as strong as its key, and a secret typed by hand is
// guessable offline from a single token.
package secrets

import (
	"fmt"
	"slices"
	"strings"

	"github.com/svrkit/svrkit/logicsvr"
)

// MinBytes is the shortest secret a production run accepts: 256 bits, if
// the bytes are random.
const MinBytes = 32

// development lists the secrets examples/im/topology.json publishes; a
// test keeps the two in step.
var development = []string{"dev-only: set your own secret in production"}

// IsDevelopment reports whether secret is one anyone can read in the
// repository.
func IsDevelopment(secret string) bool {
	return slices.Contains(development, secret) || strings.HasPrefix(secret, "dev-only")
}

// Check applies the rule to the app config field (its JSON name) of h's
// config: an error to return from the handler constructor, so the
// Logicsvr does not start. A host built only for -buildinfo is not
// checked: it has no config and never serves.
func Check(h *logicsvr.Host, field, secret string) error {
	if h.InfoOnly() {
		return nil
	}
	warning, err := check(field, secret, h.Config().Dev)
	if warning != "" {
		h.Logger().Warn(warning)
	}
	return err
}

func check(field, secret string, dev bool) (warning string, err error) {
	const how = "at least 32 random bytes, the same on every Logicsvr that shares it (e.g. `openssl rand -base64 32`)"
	switch {
	case secret == "":
		return "", fmt.Errorf("app config: %s is required: %s", field, how)
	case dev && (IsDevelopment(secret) || len(secret) < MinBytes):
		return fmt.Sprintf("DEVELOPMENT MODE: %s is a development secret; this config must never serve real users", field), nil
	case IsDevelopment(secret):
		return "", fmt.Errorf("app config: REFUSING TO START: %s is the public development secret of examples/im/topology.json, "+
			"which anyone can read and sign tokens with. Set your own: %s. For a development run, set \"dev\": true in this "+
			"Logicsvr's config (svrkit up does)", field, how)
	case len(secret) < MinBytes:
		return "", fmt.Errorf("app config: REFUSING TO START: %s has %d bytes, fewer than %d: %s. For a development run, "+
			"set \"dev\": true in this Logicsvr's config", field, len(secret), MinBytes, how)
	}
	return "", nil
}
