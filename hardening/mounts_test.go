package hardening

import (
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-dev/hardened/profiles"
)

const (
	testPodUID      = "4b1e8a52-3f6d-4c1a-9a57-0d2f1c9e7b21"
	testSandboxID   = "9f3c2a1b7e5d4c6b8a0f1e2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6e5f4a3"
	testContainerID = "5c0b9a1e7d3f4b2a"
	// noConsent is the reason a host path nobody allowed is refused with.
	noConsent = "nor under an entry of the node policy's allow_host_path_prefixes"
)

func bindMount(src, dst string, opts ...string) specs.Mount {
	return specs.Mount{Destination: dst, Type: "bind", Source: src, Options: append([]string{"rbind"}, opts...)}
}

// criSpec is baseSpec as containerd's CRI labels a pod's container.
func criSpec() *specs.Spec {
	s := baseSpec()
	s.Annotations = map[string]string{annotationSandboxUID: testPodUID, annotationSandboxID: testSandboxID}
	return s
}

func TestMountsHostPaths(t *testing.T) {
	kubelet := "/var/lib/kubelet/pods/" + testPodUID
	criRoot := "/var/lib/containerd/io.containerd.grpc.v1.cri"
	criState := "/run/containerd/io.containerd.grpc.v1.cri"
	tests := []struct {
		name     string
		mount    specs.Mount
		baseline string // "" accepted; else a substring of the reason
		strict   string // hardened and strict
	}{
		// The evidence: hostPath /proc and / through CRI.
		{"host /proc", bindMount("/proc", "/hostproc"), "is /proc", "is /proc"},
		{"host root", bindMount("/", "/host"), "is /", "is /"},
		{"under /proc", bindMount("/proc/sys/kernel", "/k"), "is under /proc", "is under /proc"},
		{"ancestor of /var/lib/kubelet", bindMount("/var", "/v"), "holds /var/lib/", "holds /var/lib/"},
		{"ancestor of /var/lib", bindMount("/var/lib/", "/v"), "holds /var/lib/cni", "holds /var/lib/cni"},
		{"unclean", bindMount("//etc/./shadow", "/s"), "is under /etc", "is under /etc"},
		{"docker socket", bindMount("/var/run/docker.sock", "/d.sock"), "is under /var/run", "is under /var/run"},
		{"containerd socket", bindMount("/run/containerd/containerd.sock", "/c.sock"), "is under /run", "is under /run"},
		{"kubelet state", bindMount("/var/lib/kubelet/pki", "/pki"), "is under /var/lib/kubelet", "is under /var/lib/kubelet"},
		{"every pod's volumes", bindMount("/var/lib/kubelet/pods", "/pods"), "is under /var/lib/kubelet", "is under /var/lib/kubelet"},
		{"a bind by option", specs.Mount{Destination: "/b", Type: "none", Source: "/boot", Options: []string{"bind"}}, "is /boot", "is /boot"},
		{"a disk's filesystem", specs.Mount{Destination: "/disk", Type: "ext4", Source: "/dev/vda1"}, "is under /dev", "is under /dev"},
		{"/var/log (consent: /var/)", bindMount("/var/log", "/logs", "ro"), "", "is /var/log"},
		{"/home", bindMount("/home/alice", "/h"), noConsent, "is under /home"},
		{"host /dev/shm", bindMount("/dev/shm", "/dev/shm"), "is under /dev", "is under /dev"},
		{"/tmp", bindMount("/tmp/hdc-1234/x", "/x"), noConsent, noConsent},
		{"a directory nobody allowed", bindMount("/opt/data", "/data"), noConsent, noConsent},

		// With the node policy's consent (allow_host_path_prefixes below).
		{"data directory", bindMount("/srv/data", "/data"), "", ""},
		{"the consented prefix itself", bindMount("/srv", "/data"), noConsent, noConsent},
		{"read-only consent, read-only mount", bindMount("/mnt/models/llama", "/models", "ro"), "", ""},
		{"read-only consent, writable mount", bindMount("/mnt/models/llama", "/models"), "is allowed read-only only", "is allowed read-only only"},
		{"read-only consent, rw after ro", bindMount("/mnt/models/llama", "/models", "ro", "rw"), "is allowed read-only only", "is allowed read-only only"},
		{"consent cannot open a denied path", bindMount("/var/lib/kubelet/pki", "/pki"), "cannot allow it", "cannot allow it"},
		{"consent cannot open an ancestor", bindMount("/var/lib", "/l"), "holds /var/lib/cni", "holds /var/lib/cni"},

		// What containerd's CRI and the kubelet bind into every pod.
		{"etc-hosts", bindMount(kubelet+"/etc-hosts", "/etc/hosts"), "", ""},
		{"termination log", bindMount(kubelet+"/containers/web/5c0b9a1e", "/dev/termination-log"), "", ""},
		{"projected token", bindMount(kubelet+"/volumes/kubernetes.io~projected/kube-api-access-7xq2m", "/var/run/secrets/kubernetes.io/serviceaccount", "ro"), "", ""},
		{"hostname", bindMount(criRoot+"/sandboxes/"+testSandboxID+"/hostname", "/etc/hostname"), "", ""},
		{"resolv.conf", bindMount(criRoot+"/sandboxes/"+testSandboxID+"/resolv.conf", "/etc/resolv.conf"), "", ""},
		{"shm", bindMount(criState+"/sandboxes/"+testSandboxID+"/shm", "/dev/shm"), "", ""},
		{"image VOLUME", bindMount(criRoot+"/containers/"+testContainerID+"/volumes/def", "/var/lib/data"), "", ""},
		{"another container's VOLUME", bindMount(criRoot+"/containers/other/volumes/def", "/var/lib/data"), "is under /var/lib/containerd", "is under /var/lib/containerd"},
		{"image volume", bindMount(criState+"/image-volumes/"+testSandboxID+"/sha256-x", "/img"), "", ""},

		// ... and no other pod's.
		{"another pod's token", bindMount("/var/lib/kubelet/pods/0000-other/volumes/kubernetes.io~projected/token", "/t"), "is under /var/lib/kubelet", "is under /var/lib/kubelet"},
		{"another sandbox's hosts", bindMount(criRoot+"/sandboxes/other/hosts", "/etc/hosts"), "is under /var/lib/containerd", "is under /var/lib/containerd"},
		{"the pod's directory itself", bindMount(kubelet, "/p"), "is under /var/lib/kubelet", "is under /var/lib/kubelet"},
		{"every sandbox", bindMount(criRoot+"/sandboxes", "/s"), "is under /var/lib/containerd", "is under /var/lib/containerd"},
		{"climbing out of the pod", bindMount(kubelet+"/volumes/../../other/volumes", "/o"), "", ""}, // fdhygiene refuses ".." first
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, prof := range profileNames {
				want := tt.strict
				if prof == "baseline" {
					want = tt.baseline
				}
				s := criSpec()
				s.Mounts = append(s.Mounts, tt.mount)
				cfg := cfgFor(t, prof)
				cfg.ContainerID = testContainerID
				cfg.HostPaths = []profiles.HostPathPrefix{
					{Prefix: "/srv/"}, {Prefix: "/mnt/models/", ReadOnly: true}, {Prefix: "/var/"},
				}
				_, _, err := Harden(s, cfg)
				if strings.Contains(tt.mount.Source, "..") {
					if re := refusal(t, err); re.Rule != RuleFDHygiene {
						t.Errorf("%s: got %v, want an fdhygiene refusal", prof, err)
					}
					continue
				}
				if want == "" {
					if err != nil {
						t.Errorf("%s: unexpected %v", prof, err)
					}
					continue
				}
				re := refusal(t, err)
				if re.Rule != RuleMounts || re.Field != "mounts[1].source" || !strings.Contains(re.Reason, want) || !strings.Contains(re.Reason, "profile "+prof) {
					t.Errorf("%s: got %+v, want mounts[1].source %q", prof, re, want)
				}
				// Validate refuses the same spec the same way.
				if re := refusal(t, Validate(s, cfgFor(t, prof))); re.Rule != RuleFDHygiene && re.Rule != RuleMounts && re.Rule != RuleNoNewPrivs {
					t.Errorf("%s: Validate: %+v", prof, re)
				}
			}
		})
	}
}

func TestMountsPlaceholders(t *testing.T) {
	prof := &profiles.Profile{Name: "p", Mounts: profiles.Mounts{
		DenyHostPaths:         []string{"/var/lib/kubelet"},
		AllowHostPathPrefixes: []string{"/var/lib/kubelet/pods/{pod-uid}/"},
	}}
	src := "/var/lib/kubelet/pods/uid-1/volumes/x"
	for _, tt := range []struct {
		name string
		uid  string
		ok   bool
	}{
		{"own pod", "uid-1", true},
		{"other pod", "uid-2", false},
		{"no annotation", "", false},
		{"dot", ".", false},
		{"dotdot", "..", false},
		{"slash", "uid-1/volumes", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ann := map[string]string{}
			if tt.uid != "" {
				ann[annotationSandboxUID] = tt.uid
			}
			if got := hostPathReason(src, ann, prof) == ""; got != tt.ok {
				t.Errorf("allowed = %v, want %v", got, tt.ok)
			}
		})
	}
	// An ancestor of a denied path exposes it.
	for _, a := range []string{"/", "/var", "/var/lib/"} {
		if r := hostPathReason(a, nil, prof); !strings.Contains(r, "holds /var/lib/kubelet") {
			t.Errorf("%s: %q", a, r)
		}
	}
	// An entry without a trailing slash allows the path itself too.
	prof.Mounts.AllowHostPathPrefixes = []string{"/var/lib/kubelet/plugins"}
	if r := hostPathReason("/var/lib/kubelet/plugins", nil, prof); r != "" {
		t.Errorf("exact path refused: %s", r)
	}
	if r := hostPathReason("/var/lib/kubelet/plugins-x", nil, prof); r == "" {
		t.Error("a sibling sharing the prefix's characters allowed")
	}
	// No allowed prefix: nothing goes, not even what no deny list names.
	if r := hostPathReason("/srv/data", nil, &profiles.Profile{Name: "p"}); !strings.Contains(r, "allow_host_path_prefixes") {
		t.Errorf("no allowed prefix: %q", r)
	}
}

// hostPathReason is the host path rule of prof (no node policy prefixes)
// for a read-write mount of p.
func hostPathReason(p string, ann map[string]string, prof *profiles.Profile) string {
	return newHostPaths(&Config{Profile: prof}, ann).reason(p, false)
}

func TestMountsFilesystems(t *testing.T) {
	fs := func(typ, dst string) specs.Mount { return specs.Mount{Destination: dst, Type: typ, Source: typ} }
	tests := []struct {
		name    string
		mount   specs.Mount
		refused string // substring of the reason under every profile; "" accepted
		std     bool   // refused only under standard_filesystems_only
	}{
		{"second procfs (the evidence)", fs("proc", "/p2"), "allowed only at /proc", false},
		{"procfs at /proc", fs("proc", "/proc"), "", false},
		{"procfs at /proc/", fs("proc", "/proc/"), "", false},
		{"sysfs elsewhere", fs("sysfs", "/s"), "allowed only at /sys", false},
		{"cgroup elsewhere", fs("cgroup", "/cg"), "allowed only at /sys/fs/cgroup", false},
		{"cgroup2 elsewhere", fs("cgroup2", "/sys/fs/cgroup/x"), "allowed only at /sys/fs/cgroup", false},
		{"mqueue elsewhere", fs("mqueue", "/mq"), "allowed only at /dev/mqueue", false},
		{"devpts elsewhere", fs("devpts", "/pts"), "allowed only at /dev/pts", false},
		{"devtmpfs", fs("devtmpfs", "/hostdev"), "host-wide kernel state", false},
		{"debugfs", fs("debugfs", "/sys/kernel/debug"), "host-wide kernel state", false},
		{"securityfs", fs("securityfs", "/sec"), "host-wide kernel state", false},
		{"binfmt_misc", fs("binfmt_misc", "/b"), "host-wide kernel state", false},
		{"tmpfs anywhere", fs("tmpfs", "/anything"), "", false},
		{"overlay", fs("overlay", "/o"), "allows only bind mounts", true},
		{"nfs", specs.Mount{Destination: "/n", Type: "nfs", Source: "server:/export"}, "allows only bind mounts", true},
		{"no type", fs("", "/x"), "is empty", false},
		{"bind option on a kernel fs type", specs.Mount{Destination: "/p2", Type: "proc", Source: "/srv/p", Options: []string{"rbind"}}, "runc bind-mounts the source whatever the type says", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, std := range []bool{false, true} {
				prof := &profiles.Profile{Name: "p", Mounts: profiles.Mounts{StandardFilesystemsOnly: std}}
				s := baseSpec()
				s.Mounts = append(s.Mounts, tt.mount)
				err := checkMounts(s, &Config{Profile: prof})
				if tt.refused == "" || tt.std && !std {
					if err != nil {
						t.Errorf("std=%v: unexpected %v", std, err)
					}
					continue
				}
				if re := refusal(t, err); re.Rule != RuleMounts || !strings.HasPrefix(re.Field, "mounts[1]") || !strings.Contains(re.Reason, tt.refused) {
					t.Errorf("std=%v: got %+v", std, re)
				}
			}
		})
	}
}

func TestMountsRootPath(t *testing.T) {
	for _, tt := range []struct {
		root    string
		refused bool
	}{
		{"rootfs", false},
		{"/run/containerd/io.containerd.runtime.v2.task/k8s.io/abc/rootfs", true}, // under /run: not a snapshot ctr would name
		{"/srv/images/alpine", false}, // with the node policy's consent
		{"/srv/other/alpine", true},   // without it
		{"/", true},
		{"/usr", true},
		{"rootfs/../../..", true},
	} {
		s := criSpec()
		s.Root.Path = tt.root
		cfg := cfgFor(t, "hardened")
		cfg.HostPaths = []profiles.HostPathPrefix{{Prefix: "/srv/images/", ReadOnly: true}}
		_, _, err := Harden(s, cfg)
		if !tt.refused {
			if err != nil {
				t.Errorf("%s: %v", tt.root, err)
			}
			continue
		}
		if re := refusal(t, err); re.Rule != RuleMounts || re.Field != "root.path" {
			t.Errorf("%s: got %+v", tt.root, re)
		}
	}
}

func TestMountOptions(t *testing.T) {
	m := func(typ string, opts ...string) specs.Mount {
		return specs.Mount{Destination: kernelFSPlaces[typ], Type: typ, Source: typ, Options: opts}
	}
	tests := []struct {
		name string
		in   specs.Mount
		want []string
	}{
		{"privileged sysfs", m("sysfs", "nosuid", "noexec", "nodev", "rw"), []string{"nosuid", "noexec", "nodev", "ro"}},
		{"privileged cgroup", m("cgroup", "nosuid", "rw", "relatime"), []string{"nosuid", "relatime", "ro"}},
		{"cgroup2 without options", m("cgroup2"), []string{"ro"}},
		{"ro then rw (rw wins in runc)", m("sysfs", "ro", "rw"), []string{"ro"}},
		{"already ro", m("sysfs", "nosuid", "ro"), []string{"nosuid", "ro"}},
		{"proc untouched", m("proc", "rw"), []string{"rw"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &specs.Spec{Mounts: []specs.Mount{tt.in}}
			in := slices.Clone(tt.in.Options)
			r := &Report{}
			cfg := &Config{Profile: &profiles.Profile{}}
			applyMountOptions(s, cfg, r)
			if !slices.Equal(s.Mounts[0].Options, tt.want) {
				t.Errorf("got %v, want %v", s.Mounts[0].Options, tt.want)
			}
			if changed := !slices.Equal(in, tt.want); changed != (len(r.Changes) == 1) {
				t.Errorf("changes %+v", r.Changes)
			}
			if !slices.Equal(tt.in.Options, in) {
				t.Error("the input's options slice was written to")
			}
			again := &Report{}
			applyMountOptions(s, cfg, again)
			if len(again.Changes) != 0 {
				t.Errorf("not idempotent: %+v", again.Changes)
			}
			if err := checkMountsTamed(s, cfg); err != nil {
				t.Error(err)
			}
		})
	}
	s := &specs.Spec{Mounts: []specs.Mount{m("sysfs", "rw")}}
	if re := refusal(t, checkMountsTamed(s, &Config{Profile: &profiles.Profile{}})); re.Field != "mounts[0].options" {
		t.Errorf("got %+v", re)
	}
}

func TestCheckMountSources(t *testing.T) {
	prof := cfgFor(t, "hardened")
	prof.HostPaths = []profiles.HostPathPrefix{{Prefix: "/srv/"}, {Prefix: "/mnt/disk/"}}
	s := criSpec()
	s.Mounts = append(s.Mounts,
		bindMount("/srv/data", "/data"),
		bindMount("/var/lib/kubelet/pods/"+testPodUID+"/volumes/kubernetes.io~empty-dir/cache", "/cache"))
	ok := map[string]string{
		"/srv/data": "/srv/data",
		"/var/lib/kubelet/pods/" + testPodUID + "/volumes/kubernetes.io~empty-dir/cache": "/var/lib/kubelet/pods/" + testPodUID + "/volumes/kubernetes.io~empty-dir/cache",
	}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range ok {
			m[a] = b
		}
		if v == "" {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name     string
		resolved map[string]string
		field    string // "" accepted
		reason   string
	}{
		{"as written", nil, "", ""},
		{"resolved to themselves", ok, "", ""},
		{"a symlink to /proc", with("/srv/data", "/proc"), "mounts[1].source", `resolves to "/proc": that path is /proc`},
		{"a symlink to /", with("/srv/data", "/"), "mounts[1].source", "that path is /,"},
		{"a symlink to a parent of /etc", with("/srv/data", "/srv/../"), "mounts[1].source", "not a clean absolute path"},
		{"a symlink elsewhere is fine", with("/srv/data", "/mnt/disk/data"), "", ""},
		{"a volume resolving into another pod", with("/var/lib/kubelet/pods/"+testPodUID+"/volumes/kubernetes.io~empty-dir/cache", "/var/lib/kubelet/pods/other/volumes/x"), "mounts[2].source", "is under /var/lib/kubelet"},
		{"not resolved", with("/srv/data", ""), "mounts[1].source", "was not resolved"},
		{"resolved to a relative path", with("/srv/data", "data"), "mounts[1].source", "not a clean absolute path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckMountSources(s, prof, tt.resolved)
			if tt.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if re := refusal(t, err); re.Rule != RuleMounts || re.Field != tt.field || !strings.Contains(re.Reason, tt.reason) {
				t.Errorf("got %+v, want %s %q", re, tt.field, tt.reason)
			}
		})
	}
	// The written path must pass too, and an absolute root.path is checked.
	bad := criSpec()
	bad.Root.Path = "/etc"
	if re := refusal(t, CheckMountSources(bad, prof, map[string]string{"/etc": "/srv/etc"})); re.Field != "root.path" {
		t.Errorf("got %+v", re)
	}
	if re := refusal(t, CheckMountSources(nil, prof, nil)); re.Rule != RuleSpec {
		t.Errorf("nil spec: %+v", re)
	}
}
