package profiles

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseProfile feeds arbitrary files to the parser: it must never
// panic, and it either returns a profile that passes validation or an
// error wrapping ErrInvalidProfile.
func FuzzParseProfile(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*/*.toml")
	more, _ := filepath.Glob("builtin/*.toml")
	for _, s := range append(seeds, more...) {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data, "fuzz.toml", nil)
		if err != nil {
			if !errors.Is(err, ErrInvalidProfile) {
				t.Fatalf("error does not wrap ErrInvalidProfile: %v", err)
			}
			return
		}
		if errs := validate(p, "fuzz.toml", nil); len(errs) > 0 {
			t.Fatalf("accepted an invalid profile: %v", errs[0])
		}
		if Builtin().Has(p.Name) {
			t.Fatalf("accepted a built-in name %q", p.Name)
		}
	})
}
