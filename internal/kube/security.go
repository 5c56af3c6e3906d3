package kube

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// userNamespaceLength is the size of the ID range the kubelet gives a pod
// with hostUsers false; userNamespaceFirstHostID the first range it hands
// out by default (the one after the host's own 0-65535).
const (
	userNamespaceLength      = 65536
	userNamespaceFirstHostID = 65536
)

// namespaceOptions is the kubelet's NamespacesForPod: network and IPC are
// NODE with hostNetwork/hostIPC and POD otherwise; PID is NODE with hostPID,
// POD with shareProcessNamespace and CONTAINER otherwise; the user namespace
// is NODE unless hostUsers is false (see userNamespace). Each call returns
// a new value, so that the sandbox and each container own theirs.
func namespaceOptions(spec *corev1.PodSpec) *runtimeapi.NamespaceOption {
	ns := &runtimeapi.NamespaceOption{
		Network:       runtimeapi.NamespaceMode_POD,
		Pid:           runtimeapi.NamespaceMode_CONTAINER,
		Ipc:           runtimeapi.NamespaceMode_POD,
		UsernsOptions: userNamespace(spec),
	}
	if spec.HostNetwork {
		ns.Network = runtimeapi.NamespaceMode_NODE
	}
	if spec.HostIPC {
		ns.Ipc = runtimeapi.NamespaceMode_NODE
	}
	switch {
	case spec.HostPID:
		ns.Pid = runtimeapi.NamespaceMode_NODE
	case spec.ShareProcessNamespace != nil && *spec.ShareProcessNamespace:
		ns.Pid = runtimeapi.NamespaceMode_POD
	}
	return ns
}

// userNamespace is the kubelet's GetOrCreateUserNamespaceMappings: NODE
// when hostUsers is unset or true; with hostUsers false, a POD user
// namespace mapping container IDs 0-65535. The kubelet allocates the host
// range from its own pool and keeps it for the pod's life; this package
// shows the first range it would hand out (host IDs 65536-131071).
func userNamespace(spec *corev1.PodSpec) *runtimeapi.UserNamespace {
	if spec.HostUsers == nil || *spec.HostUsers {
		return &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE}
	}
	return &runtimeapi.UserNamespace{
		Mode: runtimeapi.NamespaceMode_POD,
		Uids: idMappings(),
		Gids: idMappings(),
	}
}

func idMappings() []*runtimeapi.IDMapping {
	return []*runtimeapi.IDMapping{{HostId: userNamespaceFirstHostID, ContainerId: 0, Length: userNamespaceLength}}
}

// effectiveSecurityContext is securitycontext.DetermineEffectiveSecurityContext:
// the pod's SELinux options, user, group and runAsNonRoot, overridden field
// by field by the container's securityContext, which alone carries
// capabilities, privileged, readOnlyRootFilesystem, allowPrivilegeEscalation
// and procMount. Seccomp and AppArmor profiles are resolved apart (see
// seccompProfile and appArmorProfile).
func effectiveSecurityContext(psc *corev1.PodSecurityContext, csc *corev1.SecurityContext) corev1.SecurityContext {
	eff := corev1.SecurityContext{
		SELinuxOptions: psc.SELinuxOptions,
		RunAsUser:      psc.RunAsUser,
		RunAsGroup:     psc.RunAsGroup,
		RunAsNonRoot:   psc.RunAsNonRoot,
	}
	if csc == nil {
		return eff
	}
	if csc.SELinuxOptions != nil {
		eff.SELinuxOptions = csc.SELinuxOptions
	}
	if csc.RunAsUser != nil {
		eff.RunAsUser = csc.RunAsUser
	}
	if csc.RunAsGroup != nil {
		eff.RunAsGroup = csc.RunAsGroup
	}
	if csc.RunAsNonRoot != nil {
		eff.RunAsNonRoot = csc.RunAsNonRoot
	}
	eff.Capabilities = csc.Capabilities
	eff.Privileged = csc.Privileged
	eff.ReadOnlyRootFilesystem = csc.ReadOnlyRootFilesystem
	eff.AllowPrivilegeEscalation = csc.AllowPrivilegeEscalation
	eff.ProcMount = csc.ProcMount
	return eff
}

// containerSecurityContext is the kubelet's determineEffectiveSecurityContext
// with convertToRuntimeSecurityContext.
//
// runAsNonRoot is not in it: the CRI has no such field. The kubelet checks
// it itself before CreateContainer (verifyRunAsNonRoot): it refuses to
// create the container when the effective runAsUser is 0, or when
// runAsUser is unset and the image's user is 0 or not numeric. When
// runAsUser is unset the kubelet also sends the image's user as
// run_as_user or run_as_username; this package has no image, so it leaves
// both empty (containerd then uses the image's user, the same result).
//
// no_new_privs is allowPrivilegeEscalation == false, nothing else: the
// API server refuses it with privileged or with the capability spelled
// "CAP_SYS_ADMIN" (see validate), so those never reach the kubelet with it.
//
// masked_paths and readonly_paths are the defaults, or empty for procMount
// Unmasked. The kubelet sends them for privileged containers too;
// containerd drops them there.
func (p *podContext) containerSecurityContext(c *corev1.Container) (*runtimeapi.LinuxContainerSecurityContext, error) {
	psc := p.spec.SecurityContext
	eff := effectiveSecurityContext(psc, c.SecurityContext)
	sc := &runtimeapi.LinuxContainerSecurityContext{
		Capabilities:       capabilities(eff.Capabilities),
		Privileged:         eff.Privileged != nil && *eff.Privileged,
		NamespaceOptions:   namespaceOptions(p.spec),
		SelinuxOptions:     seLinuxOptions(eff.SELinuxOptions),
		RunAsUser:          int64Value(eff.RunAsUser),
		RunAsGroup:         int64Value(eff.RunAsGroup),
		ReadonlyRootfs:     eff.ReadOnlyRootFilesystem != nil && *eff.ReadOnlyRootFilesystem,
		SupplementalGroups: supplementalGroups(psc),
		NoNewPrivs:         eff.AllowPrivilegeEscalation != nil && !*eff.AllowPrivilegeEscalation,
		MaskedPaths:        maskedPaths(eff.ProcMount),
		ReadonlyPaths:      readonlyPaths(eff.ProcMount),
	}
	var err error
	if sc.SupplementalGroupsPolicy, err = supplementalGroupsPolicy(psc); err != nil {
		return nil, err
	}
	if sc.Seccomp, err = seccompProfile(psc, c.SecurityContext, filepath.Join(p.opts.KubeletRoot, "seccomp")); err != nil {
		return nil, err
	}
	// The kubelet still fills the deprecated field for older runtimes.
	//lint:ignore SA1019 the kubelet sends both
	if sc.Apparmor, sc.ApparmorProfile, err = appArmorProfile(p.meta.Annotations, psc, c); err != nil {
		return nil, err
	}
	return sc, nil
}

// capabilities are passed as written ("NET_BIND_SERVICE", "ALL"): the
// kubelet neither upper-cases nor prefixes them; containerd adds "CAP_".
func capabilities(caps *corev1.Capabilities) *runtimeapi.Capability {
	if caps == nil {
		return nil
	}
	out := &runtimeapi.Capability{
		AddCapabilities:  make([]string, len(caps.Add)),
		DropCapabilities: make([]string, len(caps.Drop)),
	}
	for i, c := range caps.Add {
		out.AddCapabilities[i] = string(c)
	}
	for i, c := range caps.Drop {
		out.DropCapabilities[i] = string(c)
	}
	return out
}

func seLinuxOptions(o *corev1.SELinuxOptions) *runtimeapi.SELinuxOption {
	if o == nil {
		return nil
	}
	return &runtimeapi.SELinuxOption{User: o.User, Role: o.Role, Type: o.Type, Level: o.Level}
}

func int64Value(v *int64) *runtimeapi.Int64Value {
	if v == nil {
		return nil
	}
	return &runtimeapi.Int64Value{Value: *v}
}

// supplementalGroups are the pod's fsGroup, then its supplementalGroups.
// The kubelet also adds the GIDs that volumes ask for through the
// pv.beta.kubernetes.io/gid annotation of their PersistentVolume, which a
// manifest does not show.
func supplementalGroups(psc *corev1.PodSecurityContext) []int64 {
	var groups []int64
	if psc.FSGroup != nil {
		groups = append(groups, *psc.FSGroup)
	}
	return append(groups, psc.SupplementalGroups...)
}

// supplementalGroupsPolicy maps the pod's supplementalGroupsPolicy (Merge
// when unset) onto the CRI's.
func supplementalGroupsPolicy(psc *corev1.PodSecurityContext) (runtimeapi.SupplementalGroupsPolicy, error) {
	if psc.SupplementalGroupsPolicy == nil {
		return runtimeapi.SupplementalGroupsPolicy_Merge, nil
	}
	v, ok := runtimeapi.SupplementalGroupsPolicy_value[string(*psc.SupplementalGroupsPolicy)]
	if !ok {
		return 0, fmt.Errorf("unsupported supplementalGroupsPolicy: %s", *psc.SupplementalGroupsPolicy)
	}
	return runtimeapi.SupplementalGroupsPolicy(v), nil
}

// seccompProfile is the kubelet's getSeccompProfile: the container's
// seccompProfile, else the pod's; RuntimeDefault as is; Localhost as
// <root>/seccomp/<localhostProfile>; anything else Unconfined. A container
// with no profile at all is Unconfined: the kubelet sends RuntimeDefault
// there only when its seccompDefault setting is on, and it is off by
// default in v1.37. The old seccomp annotations are no longer read.
func seccompProfile(psc *corev1.PodSecurityContext, csc *corev1.SecurityContext, root string) (*runtimeapi.SecurityProfile, error) {
	var profile *corev1.SeccompProfile
	switch {
	case csc != nil && csc.SeccompProfile != nil:
		profile = csc.SeccompProfile
	case psc.SeccompProfile != nil:
		profile = psc.SeccompProfile
	default:
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}, nil
	}
	switch profile.Type {
	case corev1.SeccompProfileTypeRuntimeDefault:
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}, nil
	case corev1.SeccompProfileTypeLocalhost:
		if profile.LocalhostProfile == nil || *profile.LocalhostProfile == "" {
			return nil, errors.New("localhostProfile must be set if seccompProfile type is Localhost")
		}
		return &runtimeapi.SecurityProfile{
			ProfileType:  runtimeapi.SecurityProfile_Localhost,
			LocalhostRef: filepath.Join(root, *profile.LocalhostProfile),
		}, nil
	default:
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}, nil
	}
}

// appArmorProfile is the kubelet's getAppArmorProfile over apparmor.GetProfile:
// the container's appArmorProfile, else the deprecated pod annotation
// container.apparmor.security.beta.kubernetes.io/<container> (runtime/default,
// unconfined or localhost/<name>; any other value is ignored), else the pod's
// appArmorProfile; none at all is nil (the runtime's default). It returns
// the profile and the deprecated string form the kubelet also sends.
func appArmorProfile(annotations map[string]string, psc *corev1.PodSecurityContext, c *corev1.Container) (*runtimeapi.SecurityProfile, string, error) {
	var profile *corev1.AppArmorProfile
	if c.SecurityContext != nil && c.SecurityContext.AppArmorProfile != nil {
		profile = c.SecurityContext.AppArmorProfile
	} else if profile = appArmorAnnotation(annotations[corev1.DeprecatedAppArmorBetaContainerAnnotationKeyPrefix+c.Name]); profile == nil {
		profile = psc.AppArmorProfile
	}
	if profile == nil {
		return nil, "", nil
	}
	switch profile.Type {
	case corev1.AppArmorProfileTypeRuntimeDefault:
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}, corev1.DeprecatedAppArmorBetaProfileRuntimeDefault, nil
	case corev1.AppArmorProfileTypeUnconfined:
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}, corev1.DeprecatedAppArmorBetaProfileNameUnconfined, nil
	case corev1.AppArmorProfileTypeLocalhost:
		if profile.LocalhostProfile == nil {
			return nil, "", errors.New("missing localhost apparmor profile name")
		}
		return &runtimeapi.SecurityProfile{
			ProfileType:  runtimeapi.SecurityProfile_Localhost,
			LocalhostRef: *profile.LocalhostProfile,
		}, corev1.DeprecatedAppArmorBetaProfileNamePrefix + *profile.LocalhostProfile, nil
	default:
		return nil, "", fmt.Errorf("unknown apparmor profile type: %q", profile.Type)
	}
}

// appArmorAnnotation reads the value of the deprecated AppArmor annotation.
func appArmorAnnotation(value string) *corev1.AppArmorProfile {
	switch {
	case value == corev1.DeprecatedAppArmorBetaProfileRuntimeDefault:
		return &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeRuntimeDefault}
	case value == corev1.DeprecatedAppArmorBetaProfileNameUnconfined:
		return &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeUnconfined}
	case strings.HasPrefix(value, corev1.DeprecatedAppArmorBetaProfileNamePrefix):
		name := strings.TrimPrefix(value, corev1.DeprecatedAppArmorBetaProfileNamePrefix)
		return &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeLocalhost, LocalhostProfile: &name}
	default:
		return nil
	}
}

// staticMaskedPaths and defaultReadonlyPaths are the kubelet's defaults
// (pkg/securitycontext, kept in step with moby's), including /proc/interrupts
// and /sys/devices/virtual/powercap, masked since the thermal and RAPL side
// channel fixes; the kubelet adds /sys/devices/system/cpu/cpu<N>/thermal_throttle
// for each of the node's possible CPUs where it exists (see
// defaultMaskedPaths). Their order carries no meaning.
var (
	staticMaskedPaths = []string{
		"/proc/asound",
		"/proc/acpi",
		"/proc/interrupts",
		"/proc/kcore",
		"/proc/keys",
		"/proc/latency_stats",
		"/proc/timer_list",
		"/proc/timer_stats",
		"/proc/sched_debug",
		"/proc/scsi",
		"/sys/firmware",
		"/sys/devices/virtual/powercap",
	}
	defaultReadonlyPaths = []string{
		"/proc/bus",
		"/proc/fs",
		"/proc/irq",
		"/proc/sys",
		"/proc/sysrq-trigger",
	}
)

// defaultMaskedPaths are staticMaskedPaths plus the thermal_throttle
// directory of each possible CPU of this machine, standing in for the node,
// that has one (the kubelet computes them once, on its node).
var defaultMaskedPaths = sync.OnceValue(func() []string {
	paths := slices.Clone(staticMaskedPaths)
	for _, cpu := range possibleCPUs() {
		p := "/sys/devices/system/cpu/cpu" + strconv.Itoa(cpu) + "/thermal_throttle"
		if _, err := os.Stat(p); err == nil {
			paths = append(paths, p)
		}
	}
	return paths
})

// possibleCPUs are the CPU numbers of /sys/devices/system/cpu/possible
// ("0-3,8"), or 0..NumCPU-1 when it cannot be read.
func possibleCPUs() []int {
	fallback := func() []int {
		cpus := make([]int, runtime.NumCPU())
		for i := range cpus {
			cpus[i] = i
		}
		return cpus
	}
	data, err := os.ReadFile("/sys/devices/system/cpu/possible")
	if err != nil {
		return fallback()
	}
	var cpus []int
	for r := range strings.SplitSeq(strings.TrimSpace(string(data)), ",") {
		lo, hi, isRange := strings.Cut(r, "-")
		if !isRange {
			hi = lo
		}
		first, err1 := strconv.Atoi(lo)
		last, err2 := strconv.Atoi(hi)
		if err1 != nil || err2 != nil {
			return fallback()
		}
		for cpu := first; cpu <= last; cpu++ {
			cpus = append(cpus, cpu)
		}
	}
	return cpus
}

// maskedPaths is ConvertToRuntimeMaskedPaths: the defaults, or none for
// procMount Unmasked.
func maskedPaths(pm *corev1.ProcMountType) []string {
	if pm != nil && *pm == corev1.UnmaskedProcMount {
		return []string{}
	}
	return slices.Clone(defaultMaskedPaths())
}

// readonlyPaths is ConvertToRuntimeReadonlyPaths: the defaults, or none for
// procMount Unmasked.
func readonlyPaths(pm *corev1.ProcMountType) []string {
	if pm != nil && *pm == corev1.UnmaskedProcMount {
		return []string{}
	}
	return slices.Clone(defaultReadonlyPaths)
}
