package policy

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/hardened-dev/hardened/profiles"
)

// FuzzParsePolicy: never panic; accept only what validates; every error
// wraps ErrInvalidPolicy.
func FuzzParsePolicy(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*/*.toml")
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	set := profiles.Builtin()
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data, "fuzz.toml")
		if err != nil {
			if !errors.Is(err, ErrInvalidPolicy) {
				t.Fatalf("error does not wrap ErrInvalidPolicy: %v", err)
			}
			return
		}
		if err := p.validate(); err != nil {
			t.Fatalf("accepted an invalid policy: %v", err)
		}
		if _, ok := p.Runtimes[profiles.RuntimeRunc]; !ok {
			t.Fatal("accepted a policy without runc")
		}
		if err := p.Check(set); err != nil && !errors.Is(err, ErrInvalidPolicy) {
			t.Fatalf("Check error does not wrap ErrInvalidPolicy: %v", err)
		}
	})
}
