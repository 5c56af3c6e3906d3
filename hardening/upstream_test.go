package hardening

import (
	"context"
	"reflect"
	"regexp"
	"slices"
	"testing"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	devconfig "github.com/opencontainers/cgroups/devices/config"
	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The engine keeps copies of upstream tables (it may not import containerd's
// runtime code, and runc's device list is not part of any API). These tests
// pin each copy to the vendored module it was taken from: a dependency
// upgrade that changes one fails here until the copy is updated.

// containerdDefaults is the spec containerd generates for a container,
// with its default Unix devices (what ctr and CRI add).
func containerdDefaults(t *testing.T) *specs.Spec {
	t.Helper()
	ctx := namespaces.WithNamespace(context.Background(), "default")
	s, err := oci.GenerateSpec(ctx, nil, &containers.Container{ID: "pin"}, oci.WithDefaultUnixDevices)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestContainerdDefaultDevicesPinned(t *testing.T) {
	s := containerdDefaults(t)
	got := s.Linux.Resources.Devices
	if len(got) == 0 || got[0].Allow || got[0].Type != "" && got[0].Type != "a" {
		t.Fatalf("containerd's device rules do not start with deny all: %+v", got)
	}
	if !reflect.DeepEqual(got[1:], containerdDefaultDevices) {
		t.Errorf("containerd's default device rules changed:\n got  %+v\n copy %+v", got[1:], containerdDefaultDevices)
	}
}

func TestContainerdDefaultPathsPinned(t *testing.T) {
	s := containerdDefaults(t)
	// Per-CPU thermal_throttle entries depend on the host: left to containerd.
	thermal := regexp.MustCompile(`^/sys/devices/system/cpu/cpu[0-9]+/thermal_throttle$`)
	masked := slices.DeleteFunc(slices.Clone(s.Linux.MaskedPaths), thermal.MatchString)
	if !slices.Equal(masked, defaultMaskedPaths) {
		t.Errorf("containerd's masked paths changed:\n got  %q\n copy %q", masked, defaultMaskedPaths)
	}
	if !slices.Equal(s.Linux.ReadonlyPaths, defaultReadonlyPaths) {
		t.Errorf("containerd's read-only paths changed:\n got  %q\n copy %q", s.Linux.ReadonlyPaths, defaultReadonlyPaths)
	}
}

func TestRuncAllowedDevicesPinned(t *testing.T) {
	num := func(v int64) *int64 {
		if v == devconfig.Wildcard {
			return nil
		}
		return &v
	}
	var got []specs.LinuxDeviceCgroup
	for _, d := range specconv.AllowedDevices {
		got = append(got, specs.LinuxDeviceCgroup{Allow: d.Allow, Type: string(rune(d.Type)), Major: num(d.Major), Minor: num(d.Minor), Access: string(d.Permissions)})
	}
	if !reflect.DeepEqual(got, runcDefaultDevices) {
		t.Errorf("runc's AllowedDevices changed:\n got  %+v\n copy %+v", got, runcDefaultDevices)
	}
}
