package session

import (
	"context"
	"errors"
	"time"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/secrets"
	"github.com/svrkit/svrkit/logicsvr"
)

// Config is the "app" config of a Logicsvr that only checks sessions (the
// contact, send and sync Logicsvrs): the account Logicsvr's values of
// session_secret and session_ttl.
type Config struct {
	SessionSecret string `json:"session_secret"`
	// SessionTTL is the longest session a token may claim (default 24h);
	// longer ones are refused as forged.
	SessionTTL logicsvr.Duration `json:"session_ttl"`
}

// FromApp reads Config from h's app config and returns the Checker of a
// Logicsvr that checks sessions. It needs im.AccountData in the routing
// table, where the accounts' revocations are.
func FromApp(h *logicsvr.Host) (*Checker, error) {
	cfg := Config{SessionTTL: logicsvr.Duration(DefaultTTL)}
	if err := h.AppConfig(&cfg); err != nil {
		return nil, err
	}
	return CheckerForHost(h, cfg.SessionSecret, time.Duration(cfg.SessionTTL))
}

// CheckerForHost returns the Checker of a Logicsvr whose app config holds
// more than Config (the gateway's, sendmedia's): ForHost's signer, and the
// accounts' revocations from im.AccountData in the routing table.
func CheckerForHost(h *logicsvr.Host, secret string, ttl time.Duration) (*Checker, error) {
	signer, err := ForHost(h, secret, ttl)
	if err != nil {
		return nil, err
	}
	inv, err := h.Client(im.AccountData_ServiceName)
	if err != nil {
		return nil, err
	}
	return NewChecker(signer, StateFromAccountData(im.NewAccountDataClient(inv))), nil
}

// StateFromAccountData is the StateFunc of AccountData.GetSessionState.
func StateFromAccountData(data im.AccountDataClient) StateFunc {
	return func(ctx context.Context, user uint64) (*im.SessionState, error) {
		return data.GetSessionState(ctx, &im.GetAccountRequest{UserId: user})
	}
}

// ForHost returns the Signer of a Logicsvr keyed with secret, for sessions
// of at most ttl. It refuses what package secrets refuses: a missing
// secret, and outside development mode a published or short one. Under
// -buildinfo, where the host never serves and has no config, it checks
// nothing.
func ForHost(h *logicsvr.Host, secret string, ttl time.Duration) (*Signer, error) {
	if h.InfoOnly() {
		secret = "unused: -buildinfo"
	} else if err := secrets.Check(h, "session_secret", secret); err != nil {
		return nil, err
	}
	if ttl <= 0 {
		return nil, errors.New("app config: session_ttl must be positive")
	}
	return NewSigner(secret, ttl)
}
