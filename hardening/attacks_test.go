package hardening

import (
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-dev/hardened/profiles"
)

// attack is a spec a pod author, an NRI plugin or a CDI spec could produce
// to get past a profile, and what each built-in profile must make of it:
// a refusal naming the rule and field, or a tamed spec (check).
type attack struct {
	name   string
	mutate func(s *specs.Spec)
	// refuse maps a profile to the field its refusal names (prefix); a
	// profile not in it must accept and tame the spec.
	refuse map[string]string
	// rule is the rule every refusal names.
	rule string
	// check, if set, inspects the tamed output of the accepting profiles.
	check func(t *testing.T, prof string, out *specs.Spec)
}

// all is the refusal field under every built-in profile.
func all(field string) map[string]string {
	return map[string]string{"baseline": field, "hardened": field, "strict": field}
}

func withNS(t specs.LinuxNamespaceType, path string) func(s *specs.Spec) {
	return func(s *specs.Spec) {
		for i := range s.Linux.Namespaces {
			if s.Linux.Namespaces[i].Type == t {
				s.Linux.Namespaces[i].Path = path
				return
			}
		}
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: t, Path: path})
	}
}

var attacks = []attack{
	// Mounts.
	{name: "writable bind of a host directory nobody allowed",
		mutate: func(s *specs.Spec) { s.Mounts = append(s.Mounts, bindMount("/srv/data", "/data", "rw")) },
		refuse: all("mounts[1].source"), rule: RuleMounts},
	{name: "bind option on a tmpfs mount of the host root",
		mutate: func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/h", Type: "tmpfs", Source: "/", Options: []string{"rbind"}})
		},
		refuse: all("mounts[1]"), rule: RuleMounts},
	{name: "remount of a mount the spec made",
		mutate: func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"remount", "rw"}})
		},
		refuse: all("mounts[1].options"), rule: RuleMounts},
	{name: "tmpfs over the root",
		mutate: func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/", Type: "tmpfs", Source: "tmpfs"})
		},
		refuse: all("mounts[1].destination"), rule: RuleMounts},
	{name: "recursive attribute clearing read-only",
		mutate: func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, bindMount("/var/lib/kubelet/pods/"+testPodUID+"/volumes/v", "/v", "rrw"))
		},
		refuse: all("mounts[1].options"), rule: RuleMounts},
	{name: "bidirectional propagation from a pod volume",
		mutate: func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, bindMount("/var/lib/kubelet/pods/"+testPodUID+"/volumes/v", "/v", "rshared"))
		},
		refuse: map[string]string{"hardened": "mounts[1].options", "strict": "mounts[1].options"}, rule: RuleMounts,
		check: func(t *testing.T, prof string, out *specs.Spec) {
			if o := out.Mounts[len(out.Mounts)-1].Options; slices.Contains(o, "rshared") || !slices.Contains(o, "rslave") {
				t.Errorf("%s: propagation %v", prof, o)
			}
		}},
	{name: "a pod volume with suid and dev",
		mutate: func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, bindMount("/var/lib/kubelet/pods/"+testPodUID+"/volumes/v", "/v", "suid", "dev"))
		},
		check: func(t *testing.T, prof string, out *specs.Spec) {
			o := out.Mounts[len(out.Mounts)-1].Options
			if slices.Contains(o, "suid") || slices.Contains(o, "dev") || !slices.Contains(o, "nosuid") || !slices.Contains(o, "nodev") {
				t.Errorf("%s: options %v", prof, o)
			}
		}},
	{name: "an idmapped volume mapping to host root",
		mutate: func(s *specs.Spec) {
			m := bindMount("/var/lib/kubelet/pods/"+testPodUID+"/volumes/v", "/v", "idmap")
			m.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 1000, HostID: 0, Size: 1}}
			m.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 1000, HostID: 0, Size: 1}}
			s.Mounts = append(s.Mounts, m)
		},
		refuse: map[string]string{"restricted": "mounts[1].uidMappings", "strict": "mounts[1].uidMappings"}, rule: RuleMounts},
	{name: "an executable /tmp of its own under strict",
		mutate: func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"exec", "rw"}})
		},
		check: func(t *testing.T, prof string, out *specs.Spec) {
			o := out.Mounts[slices.IndexFunc(out.Mounts, func(m specs.Mount) bool { return m.Destination == "/tmp" })].Options
			if prof == "strict" && !lastOf(o, "noexec", "exec", false) {
				t.Errorf("strict: /tmp options %v", o)
			}
		}},
	{name: "an unknown filesystem option",
		mutate: func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/t", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m", "quota_frob=1"}})
		},
		refuse: all("mounts[1].options"), rule: RuleMounts},

	// Namespaces.
	{name: "no mount namespace", mutate: func(s *specs.Spec) {
		s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.MountNamespace })
	}, refuse: all("linux.namespaces"), rule: RuleNamespaces},
	{name: "a mount namespace by path", mutate: withNS(specs.MountNamespace, "/proc/4242/ns/mnt"),
		refuse: all("linux.namespaces"), rule: RuleNamespaces},
	{name: "the node's hostname", mutate: func(s *specs.Spec) {
		withNS(specs.UTSNamespace, "/proc/1/ns/uts")(s)
		s.Hostname = "pwned"
	}, refuse: all(""), rule: RuleNamespaces},
	{name: "user namespace mapping to host root", mutate: func(s *specs.Spec) {
		withNS(specs.UserNamespace, "")(s)
		s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 0, Size: 65536}}
		s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	}, refuse: map[string]string{"restricted": "linux.uidMappings", "strict": "linux.uidMappings"}, rule: RuleNamespaces},
	{name: "a host interface", mutate: func(s *specs.Spec) {
		s.Linux.NetDevices = map[string]specs.LinuxNetDevice{"eth0": {Name: "eth0"}}
	}, refuse: all("linux.netDevices"), rule: RuleNamespaces},
	{name: "time offsets without a time namespace", mutate: func(s *specs.Spec) {
		s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"monotonic": {Secs: 1}}
	}, refuse: all("linux.timeOffsets"), rule: RuleNamespaces},

	// Sysctls.
	{name: "core_pattern", mutate: func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"kernel.core_pattern": "|/x"} },
		refuse: all("linux.sysctl.kernel.core_pattern"), rule: RuleSysctls},
	{name: "an IPC sysctl in the node's IPC namespace", mutate: func(s *specs.Spec) {
		withNS(specs.IPCNamespace, "/proc/1/ns/ipc")(s)
		s.Linux.Sysctl = map[string]string{"kernel.shmmax": "1"}
	}, refuse: all("linux.namespaces")},
	{name: "a network sysctl outside the safe set", mutate: func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"net.core.somaxconn": "4096"} },
		refuse: all("linux.sysctl.net.core.somaxconn"), rule: RuleSysctls},
	{name: "a sysctl name climbing out of /proc/sys", mutate: func(s *specs.Spec) {
		s.Linux.Sysctl = map[string]string{"net/../../kernel/core_pattern": "x"}
	}, refuse: all("linux.sysctl."), rule: RuleSysctls},

	// Cgroups.
	{name: "the root cgroup", mutate: func(s *specs.Spec) { s.Linux.CgroupsPath = "/" },
		refuse: all("linux.cgroupsPath"), rule: RuleCgroups},
	{name: "another pod's cgroup", mutate: func(s *specs.Spec) { s.Linux.CgroupsPath = "/kubepods/podother/" + testContainerID },
		refuse: all("linux.cgroupsPath"), rule: RuleCgroups},
	{name: "a parent cgroup", mutate: func(s *specs.Spec) { s.Linux.CgroupsPath = "/kubepods/pod" + testPodUID },
		refuse: all("linux.cgroupsPath"), rule: RuleCgroups},
	{name: "cgroup.procs through unified", mutate: func(s *specs.Spec) {
		s.Linux.Resources = &specs.LinuxResources{Unified: map[string]string{"cgroup.procs": "1"}}
	}, refuse: all("linux.resources.unified.cgroup.procs"), rule: RuleCgroups},
	{name: "an exclusive cpuset partition", mutate: func(s *specs.Spec) {
		s.Linux.Resources = &specs.LinuxResources{Unified: map[string]string{"cpuset.cpus.partition": "root"}}
	}, refuse: all("linux.resources.unified"), rule: RuleCgroups},
	{name: "the node's traffic class", mutate: func(s *specs.Spec) {
		id := uint32(0x100001)
		s.Linux.Resources = &specs.LinuxResources{Network: &specs.LinuxNetwork{ClassID: &id}}
	}, refuse: all("linux.resources.network"), rule: RuleCgroups},
	{name: "the resctrl root group", mutate: func(s *specs.Spec) { s.Linux.IntelRdt = &specs.LinuxIntelRdt{ClosID: "/"} },
		refuse: all("linux.intelRdt.closID"), rule: RuleCgroups},
	{name: "rewriting a shared resctrl group", mutate: func(s *specs.Spec) {
		s.Linux.IntelRdt = &specs.LinuxIntelRdt{ClosID: "gold", L3CacheSchema: "L3:0=f"}
	}, refuse: all("linux.intelRdt"), rule: RuleCgroups},

	// Process.
	{name: "spc_t", mutate: func(s *specs.Spec) { s.Process.SelinuxLabel = "system_u:system_r:spc_t:s0" },
		refuse: all("process.selinuxLabel"), rule: RuleSELinux},
	{name: "a daemon's SELinux type", mutate: func(s *specs.Spec) { s.Process.SelinuxLabel = "system_u:system_r:container_runtime_t:s0" },
		refuse: all("process.selinuxLabel"), rule: RuleSELinux},
	{name: "never OOM-killed", mutate: func(s *specs.Spec) { v := -1000; s.Process.OOMScoreAdj = &v },
		check: func(t *testing.T, prof string, out *specs.Spec) {
			if v := out.Process.OOMScoreAdj; v == nil || *v < minOOMScoreAdj {
				t.Errorf("%s: oomScoreAdj %v", prof, v)
			}
		}},
	{name: "the kubelet's Guaranteed score kept", mutate: func(s *specs.Spec) { v := -997; s.Process.OOMScoreAdj = &v },
		check: func(t *testing.T, prof string, out *specs.Spec) {
			if v := out.Process.OOMScoreAdj; v == nil || *v != -997 {
				t.Errorf("%s: oomScoreAdj %v", prof, v)
			}
		}},
	{name: "unbounded locked memory", mutate: func(s *specs.Spec) {
		s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_MEMLOCK", Soft: ^uint64(0), Hard: ^uint64(0)}, {Type: "RLIMIT_NOFILE", Soft: 1 << 40, Hard: 1 << 40}}
	}, check: func(t *testing.T, prof string, out *specs.Spec) {
		for _, rl := range out.Process.Rlimits {
			if rl.Type == "RLIMIT_NOFILE" && rl.Hard > 1048576 || prof != "baseline" && rl.Type == "RLIMIT_MEMLOCK" && rl.Hard > 64<<20 {
				t.Errorf("%s: %s", prof, rlimitString(rl))
			}
		}
	}},
	{name: "an unknown rlimit", mutate: func(s *specs.Spec) { s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_FOO"}} },
		refuse: all("process.rlimits[0].type"), rule: RuleRlimits},
	{name: "a personality flag", mutate: func(s *specs.Spec) {
		s.Linux.Personality = &specs.LinuxPersonality{Domain: specs.PerLinux, Flags: []specs.LinuxPersonalityFlag{"ADDR_NO_RANDOMIZE"}}
	}, refuse: all("linux.personality.flags"), rule: RuleProcess},

	// Seccomp.
	{name: "a seccomp listener of the spec's", mutate: func(s *specs.Spec) {
		s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, ListenerPath: "/run/containerd/containerd.sock",
			Syscalls: []specs.LinuxSyscall{{Names: []string{"mount"}, Action: specs.ActNotify}}}
	}, refuse: all("linux.seccomp.listenerPath"), rule: RuleSeccomp},

	// Annotations.
	{name: "runtime-interpreted annotations", mutate: func(s *specs.Spec) {
		for _, k := range []string{"dev.gvisor.flag.host-uds", "dev.gvisor.bundle.experimental-high-performance", "dev.gvisor.internal.nvproxy",
			"org.systemd.property.DeviceAllow", "run.oci.seccomp_bpf_data", "org.opencontainers.runc.x", "bundle", "io.kubernetes.cri-o.SandboxID"} {
			s.Annotations[k] = "x"
		}
	}, check: func(t *testing.T, prof string, out *specs.Spec) {
		for k := range out.Annotations {
			if !strings.HasPrefix(k, "io.kubernetes.cri.") {
				t.Errorf("%s: annotation %s kept", prof, k)
			}
		}
	}},

	// Devices and platforms.
	{name: "a host path smuggled as a device path", mutate: func(s *specs.Spec) {
		s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/vfio/../../etc/shadow", Type: "c", Major: 1, Minor: 3}}
	}, refuse: all("linux.devices[0].path"), rule: RuleDevices},
	{name: "a Windows section", mutate: func(s *specs.Spec) { s.Windows = &specs.Windows{} },
		refuse: all("windows"), rule: RuleSpec},
}

// TestAttacks runs every attack spec under every built-in profile.
func TestAttacks(t *testing.T) {
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			for _, prof := range profileNames {
				s := criSpec()
				s.Linux.CgroupsPath = "/kubepods/pod" + testPodUID + "/" + testContainerID
				a.mutate(s)
				cfg := cfgFor(t, prof)
				cfg.ContainerID = testContainerID
				// An app container of the pod whose sandbox is here.
				cfg.SandboxCgroupsPath = "/kubepods/pod" + testPodUID + "/" + testSandboxID
				out, _, err := Harden(s, cfg)
				// restricted is hardened plus non-root, and the attack
				// specs run as a user: the same refusals.
				field, refused := a.refuse[prof]
				if _, own := a.refuse["restricted"]; prof == "restricted" && !own {
					field, refused = a.refuse["hardened"]
				}
				if !refused {
					if err != nil {
						t.Fatalf("%s: %v", prof, err)
					}
					if a.check != nil {
						a.check(t, prof, out)
					}
					continue
				}
				re := refusal(t, err)
				if !strings.HasPrefix(re.Field, field) || a.rule != "" && re.Rule != a.rule {
					t.Errorf("%s: refused by %s at %q (%v), want %s at %q", prof, re.Rule, re.Field, err, a.rule, field)
				}
			}
		})
	}
}

// TestAttackGPUPathOnGVisor: runsc passes the host's node through for a
// device path it proxies, whatever the numbers say.
func TestAttackGPUPathOnGVisor(t *testing.T) {
	s := criSpec()
	s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/nvidia0", Type: "c", Major: 1, Minor: 3}}
	cfg := cfgFor(t, "hardened")
	cfg.Runtime = profiles.RuntimeGVisor
	if re := refusal(t, func() error { _, _, err := Harden(s, cfg); return err }()); re.Field != "linux.devices[0].path" {
		t.Errorf("got %+v", re)
	}
	// On runc the node is made in the container: /dev/null's numbers are /dev/null.
	cfg.Runtime = profiles.RuntimeRunc
	if _, _, err := Harden(s, cfg); err != nil {
		t.Error(err)
	}
	// A profile that allows the GPU allows its path on gVisor too.
	cfg.Runtime = profiles.RuntimeGVisor
	cfg.Profile.Devices.Allowed = []string{"c 195:*"}
	s.Linux.Devices[0].Major, s.Linux.Devices[0].Minor = 195, 0
	if _, _, err := Harden(s, cfg); err != nil {
		t.Error(err)
	}
}
