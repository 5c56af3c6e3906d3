package hardening

import (
	"reflect"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-dev/hardened/profiles"
)

func TestRootfs(t *testing.T) {
	scratch := []profiles.Scratch{{Path: "/tmp", Size: "64m"}, {Path: "/run", Size: "16m", NoExec: true}}
	tmp := specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777", "size=64m"}}
	run := specs.Mount{Destination: "/run", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "noexec", "size=16m"}}
	proc := specs.Mount{Destination: "/proc", Type: "proc", Source: "proc"}
	volTmp := specs.Mount{Destination: "/tmp/", Type: "bind", Source: "/srv/tmp", Options: []string{"rbind"}}
	secrets := specs.Mount{Destination: "/run/secrets/token", Type: "bind", Source: "/var/lib/kubelet/x", Options: []string{"rbind", "ro"}}
	rootMount := specs.Mount{Destination: "/", Type: "bind", Source: "/srv/root", Options: []string{"rbind"}}

	tests := []struct {
		name       string
		profRO     bool
		specRO     bool
		in         []specs.Mount
		wantRO     bool
		wantMounts []specs.Mount
	}{
		{"writable stays writable", false, false, []specs.Mount{proc}, false, []specs.Mount{proc}},
		{"read-only with scratch first", true, false, []specs.Mount{proc}, true, []specs.Mount{tmp, run, proc}},
		{"spec's read-only kept without the profile", false, true, []specs.Mount{proc}, true, []specs.Mount{tmp, run, proc}},
		{"existing mount at the path wins", true, false, []specs.Mount{volTmp, proc}, true, []specs.Mount{run, volTmp, proc}},
		{"volume under scratch stays visible", true, false, []specs.Mount{proc, secrets}, true, []specs.Mount{tmp, run, proc, secrets}},
		{"after a mount at an ancestor", true, false, []specs.Mount{rootMount, proc}, true, []specs.Mount{rootMount, tmp, run, proc}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prof := &profiles.Profile{Rootfs: profiles.Rootfs{ReadOnly: tt.profRO, Scratch: scratch}}
			s := &specs.Spec{Root: &specs.Root{Path: "rootfs", Readonly: tt.specRO}, Mounts: tt.in}
			r := &Report{}
			applyRootfs(s, &Config{Profile: prof}, r)
			if s.Root.Readonly != tt.wantRO {
				t.Errorf("readonly %v, want %v", s.Root.Readonly, tt.wantRO)
			}
			if !reflect.DeepEqual(s.Mounts, tt.wantMounts) {
				t.Errorf("mounts\n got %+v\nwant %+v", s.Mounts, tt.wantMounts)
			}
			if err := checkRootfs(s, prof); err != nil {
				t.Error(err)
			}
			// Idempotent.
			again := &Report{}
			applyRootfs(s, &Config{Profile: prof}, again)
			if len(again.Changes) != 0 {
				t.Errorf("second pass changed %+v", again.Changes)
			}
		})
	}
}

// TestScratchCopyUp: a copy-up scratch directory gets runc's tmpcopyup;
// on gVisor, which ignores it, none, and the report says it starts empty.
func TestScratchCopyUp(t *testing.T) {
	prof := &profiles.Profile{Rootfs: profiles.Rootfs{ReadOnly: true, Scratch: []profiles.Scratch{{Path: "/var/cache/app", Size: "16m", CopyUp: true}}}}
	for _, rt := range []profiles.Runtime{profiles.RuntimeRunc, profiles.RuntimeGVisor} {
		s := &specs.Spec{Root: &specs.Root{Path: "rootfs"}}
		r := &Report{}
		applyRootfs(s, &Config{Profile: prof, Runtime: rt}, r)
		if len(s.Mounts) != 1 {
			t.Fatalf("%s: mounts %+v", rt, s.Mounts)
		}
		copyUp := slices.Contains(s.Mounts[0].Options, "tmpcopyup")
		if copyUp != (rt == profiles.RuntimeRunc) || (rt == profiles.RuntimeGVisor) != (len(r.NotEnforced) == 1) {
			t.Errorf("%s: options %v, gaps %+v", rt, s.Mounts[0].Options, r.NotEnforced)
		}
	}
}
