package svrkit

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Key files, for service authentication (see WithRequireAuth): each
// identity's private key in its own PEM file (PKCS #8, what openssl
// writes), readable by its owner only, and one keyring file of public keys
// that servers trust:
//
//	{"keys": {"send": "base64 of the 32-byte Ed25519 public key", ...}}
//
// A deployment tool writes them once (GenerateKeys); `svrkit up` does it
// in its data directory.

// ReadKey reads an Ed25519 private key from a PEM file. A file that group
// or others may read is refused, as ssh refuses one: a key others can read
// is not a secret.
func ReadKey(path string) (ed25519.PrivateKey, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("svrkit: key: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("svrkit: key %s: permissions %#o are too open; it must be readable by its owner only (chmod 600)", path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("svrkit: key: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("svrkit: key %s: not a PEM \"PRIVATE KEY\" file", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("svrkit: key %s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("svrkit: key %s: a %T, not an Ed25519 key", path, k)
	}
	return priv, nil
}

// ReadKeyring reads a keyring file.
func ReadKeyring(path string) (Keyring, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("svrkit: keyring: %w", err)
	}
	var f struct {
		Keys map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("svrkit: keyring %s: %w", path, err)
	}
	ring := Keyring{}
	for id, s := range f.Keys {
		pub, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(pub) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("svrkit: keyring %s: identity %q: not a base64 Ed25519 public key", path, id)
		}
		if id == "" {
			return nil, fmt.Errorf("svrkit: keyring %s: empty identity", path)
		}
		ring[id] = ed25519.PublicKey(pub)
	}
	return ring, nil
}

// GenerateKeys makes sure dir holds a key file for each identity
// (IDENTITY.key, mode 0600) and a keyring file (keyring.json) with all of
// their public keys, creating dir (mode 0700) and the keys that are
// missing; existing keys are kept. It returns the keyring's path.
func GenerateKeys(dir string, identities []string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("svrkit: keys: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return "", fmt.Errorf("svrkit: keys: %w", err)
	}
	keys := map[string]string{}
	for _, id := range identities {
		if id == "" || filepath.Base(id) != id {
			return "", fmt.Errorf("svrkit: keys: %q is not a valid identity", id)
		}
		path := KeyPath(dir, id)
		priv, err := ReadKey(path)
		if errors.Is(err, os.ErrNotExist) {
			priv, err = writeKey(path)
		}
		if err != nil {
			return "", err
		}
		keys[id] = base64.StdEncoding.EncodeToString(priv.Public().(ed25519.PublicKey))
	}
	b, err := json.MarshalIndent(struct {
		Keys map[string]string `json:"keys"`
	}{keys}, "", "  ")
	if err != nil {
		return "", err
	}
	ring := filepath.Join(dir, "keyring.json")
	if err := os.WriteFile(ring, append(b, '\n'), 0o600); err != nil {
		return "", fmt.Errorf("svrkit: keys: %w", err)
	}
	return ring, nil
}

// KeyPath returns where GenerateKeys keeps identity's key in dir.
func KeyPath(dir, identity string) string { return filepath.Join(dir, identity+".key") }

func writeKey(path string) (ed25519.PrivateKey, error) {
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	b := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return nil, fmt.Errorf("svrkit: keys: %w", err)
	}
	return priv, nil
}
