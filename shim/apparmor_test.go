package shim

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/contrib/apparmor"
	"github.com/containerd/containerd/v2/pkg/oci"
	"google.golang.org/grpc/codes"
)

func TestAppArmorLoaderDefaultLoadsOnce(t *testing.T) {
	var loads []string
	l := &appArmorLoader{loaded: map[string]bool{}, loadDefault: func(n string) error { loads = append(loads, n); return nil }}
	for range 3 {
		if err := l.ensure(DefaultAppArmorProfile); err != nil {
			t.Fatal(err)
		}
	}
	if len(loads) != 1 || loads[0] != DefaultAppArmorProfile {
		t.Fatalf("loads = %v, want one load of %s", loads, DefaultAppArmorProfile)
	}
}

func TestAppArmorLoaderDefaultFailureRefuses(t *testing.T) {
	l := &appArmorLoader{loaded: map[string]bool{}, loadDefault: func(string) error { return errors.New("parser failed") }}
	err := l.ensure(DefaultAppArmorProfile)
	if err == nil || !strings.Contains(err.Error(), "parser failed") {
		t.Fatalf("err = %v, want the load failure", err)
	}
	if l.loaded[DefaultAppArmorProfile] {
		t.Fatal("a failed load was remembered as loaded")
	}
}

func TestAppArmorLoaderOtherProfileMustBeLoaded(t *testing.T) {
	list := filepath.Join(t.TempDir(), "profiles")
	if err := os.WriteFile(list, []byte("cri-containerd.apparmor.d (enforce)\nmy-app (complain)\nmy-enforced (enforce)\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l := &appArmorLoader{loaded: map[string]bool{}, profilesFile: list,
		loadDefault: func(string) error { t.Fatal("template loaded for a non-default name"); return nil }}
	if err := l.ensure("my-enforced"); err != nil {
		t.Fatalf("loaded profile refused: %v", err)
	}
	err := l.ensure("my-ap")
	if err == nil || !strings.Contains(err.Error(), `"my-ap" is not loaded`) {
		t.Fatalf("err = %v, want a refusal naming the missing profile", err)
	}
	// A profile in complain mode confines nothing: refused.
	if err := l.ensure("my-app"); err == nil || !strings.Contains(err.Error(), "complain mode") {
		t.Fatalf("err = %v, want a refusal of the complain-mode profile", err)
	}
}

// The template the shim loads on AppArmor hosts must be valid AppArmor
// policy. This kernel has no AppArmor, but apparmor_parser can compile a
// profile without loading it (-Q: skip the kernel load, -K: skip the cache).
func TestDefaultAppArmorTemplateParses(t *testing.T) {
	parser, err := exec.LookPath("apparmor_parser")
	if err != nil {
		t.Skip("SKIP: apparmor_parser not installed (Debian package apparmor; make tools installs it): template not checked")
	}
	text, err := apparmor.DumpDefaultProfile(DefaultAppArmorProfile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, "profile "+DefaultAppArmorProfile+" ") {
		t.Fatalf("template does not define %s:\n%s", DefaultAppArmorProfile, text)
	}
	cmd := exec.Command(parser, "-QK")
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("apparmor_parser -QK rejects the template: %v\n%s", err, out)
	}
}

// On an AppArmor host, Create loads the built-in profile before the stock
// Create runs; a profile that cannot be loaded refuses the container and
// leaves config.json as containerd wrote it.
func TestCreateLoadsAppArmorProfile(t *testing.T) {
	for _, tc := range []struct {
		name    string
		loadErr error
	}{{"loads", nil}, {"load fails", errors.New("apparmor_parser: exit status 1")}} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestService(t, nil)
			ts.appArmor = func() bool { return true }
			var loads []string
			ts.apparmor = &appArmorLoader{loaded: map[string]bool{}, loadDefault: func(n string) error {
				loads = append(loads, n)
				return tc.loadErr
			}}
			bundle := ts.bundle(t, "c1", defaultSpec(t, "c1", oci.WithProcessArgs("/bin/sh")))
			before, _ := os.ReadFile(filepath.Join(bundle, configFile))
			_, err := ts.create(t, "c1", bundle, policyOpts(t, testPolicy("enforce", "")))
			if len(loads) != 1 || loads[0] != DefaultAppArmorProfile {
				t.Fatalf("loads = %v, want %s once", loads, DefaultAppArmorProfile)
			}
			if tc.loadErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				if got := readSpecFile(t, filepath.Join(bundle, configFile)).Process.ApparmorProfile; got != DefaultAppArmorProfile {
					t.Fatalf("apparmorProfile = %q, want %q", got, DefaultAppArmorProfile)
				}
				return
			}
			wantCode(t, err, codes.FailedPrecondition, "apparmor_parser")
			if len(ts.inner.creates) != 0 {
				t.Error("inner Create called although the AppArmor profile failed to load")
			}
			if after, _ := os.ReadFile(filepath.Join(bundle, configFile)); string(after) != string(before) {
				t.Error("refused Create changed config.json")
			}
		})
	}
}
