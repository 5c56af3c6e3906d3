// Package crispec builds the OCI spec containerd's CRI plugin (2.4)
// writes for a pod sandbox and for a container, from the CRI requests the
// kubelet sends: what `hardenctl explain -f pod.yaml` decides, as the shim
// would decide the spec containerd hands it.
//
// It follows containerd's internal/cri/server (buildLinuxSpec,
// linuxContainerMounts, containerSpecOpts) and
// internal/cri/server/podsandbox (sandboxContainerSpec), which are internal
// to containerd's module, and uses containerd's public pkg/oci and
// contrib/seccomp for what they share. Where containerd needs the running
// node (the sandbox's pid, the container's rootfs, the host's mount
// table), the Node and Image facts stand in, and Notes says what was
// assumed.
package crispec

import (
	"context"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/containerd/containerd/v2/contrib/seccomp"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/hardened-dev/hardened/internal/decide"
)

// Node is what containerd's CRI plugin knows of the node and of the
// runtime handler.
type Node struct {
	// RootDir and StateDir are the CRI plugin's directories
	// (/var/lib/containerd/io.containerd.grpc.v1.cri and
	// /run/containerd/io.containerd.grpc.v1.cri): a sandbox's hostname,
	// hosts and resolv.conf live under RootDir/sandboxes/<id>, its /dev/shm
	// under StateDir/sandboxes/<id>/shm.
	RootDir, StateDir string
	// PodAnnotations and ContainerAnnotations are the runtime handler's
	// pod_annotations and container_annotations: the annotations passed
	// into the spec ("hardened.dev/*" in the shim's drop-in).
	PodAnnotations, ContainerAnnotations []string
	// AppArmor: containerd found AppArmor enabled (it then gives
	// RuntimeDefault containers cri-containerd.apparmor.d).
	AppArmor bool
	// CgroupV2: a non-privileged container gets a cgroup namespace.
	CgroupV2 bool
}

// DefaultNode is containerd's default layout with the shim's drop-in.
func DefaultNode() Node {
	return Node{
		RootDir: "/var/lib/containerd/io.containerd.grpc.v1.cri", StateDir: "/run/containerd/io.containerd.grpc.v1.cri",
		PodAnnotations: []string{"hardened.dev/*"}, ContainerAnnotations: []string{"hardened.dev/*"},
	}
}

// Image is a container image's config as containerd's image store holds
// it. Known is false when the image is not in the store: its entrypoint,
// user, environment and working directory are then unknown.
type Image struct {
	Name   string
	Config ocispec.ImageConfig
	Known  bool
}

// PauseImage is containerd 2.4's default sandbox image's config.
func PauseImage() Image {
	return Image{Name: "registry.k8s.io/pause:3.10.1", Known: true, Config: ocispec.ImageConfig{
		Entrypoint: []string{"/pause"}, User: "65535:65535",
		Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
	}}
}

// Sandbox is a pod sandbox as containerd created it: its id, the pid of
// its pause process (whose namespaces app containers join), and its
// network namespace path.
type Sandbox struct {
	ID       string
	Pid      uint32
	NetNS    string
	Config   *runtime.PodSandboxConfig
	Hostname string // the node's, for a pod without a hostname
}

const (
	etcHostname = "/etc/hostname"
	etcHosts    = "/etc/hosts"
	resolvConf  = "/etc/resolv.conf"
	devShm      = "/dev/shm"

	// The annotations containerd's CRI puts on every spec
	// (internal/cri/annotations).
	annSandboxID        = decide.AnnSandboxID
	annContainerType    = decide.AnnContainerType
	annSandboxNamespace = "io.kubernetes.cri.sandbox-namespace"
	annSandboxUID       = "io.kubernetes.cri.sandbox-uid"
	annSandboxName      = "io.kubernetes.cri.sandbox-name"
	annSandboxLogDir    = "io.kubernetes.cri.sandbox-log-directory"
	annSandboxImage     = "io.kubernetes.cri.podsandbox.image-name"
	annContainerName    = "io.kubernetes.cri.container-name"
	annImageName        = "io.kubernetes.cri.image-name"
)

func (n Node) sandboxRoot(id string) string  { return filepath.Join(n.RootDir, "sandboxes", id) }
func (n Node) sandboxState(id string) string { return filepath.Join(n.StateDir, "sandboxes", id) }

// generate is containerd's runtimeSpec: its default spec for the
// container with opts applied (no base spec file).
func generate(id string, opts ...oci.SpecOpts) (*specs.Spec, error) {
	ctx := namespaces.WithNamespace(context.Background(), "k8s.io")
	return oci.GenerateSpecWithPlatform(ctx, nil, "linux/amd64", &containers.Container{ID: id}, opts...)
}

// SandboxSpec is the pause container's spec (podsandbox's
// sandboxContainerSpec and the options CRI adds to it).
func SandboxSpec(n Node, sb Sandbox, pause Image) (*specs.Spec, error) {
	cfg := sb.Config
	sc := cfg.GetLinux().GetSecurityContext()
	ns := sc.GetNamespaceOptions()
	if len(pause.Config.Entrypoint) == 0 && len(pause.Config.Cmd) == 0 {
		return nil, fmt.Errorf("invalid empty entrypoint and cmd in image config of %s", pause.Name)
	}
	opts := []oci.SpecOpts{
		oci.WithoutRunMount, withoutDefaultSecuritySettings, withRelativeRoot,
		oci.WithEnv(pause.Config.Env), oci.WithRootFSReadonly(), oci.WithHostname(cfg.GetHostname()),
	}
	if pause.Config.WorkingDir != "" {
		opts = append(opts, oci.WithProcessCwd(pause.Config.WorkingDir))
	}
	opts = append(opts, oci.WithProcessArgs(append(slices.Clone(pause.Config.Entrypoint), pause.Config.Cmd...)...))
	if p := cfg.GetLinux().GetCgroupParent(); p != "" {
		opts = append(opts, oci.WithCgroup(cgroupsPath(p, sb.ID)))
	}
	if ns.GetNetwork() == runtime.NamespaceMode_NODE {
		opts = append(opts, withoutNamespace(specs.NetworkNamespace), withoutNamespace(specs.UTSNamespace))
	} else {
		opts = append(opts, oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: sb.NetNS}))
	}
	if ns.GetPid() == runtime.NamespaceMode_NODE {
		opts = append(opts, withoutNamespace(specs.PIDNamespace))
	}
	if ns.GetIpc() == runtime.NamespaceMode_NODE {
		opts = append(opts, withoutNamespace(specs.IPCNamespace))
	}
	if u := ns.GetUsernsOptions(); u != nil && u.GetMode() == runtime.NamespaceMode_POD {
		return nil, errors.New("user namespaces (hostUsers: false) are not modelled by explain -f: run the pod on a node and read its report")
	}
	shm := filepath.Join(n.sandboxState(sb.ID), "shm")
	if ns.GetIpc() == runtime.NamespaceMode_NODE {
		shm = devShm
	}
	ro := []string{"rbind", "ro", "nosuid", "nodev", "noexec"}
	opts = append(opts, oci.WithoutMounts(devShm), oci.WithMounts([]specs.Mount{
		{Source: shm, Destination: devShm, Type: "bind", Options: ro},
		{Source: filepath.Join(n.sandboxRoot(sb.ID), "resolv.conf"), Destination: resolvConf, Type: "bind", Options: slices.Clone(ro)},
	}))
	opts = append(opts, withSupplementalGroups(sc.GetSupplementalGroups()))
	// The kubelet's sysctls go to the sandbox only; containerd's
	// enable_unprivileged_ports/icmp are on by default.
	sysctls := map[string]string{}
	for k, v := range cfg.GetLinux().GetSysctls() {
		sysctls[k] = v
	}
	if ns.GetNetwork() != runtime.NamespaceMode_NODE {
		if _, ok := sysctls["net.ipv4.ip_unprivileged_port_start"]; !ok {
			sysctls["net.ipv4.ip_unprivileged_port_start"] = "0"
		}
		if _, ok := sysctls["net.ipv4.ping_group_range"]; !ok {
			sysctls["net.ipv4.ping_group_range"] = "0 2147483647"
		}
	}
	opts = append(opts, withSysctls(sysctls), withSandboxShares)
	if res := cfg.GetLinux().GetResources(); res != nil {
		opts = append(opts,
			withAnnotation("io.kubernetes.cri.sandbox-cpu-period", strconv.FormatInt(res.CpuPeriod, 10)),
			withAnnotation("io.kubernetes.cri.sandbox-cpu-quota", strconv.FormatInt(res.CpuQuota, 10)),
			withAnnotation("io.kubernetes.cri.sandbox-cpu-shares", strconv.FormatInt(res.CpuShares, 10)),
			withAnnotation("io.kubernetes.cri.sandbox-memory", strconv.FormatInt(res.MemoryLimitInBytes, 10)))
	}
	// The pause process: uid from the pod's runAsUser, else the image's.
	user := userString(sc.GetRunAsUser(), sc.GetRunAsGroup())
	if user == "" {
		user = pause.Config.User
	}
	userOpt, err := withNumericUser(user)
	if err != nil {
		return nil, err
	}
	if userOpt != nil {
		opts = append(opts, userOpt)
	}
	// A privileged pod's sandbox is not privileged itself; it just has no
	// seccomp filter.
	if !sc.GetPrivileged() {
		o, err := seccompOpt(sc.GetSeccomp())
		if err != nil {
			return nil, err
		}
		if o != nil {
			opts = append(opts, o)
		}
	}
	// The oom score adjustment of the pause process is -998.
	adj := -998
	opts = append(opts, func(_ context.Context, _ oci.Client, _ *containers.Container, s *specs.Spec) error {
		s.Process.OOMScoreAdj = &adj
		return nil
	})
	opts = append(opts, passthrough(cfg.GetAnnotations(), n.PodAnnotations)...)
	opts = append(opts,
		withAnnotation(annSandboxID, sb.ID), withAnnotation(annSandboxNamespace, cfg.GetMetadata().GetNamespace()),
		withAnnotation(annSandboxUID, cfg.GetMetadata().GetUid()), withAnnotation(annSandboxName, cfg.GetMetadata().GetName()),
		withAnnotation(annSandboxLogDir, cfg.GetLogDirectory()), withAnnotation(annSandboxImage, pause.Name),
		withAnnotation(annContainerType, decide.ContainerTypeSandbox))
	s, err := generate(sb.ID, opts...)
	if err != nil {
		return nil, err
	}
	// A privileged pod's sandbox gets a writable sysfs (podsandbox's
	// CreateSandbox, after the spec).
	if sc.GetPrivileged() {
		for i := range s.Mounts {
			if filepath.Clean(s.Mounts[i].Destination) == "/sys" {
				if j := slices.Index(s.Mounts[i].Options, "ro"); j >= 0 {
					s.Mounts[i].Options[j] = "rw"
				}
				break
			}
		}
	}
	return s, nil
}

// ContainerSpec is an app container's spec (buildLinuxSpec with the
// mounts of linuxContainerMounts and the options of containerSpecOpts).
// notes says what the image store or the node could not tell.
func ContainerSpec(n Node, sb Sandbox, id string, cfg *runtime.ContainerConfig, img Image) (_ *specs.Spec, notes []string, _ error) {
	sc := cfg.GetLinux().GetSecurityContext()
	sbCfg := sb.Config
	if !img.Known {
		notes = append(notes, fmt.Sprintf("image %s is not in containerd's store here: its entrypoint, user, environment and working directory are not applied", img.Name))
	}
	opts := []oci.SpecOpts{oci.WithoutRunMount, withoutDefaultSecuritySettings, withRelativeRoot}
	args, err := processArgs(cfg, img)
	if err != nil {
		return nil, notes, err
	}
	opts = append(opts, oci.WithProcessArgs(args...), oci.WithDefaultPathEnv, oci.WithNewPrivileges)
	if cfg.GetWorkingDir() != "" {
		opts = append(opts, oci.WithProcessCwd(cfg.GetWorkingDir()))
	} else if img.Config.WorkingDir != "" {
		opts = append(opts, oci.WithProcessCwd(img.Config.WorkingDir))
	}
	if cfg.GetTty() {
		opts = append(opts, oci.WithTTY)
	}
	hostname := sbCfg.GetHostname()
	if hostname == "" {
		hostname = sb.Hostname
	}
	env := append([]string{"HOSTNAME=" + hostname}, img.Config.Env...)
	for _, e := range cfg.GetEnvs() {
		env = append(env, e.GetKey()+"="+string(e.GetValue()))
	}
	opts = append(opts, oci.WithEnv(env))
	if n.CgroupV2 && !sc.GetPrivileged() {
		opts = append(opts, oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.CgroupNamespace}))
	}
	opts = append(opts, withMounts(cfg, sandboxMounts(n, sb.ID, sc, cfg.GetMounts())))
	opts = append(opts, oci.WithMaskedPaths([]string{}), oci.WithReadonlyPaths([]string{}))
	if p := sc.GetMaskedPaths(); p != nil {
		opts = append(opts, oci.WithMaskedPaths(p))
	}
	if p := sc.GetReadonlyPaths(); p != nil {
		opts = append(opts, oci.WithReadonlyPaths(p))
	}
	if len(cfg.GetDevices()) > 0 {
		notes = append(notes, "devices of the CRI config are not modelled (the kubelet sends them for device plugins)")
	}
	if len(cfg.GetCDIDevices()) > 0 {
		notes = append(notes, "CDI devices are not modelled: their edits come from the node's CDI specs")
	}
	opts = append(opts, withCapabilities(sc))
	if sc.GetPrivileged() {
		if !sbCfg.GetLinux().GetSecurityContext().GetPrivileged() {
			return nil, notes, errors.New("no privileged container allowed in sandbox")
		}
		opts = append(opts, oci.WithPrivileged, oci.WithHostDevices, oci.WithAllDevicesAllowed)
	}
	opts = append(opts, withoutAmbientCaps)
	if sc.GetNoNewPrivs() {
		opts = append(opts, oci.WithNoNewPrivileges)
	}
	if sc.GetReadonlyRootfs() {
		opts = append(opts, oci.WithRootFSReadonly())
	}
	opts = append(opts, withResources(cfg.GetLinux().GetResources()))
	if p := sbCfg.GetLinux().GetCgroupParent(); p != "" {
		opts = append(opts, oci.WithCgroup(cgroupsPath(p, id)))
	}
	opts = append(opts, passthrough(sbCfg.GetAnnotations(), n.PodAnnotations)...)
	opts = append(opts, passthrough(cfg.GetAnnotations(), n.ContainerAnnotations)...)
	if sc.GetNamespaceOptions().GetPid() == runtime.NamespaceMode_TARGET {
		return nil, notes, errors.New("a pid namespace targeting another container (ephemeral containers) is not modelled by explain -f")
	}
	if u := sc.GetNamespaceOptions().GetUsernsOptions(); u != nil && u.GetMode() == runtime.NamespaceMode_POD {
		return nil, notes, errors.New("user namespaces (hostUsers: false) are not modelled by explain -f: run the pod on a node and read its report")
	}
	if r := cfg.GetLinux().GetResources(); r != nil {
		adj := int(r.GetOomScoreAdj())
		opts = append(opts, func(_ context.Context, _ oci.Client, _ *containers.Container, s *specs.Spec) error {
			s.Process.OOMScoreAdj = &adj
			return nil
		})
	}
	opts = append(opts, withPodNamespaces(sc, sb.Pid))
	// containerSpecOpts: the user (numeric here: a name needs the rootfs),
	// supplemental groups, AppArmor, seccomp.
	user := userString(sc.GetRunAsUser(), sc.GetRunAsGroup())
	if name := sc.GetRunAsUsername(); name != "" {
		user = name
	}
	if user == "" {
		user = img.Config.User
	}
	userOpt, err := withNumericUser(user)
	if err != nil {
		notes = append(notes, err.Error()+": the process is shown as uid 0")
	} else if userOpt != nil {
		opts = append(opts, userOpt)
	}
	opts = append(opts, withSupplementalGroups(sc.GetSupplementalGroups()))
	if o, err := apparmorOpt(sc, n.AppArmor); err != nil {
		return nil, notes, err
	} else if o != nil {
		opts = append(opts, o)
	}
	if !sc.GetPrivileged() {
		o, err := seccompOpt(sc.GetSeccomp())
		if err != nil {
			return nil, notes, err
		}
		if o != nil {
			opts = append(opts, o)
		}
	}
	opts = append(opts,
		withAnnotation(annSandboxID, sb.ID), withAnnotation(annSandboxNamespace, sbCfg.GetMetadata().GetNamespace()),
		withAnnotation(annSandboxUID, sbCfg.GetMetadata().GetUid()), withAnnotation(annSandboxName, sbCfg.GetMetadata().GetName()),
		withAnnotation(annContainerName, cfg.GetMetadata().GetName()), withAnnotation(annImageName, img.Name),
		withAnnotation(annContainerType, decide.ContainerTypeContainer))
	s, err := generate(id, opts...)
	return s, notes, err
}

// processArgs: the CRI command replaces the image's entrypoint, the CRI
// args its cmd (containerd's WithProcessArgs).
func processArgs(cfg *runtime.ContainerConfig, img Image) ([]string, error) {
	command, args := cfg.GetCommand(), cfg.GetArgs()
	if len(command) == 0 {
		if len(args) == 0 {
			args = slices.Clone(img.Config.Cmd)
		}
		if command == nil && (len(img.Config.Entrypoint) != 1 || img.Config.Entrypoint[0] != "") {
			command = slices.Clone(img.Config.Entrypoint)
		}
	}
	all := append(command, args...)
	if len(all) == 0 {
		if !img.Known {
			return []string{"(the image's entrypoint)"}, nil
		}
		return nil, errors.New("no command specified")
	}
	return all, nil
}

// sandboxMounts are the sandbox's files each container gets unless the
// kubelet mounts its own at that path: hostname, hosts, resolv.conf, and
// the pod's /dev/shm (the host's with hostIPC).
func sandboxMounts(n Node, sandboxID string, sc *runtime.LinuxContainerSecurityContext, criMounts []*runtime.Mount) []*runtime.Mount {
	var out []*runtime.Mount
	ro := sc.GetReadonlyRootfs()
	for _, m := range []struct{ dst, src string }{
		{etcHostname, filepath.Join(n.sandboxRoot(sandboxID), "hostname")},
		{etcHosts, filepath.Join(n.sandboxRoot(sandboxID), "hosts")},
		{resolvConf, filepath.Join(n.sandboxRoot(sandboxID), "resolv.conf")},
	} {
		if !inMounts(m.dst, criMounts) {
			out = append(out, &runtime.Mount{ContainerPath: m.dst, HostPath: m.src, Readonly: ro})
		}
	}
	if !inMounts(devShm, criMounts) {
		shm := filepath.Join(n.sandboxState(sandboxID), "shm")
		if sc.GetNamespaceOptions().GetIpc() == runtime.NamespaceMode_NODE {
			shm = devShm
		}
		out = append(out, &runtime.Mount{ContainerPath: devShm, HostPath: shm})
	}
	return out
}

func inMounts(dst string, ms []*runtime.Mount) bool {
	return slices.ContainsFunc(ms, func(m *runtime.Mount) bool { return filepath.Clean(m.GetContainerPath()) == dst })
}

// withMounts is containerd's WithMounts: the default mounts but those the
// CRI mounts replace (all of /dev's under a /dev mount), a read-only
// cgroup mount, then the CRI mounts and the sandbox's, fewest path
// elements first, as rbind mounts with their propagation and mode. The
// host's mount table (which containerd checks for shared and slave
// propagation) is not consulted.
func withMounts(cfg *runtime.ContainerConfig, extra []*runtime.Mount) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *specs.Spec) error {
		mounts := slices.Clone(cfg.GetMounts())
		for _, e := range extra {
			if !inMounts(filepath.Clean(e.GetContainerPath()), cfg.GetMounts()) {
				mounts = append(mounts, e)
			}
		}
		sort.SliceStable(mounts, func(i, j int) bool {
			return strings.Count(filepath.Clean(mounts[i].GetContainerPath()), "/") < strings.Count(filepath.Clean(mounts[j].GetContainerPath()), "/")
		})
		s.Mounts = append(s.Mounts, specs.Mount{Source: "cgroup", Destination: "/sys/fs/cgroup", Type: "cgroup",
			Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}})
		set := map[string]bool{}
		for _, m := range mounts {
			set[filepath.Clean(m.GetContainerPath())] = true
		}
		defaults := s.Mounts
		s.Mounts = nil
		for _, m := range defaults {
			dst := filepath.Clean(m.Destination)
			if set[dst] || set["/dev"] && strings.HasPrefix(dst, "/dev/") {
				continue
			}
			s.Mounts = append(s.Mounts, m)
		}
		for _, m := range mounts {
			options := []string{"rbind"}
			switch m.GetPropagation() {
			case runtime.MountPropagation_PROPAGATION_BIDIRECTIONAL:
				options = append(options, "rshared")
				s.Linux.RootfsPropagation = "rshared"
			case runtime.MountPropagation_PROPAGATION_HOST_TO_CONTAINER:
				options = append(options, "rslave")
				if s.Linux.RootfsPropagation != "rshared" && s.Linux.RootfsPropagation != "rslave" {
					s.Linux.RootfsPropagation = "rslave"
				}
			default:
				options = append(options, "rprivate")
			}
			switch {
			case m.GetReadonly() && m.GetRecursiveReadOnly():
				if m.GetPropagation() != runtime.MountPropagation_PROPAGATION_PRIVATE {
					return fmt.Errorf("recursive read-only mount needs private propagation, got %q (hostPath=%q)", m.GetPropagation(), m.GetHostPath())
				}
				options = append(options, "rro")
			case m.GetReadonly():
				options = append(options, "ro")
			case m.GetRecursiveReadOnly():
				return fmt.Errorf("recursive read-only mount conflicts with RW mount (hostPath=%q)", m.GetHostPath())
			default:
				options = append(options, "rw")
			}
			s.Mounts = append(s.Mounts, specs.Mount{Source: m.GetHostPath(), Destination: m.GetContainerPath(), Type: "bind", Options: options})
		}
		return nil
	}
}

// withCapabilities is containerd's WithCapabilities: ALL in add gives
// every capability, ALL in drop none, then the named ones added and
// dropped ("CAP_" prefixed).
func withCapabilities(sc *runtime.LinuxContainerSecurityContext) oci.SpecOpts {
	c := sc.GetCapabilities()
	if c == nil {
		return func(context.Context, oci.Client, *containers.Container, *specs.Spec) error { return nil }
	}
	var opts []oci.SpecOpts
	if slices.Contains(c.GetAddCapabilities(), "ALL") {
		opts = append(opts, oci.WithAllCurrentCapabilities)
	}
	if slices.Contains(c.GetDropCapabilities(), "ALL") {
		opts = append(opts, oci.WithCapabilities(nil))
	}
	named := func(list []string) []string {
		out := []string{}
		for _, n := range list {
			if strings.ToUpper(n) != "ALL" {
				out = append(out, "CAP_"+strings.ToUpper(n))
			}
		}
		return out
	}
	opts = append(opts, oci.WithAddedCapabilities(named(c.GetAddCapabilities())), oci.WithDroppedCapabilities(named(c.GetDropCapabilities())))
	return oci.Compose(opts...)
}

// withPodNamespaces joins the sandbox's network, IPC and UTS namespaces,
// and its PID namespace unless the container has its own.
func withPodNamespaces(sc *runtime.LinuxContainerSecurityContext, pid uint32) oci.SpecOpts {
	ns := func(t specs.LinuxNamespaceType, name string) oci.SpecOpts {
		return oci.WithLinuxNamespace(specs.LinuxNamespace{Type: t, Path: fmt.Sprintf("/proc/%d/ns/%s", pid, name)})
	}
	opts := []oci.SpecOpts{ns(specs.NetworkNamespace, "net"), ns(specs.IPCNamespace, "ipc"), ns(specs.UTSNamespace, "uts")}
	if sc.GetNamespaceOptions().GetPid() != runtime.NamespaceMode_CONTAINER {
		opts = append(opts, ns(specs.PIDNamespace, "pid"))
	}
	return oci.Compose(opts...)
}

// seccompOpt is sputil's GenerateSeccompSpecOpts with seccomp enabled:
// RuntimeDefault is containerd's default profile, Localhost the file's
// profile (read here, as containerd reads it on the node), Unconfined or
// none nothing.
func seccompOpt(sp *runtime.SecurityProfile) (oci.SpecOpts, error) {
	if sp == nil {
		return nil, nil
	}
	if sp.GetProfileType() != runtime.SecurityProfile_Localhost && sp.GetLocalhostRef() != "" {
		return nil, errors.New("seccomp config invalid LocalhostRef must only be set if ProfileType is Localhost")
	}
	switch sp.GetProfileType() {
	case runtime.SecurityProfile_Unconfined:
		return nil, nil
	case runtime.SecurityProfile_RuntimeDefault:
		return seccomp.WithDefaultProfile(), nil
	case runtime.SecurityProfile_Localhost:
		return seccomp.WithProfile(strings.TrimPrefix(sp.GetLocalhostRef(), "localhost/")), nil
	}
	return nil, errors.New("seccomp unknown ProfileType")
}

// apparmorOpt is sputil's GenerateApparmorSpecOpts: without AppArmor only
// Unconfined (or nothing) is accepted; with it RuntimeDefault (or nothing)
// is cri-containerd.apparmor.d unless privileged, Localhost the named
// profile (containerd checks it is loaded; explain does not).
func apparmorOpt(sc *runtime.LinuxContainerSecurityContext, enabled bool) (oci.SpecOpts, error) {
	sp := sc.GetApparmor()
	if !enabled {
		if sp != nil && sp.GetProfileType() != runtime.SecurityProfile_Unconfined {
			return nil, errors.New("apparmor is not supported")
		}
		return nil, nil
	}
	if sp == nil {
		sp = &runtime.SecurityProfile{ProfileType: runtime.SecurityProfile_RuntimeDefault}
	}
	switch sp.GetProfileType() {
	case runtime.SecurityProfile_Unconfined:
		return nil, nil
	case runtime.SecurityProfile_RuntimeDefault:
		if sc.GetPrivileged() {
			return nil, nil
		}
		return oci.WithApparmorProfile("cri-containerd.apparmor.d"), nil
	case runtime.SecurityProfile_Localhost:
		return oci.WithApparmorProfile(strings.TrimPrefix(sp.GetLocalhostRef(), "localhost/")), nil
	}
	return nil, errors.New("apparmor unknown ProfileType")
}

// userString is the CRI user as containerd formats it: "uid" or
// "uid:gid".
func userString(uid, gid *runtime.Int64Value) string {
	if uid == nil {
		return ""
	}
	if gid != nil {
		return fmt.Sprintf("%d:%d", uid.GetValue(), gid.GetValue())
	}
	return strconv.FormatInt(uid.GetValue(), 10)
}

// withNumericUser sets a numeric "uid[:gid]". containerd resolves a name,
// and the gid of a lone uid, in the container's /etc/passwd, which explain
// cannot read: a lone uid gets gid 0 here, and a name is an error.
func withNumericUser(user string) (oci.SpecOpts, error) {
	if user == "" {
		return nil, nil
	}
	u, g, hasGroup := strings.Cut(user, ":")
	uid, err := strconv.ParseUint(u, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %q is a name, resolved from the image's /etc/passwd at start", user)
	}
	var gid uint64
	if hasGroup {
		if gid, err = strconv.ParseUint(g, 10, 32); err != nil {
			return nil, fmt.Errorf("group %q is a name, resolved from the image's /etc/group at start", g)
		}
	}
	return oci.WithUIDGID(uint32(uid), uint32(gid)), nil
}

// passthrough are the annotations whose keys match the runtime's list
// (a trailing * matches a prefix, as containerd's GetPassthroughAnnotations).
func passthrough(ann map[string]string, patterns []string) []oci.SpecOpts {
	var out []oci.SpecOpts
	for k, v := range ann {
		for _, p := range patterns {
			if ok, _ := path.Match(p, k); ok || strings.HasSuffix(p, "*") && strings.HasPrefix(k, strings.TrimSuffix(p, "*")) {
				out = append(out, withAnnotation(k, v))
				break
			}
		}
	}
	return out
}

// cgroupsPath is containerd's getCgroupsPath: systemd's
// "slice:cri-containerd:id" under a .slice parent, else parent/id.
func cgroupsPath(parent, id string) string {
	if base := path.Base(parent); strings.HasSuffix(base, ".slice") {
		return base + ":cri-containerd:" + id
	}
	return filepath.Join(parent, id)
}

func withAnnotation(k, v string) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *specs.Spec) error {
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		s.Annotations[k] = v
		return nil
	}
}

func withRelativeRoot(_ context.Context, _ oci.Client, _ *containers.Container, s *specs.Spec) error {
	if s.Root == nil {
		s.Root = &specs.Root{}
	}
	s.Root.Path = "rootfs"
	return nil
}

// withoutDefaultSecuritySettings clears what containerd's default spec
// sets that CRI decides itself: AppArmor, seccomp, rlimits.
func withoutDefaultSecuritySettings(_ context.Context, _ oci.Client, _ *containers.Container, s *specs.Spec) error {
	s.Process.ApparmorProfile = ""
	if s.Linux != nil {
		s.Linux.Seccomp = nil
	}
	s.Process.Rlimits = nil
	return nil
}

func withoutAmbientCaps(_ context.Context, _ oci.Client, _ *containers.Container, s *specs.Spec) error {
	if s.Process.Capabilities == nil {
		s.Process.Capabilities = &specs.LinuxCapabilities{}
	}
	s.Process.Capabilities.Ambient = nil
	return nil
}

func withoutNamespace(t specs.LinuxNamespaceType) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *specs.Spec) error {
		s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == t })
		return nil
	}
}

func withSupplementalGroups(groups []int64) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *specs.Spec) error {
		for _, g := range groups {
			if !slices.Contains(s.Process.User.AdditionalGids, uint32(g)) {
				s.Process.User.AdditionalGids = append(s.Process.User.AdditionalGids, uint32(g))
			}
		}
		slices.Sort(s.Process.User.AdditionalGids)
		return nil
	}
}

func withSysctls(sysctls map[string]string) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *specs.Spec) error {
		if len(sysctls) == 0 {
			return nil
		}
		if s.Linux.Sysctl == nil {
			s.Linux.Sysctl = map[string]string{}
		}
		for k, v := range sysctls {
			s.Linux.Sysctl[k] = v
		}
		return nil
	}
}

// withSandboxShares: the pause container's cpu shares are 2.
func withSandboxShares(_ context.Context, _ oci.Client, _ *containers.Container, s *specs.Spec) error {
	shares := uint64(2)
	res := resources(s)
	if res.CPU == nil {
		res.CPU = &specs.LinuxCPU{}
	}
	res.CPU.Shares = &shares
	return nil
}

func resources(s *specs.Spec) *specs.LinuxResources {
	if s.Linux.Resources == nil {
		s.Linux.Resources = &specs.LinuxResources{}
	}
	return s.Linux.Resources
}

// withResources is containerd's WithResources without the host probes
// (swap follows the memory limit as on a node with a swap controller;
// hugepage limits are kept).
func withResources(r *runtime.LinuxContainerResources) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *specs.Spec) error {
		if r == nil {
			return nil
		}
		res := resources(s)
		if res.CPU == nil {
			res.CPU = &specs.LinuxCPU{}
		}
		if res.Memory == nil {
			res.Memory = &specs.LinuxMemory{}
		}
		if p := uint64(r.GetCpuPeriod()); p != 0 {
			res.CPU.Period = &p
		}
		if q := r.GetCpuQuota(); q != 0 {
			res.CPU.Quota = &q
		}
		if sh := uint64(r.GetCpuShares()); sh != 0 {
			res.CPU.Shares = &sh
		}
		res.CPU.Cpus, res.CPU.Mems = r.GetCpusetCpus(), r.GetCpusetMems()
		if l := r.GetMemoryLimitInBytes(); l != 0 {
			res.Memory.Limit = &l
		}
		for _, h := range r.GetHugepageLimits() {
			res.HugepageLimits = append(res.HugepageLimits, specs.LinuxHugepageLimit{Pagesize: h.GetPageSize(), Limit: h.GetLimit()})
		}
		if u := r.GetUnified(); u != nil {
			if res.Unified == nil {
				res.Unified = map[string]string{}
			}
			for k, v := range u {
				res.Unified[k] = v
			}
		}
		return nil
	}
}
