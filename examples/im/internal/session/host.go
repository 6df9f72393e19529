package session

import (
	"errors"

	"github.com/svrkit/svrkit/logicsvr"
)

// Config is the "app" config of a Logicsvr that only checks sessions (the
// contact, send and sync Logicsvrs): {"session_secret": "..."}, the account
// Logicsvr's value.
type Config struct {
	SessionSecret string `json:"session_secret"`
}

// FromApp reads Config from h's app config and returns its Signer.
func FromApp(h *logicsvr.Host) (*Signer, error) {
	var cfg Config
	if err := h.AppConfig(&cfg); err != nil {
		return nil, err
	}
	return ForHost(h, cfg.SessionSecret)
}

// ForHost returns the Signer of a Logicsvr keyed with secret. A missing
// secret is an error, except under -buildinfo, where the host never serves
// and has no config to read it from.
func ForHost(h *logicsvr.Host, secret string) (*Signer, error) {
	if secret == "" && h.InfoOnly() {
		secret = "unused: -buildinfo"
	}
	s, err := NewSigner(secret)
	if err != nil {
		return nil, errors.New("app config: session_secret is required")
	}
	return s, nil
}
