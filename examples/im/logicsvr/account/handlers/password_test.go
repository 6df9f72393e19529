package handlers

import (
	"fmt"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"
)

func TestHashCheckPassword(t *testing.T) {
	h, err := hashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q", h)
	}
	if ok, err := checkPassword(h, "correct horse"); !ok || err != nil {
		t.Fatalf("right password: %v %v", ok, err)
	}
	if ok, err := checkPassword(h, "correct horsE"); ok || err != nil {
		t.Fatalf("wrong password: %v %v", ok, err)
	}
	h2, _ := hashPassword("correct horse")
	if h2 == h {
		t.Fatal("two hashes of one password are equal: salt not random")
	}
}

// A hash made with other parameters is checked with those, not today's.
func TestCheckPasswordUsesStoredParameters(t *testing.T) {
	salt := []byte("0123456789abcdef")
	key := argon2.IDKey([]byte("pw-12345"), salt, 1, 8*1024, 2, 24)
	h := fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", 8*1024, 1, 2, b64.EncodeToString(salt), b64.EncodeToString(key))
	if ok, err := checkPassword(h, "pw-12345"); !ok || err != nil {
		t.Fatalf("stored parameters not used: %v %v", ok, err)
	}
}

func TestParsePHCRefuses(t *testing.T) {
	good, _ := hashPassword("x")
	for name, h := range map[string]string{
		"empty":        "",
		"argon2i":      strings.Replace(good, "argon2id", "argon2i", 1),
		"old version":  strings.Replace(good, "v=19", "v=16", 1),
		"huge memory":  strings.Replace(good, "m=19456", "m=4194304", 1),
		"huge time":    strings.Replace(good, "t=2", "t=1000", 1),
		"zero threads": strings.Replace(good, "p=1", "p=0", 1),
		"bad salt":     strings.Replace(good, "$", "$!", 4),
		"no key":       good[:strings.LastIndex(good, "$")],
	} {
		if _, err := parsePHC(h); err == nil {
			t.Errorf("%s: parsePHC(%q) accepted", name, h)
		}
	}
}

func TestValidName(t *testing.T) {
	for name, want := range map[string]bool{
		"alice": true, "a.b-c_9": true, "abc": true, strings.Repeat("a", 32): true,
		"ab": false, strings.Repeat("a", 33): false, "Alice": false, "al ice": false, "ålice": false, "": false,
	} {
		if got := validName(name); got != want {
			t.Errorf("validName(%q) = %v", name, got)
		}
	}
}

// FuzzParsePHC: stored hashes come back from storage; whatever they hold,
// parsing must not panic and must keep the work bounded.
func FuzzParsePHC(f *testing.F) {
	good, _ := hashPassword("seed")
	f.Add(good)
	f.Add("$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA")
	f.Fuzz(func(t *testing.T, h string) {
		p, err := parsePHC(h)
		if err != nil {
			return
		}
		if p.time > maxArgonTime || p.memory > maxArgonMemory || p.threads > maxArgonThreads || len(p.key) > 64 {
			t.Fatalf("accepted unbounded parameters %+v from %q", p, h)
		}
	})
}

func BenchmarkHashPassword(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := hashPassword("correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}
