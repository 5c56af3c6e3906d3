package hardening

import (
	"errors"
	"path/filepath"
	"runtime"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	goldenfile "github.com/hardened-dev/hardened/internal/golden"
)

// goldenSpecs are the inputs of the golden files: containerd's default spec
// (what `ctr run` starts from), one as containerd's CRI builds it for a
// Kubernetes pod, and a privileged one (de-privileged by baseline, refused
// by the others).
var goldenSpecs = []string{"containerd-default", "cri-container", "cri-privileged"}

// golden is what a golden file holds: the hardened spec and the report, or
// the refusal.
type golden struct {
	Refused string      `json:"refused,omitempty"`
	Report  *Report     `json:"report,omitempty"`
	Spec    *specs.Spec `json:"spec,omitempty"`
}

// TestGolden hardens each golden spec under each built-in profile and
// compares with testdata/golden/<profile>-<spec>.json; -update rewrites
// them. The seccomp filter depends on the architecture (and containerd's
// on the kernel version), so the files are amd64's.
func TestGolden(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("golden files are generated on amd64")
	}
	for _, prof := range profileNames {
		for _, name := range goldenSpecs {
			t.Run(prof+"-"+name, func(t *testing.T) {
				out, rep, err := Harden(loadSpec(t, name), cfgFor(t, prof))
				var g golden
				if err != nil {
					if !errors.Is(err, ErrRefused) {
						t.Fatalf("unexpected error: %v", err)
					}
					g.Refused = err.Error()
				} else {
					g.Report, g.Spec = rep, out
				}
				got := mustJSON(t, g) + "\n"
				file := filepath.Join("testdata", "golden", prof+"-"+name+".json")
				goldenfile.Check(t, file, []byte(got), *update)
			})
		}
	}
}
