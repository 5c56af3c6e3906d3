package crispec

import (
	"slices"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/hardened-dev/hardened/internal/decide"
)

func testSandbox(sc *runtime.LinuxSandboxSecurityContext, sysctls map[string]string) Sandbox {
	return Sandbox{ID: "sb1", Pid: 4242, NetNS: "/var/run/netns/cni-1", Hostname: "node", Config: &runtime.PodSandboxConfig{
		Metadata: &runtime.PodSandboxMetadata{Name: "web", Namespace: "default", Uid: "u1"},
		Hostname: "web", LogDirectory: "/var/log/pods/default_web_u1",
		Annotations: map[string]string{"hardened.dev/profile": "strict", "other": "x"},
		Linux:       &runtime.LinuxPodSandboxConfig{CgroupParent: "/kubepods/podu1", SecurityContext: sc, Sysctls: sysctls},
	}}
}

func mount(s *specs.Spec, dst string) *specs.Mount {
	for i := range s.Mounts {
		if s.Mounts[i].Destination == dst {
			return &s.Mounts[i]
		}
	}
	return nil
}

func nsPath(s *specs.Spec, t specs.LinuxNamespaceType) (string, bool) {
	for _, n := range s.Linux.Namespaces {
		if n.Type == t {
			return n.Path, true
		}
	}
	return "", false
}

// TestSandboxSpec: the pause container as containerd's CRI builds it:
// read-only rootfs, the pod's sysctls with containerd's two defaults, the
// pod's network namespace, no host namespaces unless asked, the passed
// annotations only, the CRI annotations, the cgroup under the parent.
func TestSandboxSpec(t *testing.T) {
	sb := testSandbox(&runtime.LinuxSandboxSecurityContext{NamespaceOptions: &runtime.NamespaceOption{Pid: runtime.NamespaceMode_CONTAINER}},
		map[string]string{"net.ipv4.tcp_syncookies": "1"})
	s, err := SandboxSpec(DefaultNode(), sb, PauseImage())
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case !s.Root.Readonly || s.Root.Path != "rootfs":
		t.Errorf("root %+v", s.Root)
	case s.Linux.Sysctl["net.ipv4.tcp_syncookies"] != "1" || s.Linux.Sysctl["net.ipv4.ip_unprivileged_port_start"] != "0" || s.Linux.Sysctl["net.ipv4.ping_group_range"] != "0 2147483647":
		t.Errorf("sysctls %v", s.Linux.Sysctl)
	case s.Linux.CgroupsPath != "/kubepods/podu1/sb1":
		t.Errorf("cgroupsPath %q", s.Linux.CgroupsPath)
	case s.Process.User.UID != 65535 || s.Process.Args[0] != "/pause" || s.Linux.Seccomp != nil:
		t.Errorf("process %+v, seccomp %v", s.Process, s.Linux.Seccomp != nil)
	case s.Annotations[decide.AnnContainerType] != decide.ContainerTypeSandbox || s.Annotations[decide.AnnSandboxID] != "sb1" || s.Annotations["hardened.dev/profile"] != "strict":
		t.Errorf("annotations %v", s.Annotations)
	case s.Annotations["other"] != "":
		t.Errorf("an annotation outside pod_annotations reached the spec: %v", s.Annotations)
	}
	if p, ok := nsPath(s, specs.NetworkNamespace); !ok || p != "/var/run/netns/cni-1" {
		t.Errorf("network namespace %q %v", p, ok)
	}
	if m := mount(s, "/dev/shm"); m == nil || m.Source != "/run/containerd/io.containerd.grpc.v1.cri/sandboxes/sb1/shm" || !slices.Contains(m.Options, "ro") {
		t.Errorf("/dev/shm %+v", m)
	}

	host := testSandbox(&runtime.LinuxSandboxSecurityContext{NamespaceOptions: &runtime.NamespaceOption{
		Network: runtime.NamespaceMode_NODE, Pid: runtime.NamespaceMode_NODE, Ipc: runtime.NamespaceMode_NODE}}, nil)
	s, err = SandboxSpec(DefaultNode(), host, PauseImage())
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []specs.LinuxNamespaceType{specs.NetworkNamespace, specs.UTSNamespace, specs.PIDNamespace, specs.IPCNamespace} {
		if _, ok := nsPath(s, ns); ok {
			t.Errorf("hostNetwork/PID/IPC pod's sandbox has a %s namespace", ns)
		}
	}
	if _, ok := s.Linux.Sysctl["net.ipv4.ping_group_range"]; ok {
		t.Errorf("a host-network sandbox gets containerd's network sysctls: %v", s.Linux.Sysctl)
	}
	if m := mount(s, "/dev/shm"); m == nil || m.Source != "/dev/shm" {
		t.Errorf("hostIPC /dev/shm %+v", m)
	}
	if m := mount(s, "/sys"); m == nil || !slices.Contains(m.Options, "ro") {
		t.Errorf("sandbox sysfs %+v", m)
	}

	// A privileged pod's sandbox: sysfs writable, no seccomp filter.
	priv := testSandbox(&runtime.LinuxSandboxSecurityContext{Privileged: true, Seccomp: &runtime.SecurityProfile{ProfileType: runtime.SecurityProfile_RuntimeDefault}}, nil)
	if s, err = SandboxSpec(DefaultNode(), priv, PauseImage()); err != nil {
		t.Fatal(err)
	}
	if m := mount(s, "/sys"); m == nil || !slices.Contains(m.Options, "rw") || slices.Contains(m.Options, "ro") || s.Linux.Seccomp != nil {
		t.Errorf("privileged sandbox: sysfs %+v, seccomp %v", m, s.Linux.Seccomp != nil)
	}
}

// TestContainerSpec: an app container with the kubelet's usual
// restricted-style security context and a read-only hostPath.
func TestContainerSpec(t *testing.T) {
	sb := testSandbox(&runtime.LinuxSandboxSecurityContext{}, nil)
	cfg := &runtime.ContainerConfig{
		Metadata: &runtime.ContainerMetadata{Name: "app"},
		Image:    &runtime.ImageSpec{Image: "docker.io/library/busybox:latest"},
		Args:     []string{"sleep", "1"},
		Envs:     []*runtime.KeyValue{{Key: "A", Value: []byte("b")}},
		Mounts: []*runtime.Mount{
			{ContainerPath: "/data", HostPath: "/srv/data", Readonly: true, Propagation: runtime.MountPropagation_PROPAGATION_HOST_TO_CONTAINER},
			{ContainerPath: "/etc/hosts", HostPath: "/var/lib/kubelet/pods/u1/etc-hosts"},
		},
		Annotations: map[string]string{"hardened.dev/seccomp-notify": "report", "io.kubernetes.container.hash": "1"},
		Linux: &runtime.LinuxContainerConfig{
			Resources: &runtime.LinuxContainerResources{MemoryLimitInBytes: 1 << 26, OomScoreAdj: 1000},
			SecurityContext: &runtime.LinuxContainerSecurityContext{
				Capabilities:     &runtime.Capability{DropCapabilities: []string{"ALL"}, AddCapabilities: []string{"NET_BIND_SERVICE"}},
				RunAsUser:        &runtime.Int64Value{Value: 1000},
				RunAsGroup:       &runtime.Int64Value{Value: 3000},
				ReadonlyRootfs:   true,
				NoNewPrivs:       true,
				Seccomp:          &runtime.SecurityProfile{ProfileType: runtime.SecurityProfile_RuntimeDefault},
				NamespaceOptions: &runtime.NamespaceOption{Pid: runtime.NamespaceMode_CONTAINER},
				MaskedPaths:      []string{"/proc/kcore"},
			},
		},
	}
	img := Image{Name: "docker.io/library/busybox:latest", Known: true, Config: ocispec.ImageConfig{Cmd: []string{"sh"}, Env: []string{"PATH=/bin"}}}
	s, notes, err := ContainerSpec(DefaultNode(), sb, "c1", cfg, img)
	if err != nil || len(notes) != 0 {
		t.Fatal(err, notes)
	}
	caps := s.Process.Capabilities
	switch {
	case !slices.Equal(caps.Bounding, []string{"CAP_NET_BIND_SERVICE"}) || len(caps.Ambient) != 0:
		t.Errorf("capabilities %+v", caps)
	case s.Process.User.UID != 1000 || s.Process.User.GID != 3000 || !s.Process.NoNewPrivileges || !s.Root.Readonly:
		t.Errorf("process %+v root %+v", s.Process, s.Root)
	case s.Linux.Seccomp == nil || s.Linux.Seccomp.DefaultAction != specs.ActErrno:
		t.Errorf("RuntimeDefault seccomp not containerd's default profile: %+v", s.Linux.Seccomp)
	case !slices.Equal(s.Process.Args, []string{"sleep", "1"}) || !slices.Contains(s.Process.Env, "A=b") || !slices.Contains(s.Process.Env, "HOSTNAME=web"):
		t.Errorf("args %v env %v", s.Process.Args, s.Process.Env)
	case !slices.Equal(s.Linux.MaskedPaths, []string{"/proc/kcore"}) || len(s.Linux.ReadonlyPaths) != 0:
		t.Errorf("masked %v readonly %v", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
	case s.Linux.RootfsPropagation != "rslave" || *s.Linux.Resources.Memory.Limit != 1<<26 || *s.Process.OOMScoreAdj != 1000:
		t.Errorf("propagation %q resources %+v", s.Linux.RootfsPropagation, s.Linux.Resources)
	case s.Annotations["hardened.dev/seccomp-notify"] != "report" || s.Annotations["io.kubernetes.container.hash"] != "" || s.Annotations[decide.AnnContainerType] != decide.ContainerTypeContainer:
		t.Errorf("annotations %v", s.Annotations)
	}
	if m := mount(s, "/data"); m == nil || m.Source != "/srv/data" || !slices.Equal(m.Options, []string{"rbind", "rslave", "ro"}) {
		t.Errorf("hostPath mount %+v", m)
	}
	if m := mount(s, "/etc/hosts"); m == nil || m.Source != "/var/lib/kubelet/pods/u1/etc-hosts" {
		t.Errorf("the kubelet's /etc/hosts must replace the sandbox's: %+v", m)
	}
	if m := mount(s, "/etc/resolv.conf"); m == nil || !strings.HasSuffix(m.Source, "/sandboxes/sb1/resolv.conf") || !slices.Contains(m.Options, "ro") {
		t.Errorf("resolv.conf (read-only with a read-only rootfs) %+v", m)
	}
	for _, ns := range []struct {
		t    specs.LinuxNamespaceType
		path string
		has  bool
	}{{specs.NetworkNamespace, "/proc/4242/ns/net", true}, {specs.IPCNamespace, "/proc/4242/ns/ipc", true}, {specs.UTSNamespace, "/proc/4242/ns/uts", true}, {specs.PIDNamespace, "", true}, {specs.MountNamespace, "", true}} {
		if p, ok := nsPath(s, ns.t); ok != ns.has || p != ns.path {
			t.Errorf("%s namespace %q %v", ns.t, p, ok)
		}
	}

	// Privileged: every capability, the host's devices, no seccomp; only in
	// a privileged sandbox.
	cfg.Linux.SecurityContext = &runtime.LinuxContainerSecurityContext{Privileged: true}
	if _, _, err := ContainerSpec(DefaultNode(), sb, "c2", cfg, img); err == nil || !strings.Contains(err.Error(), "no privileged container allowed in sandbox") {
		t.Errorf("privileged container in an unprivileged sandbox: %v", err)
	}
	sb.Config.Linux.SecurityContext.Privileged = true
	s, _, err = ContainerSpec(DefaultNode(), sb, "c2", cfg, img)
	if err != nil {
		t.Fatal(err)
	}
	if s.Linux.Seccomp != nil || len(s.Linux.MaskedPaths) != 0 || len(s.Process.Capabilities.Bounding) < 38 || len(s.Linux.Resources.Devices) == 0 || !s.Linux.Resources.Devices[0].Allow {
		t.Errorf("privileged: seccomp %v masked %v caps %d devices %+v", s.Linux.Seccomp != nil, s.Linux.MaskedPaths, len(s.Process.Capabilities.Bounding), s.Linux.Resources.Devices)
	}

	// An image not in the store: a note, and the container's own command.
	_, notes, err = ContainerSpec(DefaultNode(), sb, "c3", &runtime.ContainerConfig{Metadata: &runtime.ContainerMetadata{Name: "x"}}, Image{Name: "example.com/x:1"})
	if err != nil || len(notes) != 1 || !strings.Contains(notes[0], "not in containerd's store") {
		t.Errorf("unknown image: %v %v", err, notes)
	}
	// A named user cannot be resolved here: a note.
	cfg.Linux.SecurityContext = &runtime.LinuxContainerSecurityContext{RunAsUsername: "nginx"}
	if _, notes, _ = ContainerSpec(DefaultNode(), sb, "c4", cfg, img); len(notes) != 1 || !strings.Contains(notes[0], `"nginx" is a name`) {
		t.Errorf("named user: %v", notes)
	}
}
