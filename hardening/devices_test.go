package hardening

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-dev/hardened/profiles"
)

func i64p(v int64) *int64 { return &v }

func allowDev(typ string, major, minor *int64, access string) specs.LinuxDeviceCgroup {
	return specs.LinuxDeviceCgroup{Allow: true, Type: typ, Major: major, Minor: minor, Access: access}
}

func node(path, typ string, major, minor int64) specs.LinuxDevice {
	return specs.LinuxDevice{Path: path, Type: typ, Major: major, Minor: minor}
}

// withDefaults is containerd's default list after "deny all".
func withDefaults(rest ...specs.LinuxDeviceCgroup) []specs.LinuxDeviceCgroup {
	return append(append([]specs.LinuxDeviceCgroup{denyAllDevices}, containerdDefaultDevices...), rest...)
}

// TestDeviceRules: what a rule list grants, not its shape. refused is the
// reason under hardened (deny_privileged); want is baseline's rewrite.
func TestDeviceRules(t *testing.T) {
	gpu := allowDev("c", i64p(195), i64p(0), "rw")
	tests := []struct {
		name    string
		in      []specs.LinuxDeviceCgroup
		refused string
		want    []specs.LinuxDeviceCgroup // nil: unchanged
	}{
		{"containerd's default spec", []specs.LinuxDeviceCgroup{denyAllDevices}, "", nil},
		{"containerd's defaults", withDefaults(), "", nil},
		{"mknod of everything (runc allows it anyway)", []specs.LinuxDeviceCgroup{denyAllDevices, allowDev("c", nil, nil, "m"), allowDev("b", nil, nil, "m")}, "", nil},
		{"deny rules grant nothing", []specs.LinuxDeviceCgroup{{Allow: false, Type: "b", Access: "rwm"}}, "", nil},
		{"/dev/net/tun (runc allows it anyway)", []specs.LinuxDeviceCgroup{denyAllDevices, allowDev("c", i64p(10), i64p(200), "rwm")}, "", nil},
		{"a pty", []specs.LinuxDeviceCgroup{denyAllDevices, allowDev("c", i64p(136), i64p(3), "rw")}, "", nil},

		{"privileged (a *:* rwm)", []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}, "allows every device", withDefaults()},
		{"type a with numbers is still all", []specs.LinuxDeviceCgroup{denyAllDevices, allowDev("a", i64p(1), i64p(3), "r")}, "allows every device", withDefaults()},
		{"type a, mknod only, is still all", []specs.LinuxDeviceCgroup{allowDev("a", nil, nil, "m")}, "allows every device", withDefaults()},
		{"-1 wildcards", []specs.LinuxDeviceCgroup{allowDev("a", i64p(-1), i64p(-1), "rwm")}, "allows every device", withDefaults()},
		{"b *:* and c *:* (finding 9)", []specs.LinuxDeviceCgroup{denyAllDevices, allowDev("b", nil, nil, "rwm"), allowDev("c", nil, nil, "rwm")}, "allows every block device", []specs.LinuxDeviceCgroup{denyAllDevices}},
		{"c *:* r", []specs.LinuxDeviceCgroup{denyAllDevices, allowDev("c", i64p(-1), nil, "r")}, "allows every character device", []specs.LinuxDeviceCgroup{denyAllDevices}},
		{"every minor of major 1 (/dev/mem, kmem, port)", []specs.LinuxDeviceCgroup{denyAllDevices, allowDev("c", i64p(1), nil, "rw")}, "every character device of major 1", []specs.LinuxDeviceCgroup{denyAllDevices}},
		{"a disk", []specs.LinuxDeviceCgroup{denyAllDevices, allowDev("b", i64p(8), i64p(0), "rwm")}, "a block device", []specs.LinuxDeviceCgroup{denyAllDevices}},
		{"/dev/mem", []specs.LinuxDeviceCgroup{denyAllDevices, allowDev("c", i64p(1), i64p(1), "r")}, "beyond containerd's default devices", []specs.LinuxDeviceCgroup{denyAllDevices}},
		{"a GPU, not in the profile", []specs.LinuxDeviceCgroup{denyAllDevices, gpu}, "beyond containerd's default devices", []specs.LinuxDeviceCgroup{denyAllDevices}},
		{"junk type", []specs.LinuxDeviceCgroup{allowDev("x", nil, nil, "rwm")}, "not a device cgroup type", []specs.LinuxDeviceCgroup{}},
		{"privileged plus a device plugin's GPU", []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}, allowDev("c", i64p(1), i64p(3), "rwm")}, "allows every device", withDefaults(allowDev("c", i64p(1), i64p(3), "rwm"))},
		// The privileged rewrite never grants a default device the spec
		// itself denied (/dev/console here; runc re-adds the others).
		{"privileged minus the console", []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}, {Allow: false, Type: "c", Major: i64p(5), Minor: i64p(1), Access: "rwm"}}, "allows every device",
			append(slices.DeleteFunc(withDefaults(), func(d specs.LinuxDeviceCgroup) bool {
				return d.Major != nil && *d.Major == 5 && d.Minor != nil && *d.Minor == 1
			}), specs.LinuxDeviceCgroup{Allow: false, Type: "c", Major: i64p(5), Minor: i64p(1), Access: "rwm"})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := baseSpec()
			s.Linux.Resources = &specs.LinuxResources{Devices: tt.in}
			err := checkDevices(s, mustProfile(t, "hardened"))
			if tt.refused == "" {
				if err != nil {
					t.Errorf("hardened: unexpected %v", err)
				}
			} else if re := refusal(t, err); re.Rule != RuleDevices || !strings.HasPrefix(re.Field, "linux.resources.devices[") || !strings.Contains(re.Reason, tt.refused) || !strings.Contains(re.Reason, "privileged") {
				t.Errorf("hardened: got %+v, want %q", re, tt.refused)
			}

			l := deepCopy(s.Linux)
			r := &Report{}
			applyDevices(l, mustProfile(t, "baseline"), r)
			want := tt.want
			if want == nil {
				want = tt.in
			}
			if !reflect.DeepEqual(l.Resources.Devices, want) && !(len(want) == 0 && len(l.Resources.Devices) == 0) {
				t.Errorf("baseline:\n got %s\nwant %s", mustJSON(t, l.Resources.Devices), mustJSON(t, want))
			}
			if (tt.want != nil) != (len(r.Changes) == 1) {
				t.Errorf("baseline changes %+v", r.Changes)
			}
			if err := checkDevicesHardened(l, mustProfile(t, "baseline")); err != nil {
				t.Errorf("baseline output: %v", err)
			}
			// Never grants what the input did not (runc's own rules aside).
			in, out := emulateDevices(tt.in), emulateDevices(l.Resources.Devices)
			for _, d := range append(slices.Clone(containerdDefaultDevices), allowDev("b", i64p(8), i64p(0), "r"), allowDev("c", i64p(1), i64p(1), "r"), gpu) {
				if out.grants(d) && !in.grants(d) {
					t.Errorf("baseline output grants %s, which the input did not", ruleString(d))
				}
			}
			again := &Report{}
			applyDevices(l, mustProfile(t, "baseline"), again)
			if len(again.Changes) != 0 {
				t.Errorf("not idempotent: %+v", again.Changes)
			}
		})
	}
}

func TestDeviceNodes(t *testing.T) {
	tests := []struct {
		name    string
		node    specs.LinuxDevice
		refused string // "" kept
	}{
		{"/dev/null", node("/dev/null", "c", 1, 3), ""},
		{"/dev/fuse", node("/dev/fuse", "c", 10, 229), "beyond containerd's default devices"},
		{"/dev/net/tun", node("/dev/net/tun", "c", 10, 200), ""},
		{"a pty", node("/dev/pts/7", "c", 136, 7), ""},
		{"unbuffered char", node("/dev/urandom", "u", 1, 9), ""},
		{"a FIFO", node("/dev/myfifo", "p", 0, 0), ""},
		{"/dev/sda (finding 9)", node("/dev/sda", "b", 8, 0), "a block device"},
		{"/dev/mem (finding 9)", node("/dev/mem", "c", 1, 1), "beyond containerd's default devices"},
		{"/dev/kmsg", node("/dev/kmsg", "c", 1, 11), "beyond"},
		{"/dev/mem posing as /dev/null", node("/dev/null", "c", 1, 1), "/dev/null (c 1:1)"},
		{"negative numbers", node("/dev/x", "c", -1, 3), "beyond"},
		{"junk type", node("/dev/x", "q", 1, 3), "not a device type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := baseSpec()
			s.Linux.Devices = []specs.LinuxDevice{node("/dev/zero", "c", 1, 5), tt.node}
			err := checkDevices(s, mustProfile(t, "strict"))
			if tt.refused == "" {
				if err != nil {
					t.Errorf("strict: unexpected %v", err)
				}
			} else if re := refusal(t, err); re.Rule != RuleDevices || re.Field != "linux.devices[1]" || !strings.Contains(re.Reason, tt.refused) {
				t.Errorf("strict: got %+v", re)
			}
			r := &Report{}
			applyDevices(s.Linux, mustProfile(t, "baseline"), r)
			kept := len(s.Linux.Devices) == 2
			if kept != (tt.refused == "") || kept == (len(r.Changes) == 1) {
				t.Errorf("baseline: devices %+v, changes %+v", s.Linux.Devices, r.Changes)
			}
		})
	}
}

// TestDevicesAllowed: the profile's devices.allowed, as data.
func TestDevicesAllowed(t *testing.T) {
	prof := &profiles.Profile{Name: "gpu", Namespaces: profiles.Namespaces{DenyPrivileged: true},
		Devices: profiles.Devices{Allowed: []string{"c 195:*", "b 8:16", "bogus"}}}
	ok := []specs.LinuxDeviceCgroup{denyAllDevices, allowDev("c", i64p(195), i64p(0), "rw"), allowDev("c", i64p(195), nil, "rw"), allowDev("b", i64p(8), i64p(16), "rw")}
	s := baseSpec()
	s.Linux.Resources = &specs.LinuxResources{Devices: ok}
	s.Linux.Devices = []specs.LinuxDevice{node("/dev/nvidia0", "c", 195, 0), node("/dev/nvidiactl", "c", 195, 255), node("/dev/sdb", "b", 8, 16)}
	if err := checkDevices(s, prof); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []specs.LinuxDeviceCgroup{allowDev("b", i64p(8), i64p(0), "r"), allowDev("b", i64p(8), nil, "r"), allowDev("c", i64p(196), i64p(0), "r")} {
		s.Linux.Resources.Devices = append(slices.Clone(ok), bad)
		if err := checkDevices(s, prof); err == nil {
			t.Errorf("%s accepted", ruleString(bad))
		}
	}
	// Without deny_privileged nothing is refused.
	if err := checkDevices(s, mustProfile(t, "baseline")); err != nil {
		t.Error(err)
	}
}

func TestEmulateDevices(t *testing.T) {
	null := allowDev("c", i64p(1), i64p(3), "rwm")
	disk := allowDev("b", i64p(8), i64p(0), "rw")
	tests := []struct {
		name  string
		rules []specs.LinuxDeviceCgroup
		query specs.LinuxDeviceCgroup
		want  bool
	}{
		{"nothing: runc's own still", nil, null, true},
		{"nothing: no disk", nil, disk, false},
		{"allow all", []specs.LinuxDeviceCgroup{{Allow: true, Access: "r"}}, disk, true},
		{"allow all then deny all", []specs.LinuxDeviceCgroup{{Allow: true}, {Access: "rwm"}}, disk, false},
		{"allow all, deny the class", []specs.LinuxDeviceCgroup{{Allow: true}, {Type: "b", Access: "w"}}, disk, false},
		{"allow all, deny another disk", []specs.LinuxDeviceCgroup{{Allow: true}, {Type: "b", Major: i64p(8), Minor: i64p(1), Access: "rwm"}}, disk, true},
		{"class allowed", []specs.LinuxDeviceCgroup{allowDev("b", nil, nil, "rw")}, disk, true},
		{"class allowed read only", []specs.LinuxDeviceCgroup{allowDev("b", nil, nil, "r")}, disk, false},
		{"split access", []specs.LinuxDeviceCgroup{allowDev("b", i64p(8), i64p(0), "r"), allowDev("b", i64p(8), i64p(0), "w")}, disk, true},
		{"allowed then denied", []specs.LinuxDeviceCgroup{disk, {Type: "b", Major: i64p(8), Minor: i64p(0), Access: "w"}}, disk, false},
	}
	for _, tt := range tests {
		if got := emulateDevices(tt.rules).grants(tt.query); got != tt.want {
			t.Errorf("%s: grants %s = %v", tt.name, ruleString(tt.query), got)
		}
	}
}
