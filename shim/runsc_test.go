package shim

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	"google.golang.org/grpc/codes"

	"github.com/hardened-dev/hardened/shim/runscwrap"
)

func TestEnsureRunscWrapper(t *testing.T) {
	base := t.TempDir()
	cfg := runscConfig{Path: "/opt/runsc-" + t.Name(), Args: []string{"--network=none"}}

	// Racing shims agree on one directory and leave no temporary ones.
	var wg sync.WaitGroup
	paths := make([]string, 8)
	errs := make([]error, 8)
	for i := range paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			paths[i], errs[i] = ensureRunscWrapper(base, "/usr/bin/hardened-runsc", cfg)
		}()
	}
	wg.Wait()
	for i := range paths {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if paths[i] != paths[0] {
			t.Fatalf("different wrappers: %q, %q", paths[i], paths[0])
		}
	}
	entries, _ := os.ReadDir(filepath.Join(base, "runsc"))
	if len(entries) != 1 {
		t.Errorf("runsc dir holds %d entries, want 1", len(entries))
	}
	link := paths[0]
	if filepath.Base(link) != runscwrap.Name {
		t.Errorf("wrapper %q not named %s", link, runscwrap.Name)
	}
	if target, _ := os.Readlink(link); target != "/usr/bin/hardened-runsc" {
		t.Errorf("symlink to %q", target)
	}
	got, err := runscwrap.ReadConfig(filepath.Dir(link))
	if err != nil || got.Path != cfg.Path || !slices.Equal(got.Args, cfg.Args) {
		t.Errorf("runsc.json %+v %v", got, err)
	}

	// Another configuration gets another directory.
	other, err := ensureRunscWrapper(base, "/usr/bin/hardened-runsc", runscConfig{Path: cfg.Path})
	if err != nil || other == link {
		t.Errorf("other configuration: %q %v", other, err)
	}
	// A configuration turning off --oci-seccomp is refused.
	if _, err := ensureRunscWrapper(base, "/x", runscConfig{Path: "/r", Args: []string{"--oci-seccomp=false"}}); err == nil {
		t.Error("--oci-seccomp=false accepted")
	}
}

func TestFindRunscWrapper(t *testing.T) {
	writeExe := func(t *testing.T, path string) {
		t.Helper()
		if err := os.WriteFile(path, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}

	// Next to the shim binary first, even with another one in PATH.
	shimDir, pathDir := t.TempDir(), t.TempDir()
	writeExe(t, filepath.Join(shimDir, runscwrap.Name))
	writeExe(t, filepath.Join(pathDir, runscwrap.Name))
	t.Setenv("PATH", pathDir)
	got, err := findRunscWrapper(filepath.Join(shimDir, "containerd-shim-hardened-v2"))
	if err != nil || got != filepath.Join(shimDir, runscwrap.Name) {
		t.Errorf("next to the shim: %q %v", got, err)
	}

	// Then PATH.
	got, err = findRunscWrapper(filepath.Join(t.TempDir(), "containerd-shim-hardened-v2"))
	if err != nil || got != filepath.Join(pathDir, runscwrap.Name) {
		t.Errorf("from PATH: %q %v", got, err)
	}

	// A file that is not executable does not count.
	notExe := t.TempDir()
	if err := os.WriteFile(filepath.Join(notExe, runscwrap.Name), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", t.TempDir())
	if got, err := findRunscWrapper(filepath.Join(notExe, "containerd-shim-hardened-v2")); err == nil {
		t.Errorf("found %q, want an error", got)
	}

	// Nowhere: an error that says what is missing and where it goes.
	_, err = findRunscWrapper(filepath.Join(t.TempDir(), "containerd-shim-hardened-v2"))
	if err == nil || !strings.Contains(err.Error(), runscwrap.Name) || !strings.Contains(err.Error(), "next to containerd-shim-hardened-v2") || !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("missing wrapper: %v", err)
	}
}

func TestCreateGVisorWithoutWrapperRefused(t *testing.T) {
	saved := wrapperBinary
	wrapperBinary = func() (string, error) { return findRunscWrapper(filepath.Join(t.TempDir(), "shim")) }
	t.Cleanup(func() { wrapperBinary = saved })
	t.Setenv("PATH", t.TempDir())

	ts := newTestService(t, nil)
	orig := defaultSpec(t, "g", oci.WithProcessArgs("/bin/sh"), oci.WithAnnotations(map[string]string{"hardened.dev/runtime": "gvisor"}))
	bundle := ts.bundle(t, "g", orig)
	_, err := ts.create(t, "g", bundle, policyOpts(t, testPolicy("enforce", "")))
	wantCode(t, err, codes.FailedPrecondition, runscwrap.Name, "not installed")
	if len(ts.inner.creates) != 0 {
		t.Error("the stock Create ran without the wrapper")
	}
	if _, err := os.Stat(filepath.Join(bundle, reportFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("refused Create left %s behind (%v)", reportFile, err)
	}
}
