package hostfacts

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/containerd/errdefs"

	"github.com/hardened-dev/hardened/shim/runscwrap"
)

func TestEnsureRunscWrapper(t *testing.T) {
	base := t.TempDir()
	cfg := runscwrap.Config{Path: "/opt/runsc-" + t.Name(), Args: []string{"--network=none"}}

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
	other, err := ensureRunscWrapper(base, "/usr/bin/hardened-runsc", runscwrap.Config{Path: cfg.Path})
	if err != nil || other == link {
		t.Errorf("other configuration: %q %v", other, err)
	}
	// A configuration turning off --oci-seccomp is refused.
	if _, err := ensureRunscWrapper(base, "/x", runscwrap.Config{Path: "/r", Args: []string{"--oci-seccomp=false"}}); err == nil {
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
	got, err := FindRunscWrapper(filepath.Join(shimDir, "containerd-shim-hardened-v2"))
	if err != nil || got != filepath.Join(shimDir, runscwrap.Name) {
		t.Errorf("next to the shim: %q %v", got, err)
	}

	// Then PATH.
	got, err = FindRunscWrapper(filepath.Join(t.TempDir(), "containerd-shim-hardened-v2"))
	if err != nil || got != filepath.Join(pathDir, runscwrap.Name) {
		t.Errorf("from PATH: %q %v", got, err)
	}

	// A file that is not executable does not count.
	notExe := t.TempDir()
	if err := os.WriteFile(filepath.Join(notExe, runscwrap.Name), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", t.TempDir())
	if got, err := FindRunscWrapper(filepath.Join(notExe, "containerd-shim-hardened-v2")); err == nil {
		t.Errorf("found %q, want an error", got)
	}

	// Nowhere: an error that says what is missing and where it goes.
	_, err = FindRunscWrapper(filepath.Join(t.TempDir(), "containerd-shim-hardened-v2"))
	if err == nil || !strings.Contains(err.Error(), runscwrap.Name) || !strings.Contains(err.Error(), "next to containerd-shim-hardened-v2") || !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("missing wrapper: %v", err)
	}
}

// What explain computes without installing is what the shim installs.
func TestRunscWrapperLinkIsEnsured(t *testing.T) {
	base := t.TempDir()
	cfg := runscwrap.Config{Path: "/opt/runsc", Args: []string{"--platform=systrap"}}
	want, err := runscWrapperLink(base, "/usr/bin/hardened-runsc", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(want); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("computing the link created it: %v", err)
	}
	got, err := ensureRunscWrapper(base, "/usr/bin/hardened-runsc", cfg)
	if err != nil || got != want {
		t.Fatalf("ensured %q (%v), computed %q", got, err, want)
	}
}
