package main

import (
	"io/fs"
	"os"
	"path/filepath"

	"github.com/svrkit/svrkit/svrkit"
)

// Credentials. Every service up runs is born behind the trust boundary:
// up gives each identity (a Logicsvr's name, a main service's name, and
// "operator" for people with `svrkit call`) its own Ed25519 key in
// {data}/keys, and writes each Logicsvr's config with the "auth" section
// that makes its RPC server require service authentication and its clients
// prove who they are. Keys are made once and kept with the data, so a
// restart of up keeps every identity. Main services find theirs through
// the {key}, {keyring} and {keys} placeholders.
//
// Everything under {data} is private to the user running up: up makes
// what it creates 0600/0700 (umask 077, inherited by the services) and
// tightens what an earlier run left readable.

// operatorIdentity is the identity `svrkit call` presents, allowed to call
// every service (logicsvr's default operators).
const operatorIdentity = "operator"

// provisionKeys makes the keys of every identity of the topology.
func (u *up) provisionKeys() error {
	ids := []string{operatorIdentity}
	for _, in := range u.instances {
		ids = append(ids, in.svc.identity)
	}
	ring, err := svrkit.GenerateKeys(u.keysDir(), ids)
	if err != nil {
		return err
	}
	u.keyring = ring
	return nil
}

func (u *up) keysDir() string { return filepath.Join(u.data, "keys") }

// keyPath is the key file of an instance's identity.
func (u *up) keyPath(in *instance) string { return svrkit.KeyPath(u.keysDir(), in.svc.identity) }

// privateData creates the data directory private to its owner and takes
// group and other permissions off whatever an earlier run left in it.
func privateData(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if mode := info.Mode(); mode.Perm()&0o077 != 0 && (mode.IsDir() || mode.IsRegular()) {
			return os.Chmod(path, mode.Perm()&^0o077)
		}
		return nil
	})
}
