package hardening

import (
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Annotations that some runtime or tool reads as configuration. A pod can
// set annotations (through containerd's pod_annotations and
// container_annotations allowlists, or an operator who allows "*"), so each
// of these is a way for a workload to reconfigure its own sandbox:
//   - dev.gvisor.flag.*: runsc applies them as command-line flags
//     (--debug, --net-raw, --platform ... and worse) when its config allows
//     annotation overrides; dev.gvisor.internal.* is runsc-private.
//     dev.gvisor.spec.* is kept: gVisor's own shim sets those for mounts.
//   - org.systemd.property.*: runc's systemd cgroup driver turns them into
//     unit properties (e.g. DeviceAllow=, or lifting resource limits).
//   - org.criu.config: runc hands that file to CRIU on checkpoint/restore.
//   - io.katacontainers.*: Kata reads hypervisor paths, kernel parameters
//     and guest hooks from them.
//   - io.containers.trace-syscall: the OCI seccomp BPF hook records
//     syscalls and writes a profile to a path it names.
//   - io.containerd.runc.v2.group: containerd's runc shim groups containers
//     sharing it into one shim (another pod's shim).
//   - run.oci.*: crun reads raw seccomp BPF, hooks and group handling from them.
//   - bundle: a legacy key some tools trust as the bundle path.
//
// io.kubernetes.cri.* (set by containerd's CRI, read by the shim and runsc
// to group a pod) and hardened.dev/* (this project's own) are never touched.
var (
	strippedPrefixes = []string{
		"dev.gvisor.flag.",
		"dev.gvisor.internal.",
		"org.systemd.property.",
		"io.katacontainers.",
		"run.oci.",
	}
	strippedKeys = []string{
		"org.criu.config",
		"io.containers.trace-syscall",
		"io.containerd.runc.v2.group",
		"bundle",
	}
	protectedPrefixes = []string{"io.kubernetes.cri.", "hardened.dev/"}
)

// strippedAnnotation reports whether the engine removes key.
func strippedAnnotation(key string) bool {
	for _, p := range protectedPrefixes {
		if strings.HasPrefix(key, p) {
			return false
		}
	}
	if indexOf(strippedKeys, key) >= 0 {
		return true
	}
	for _, p := range strippedPrefixes {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// stripAnnotations removes the annotations above and records each key (never
// its value, which may be anything).
func stripAnnotations(s *specs.Spec, r *Report) {
	var removed []string
	for k := range s.Annotations {
		if strippedAnnotation(k) {
			removed = append(removed, k)
		}
	}
	slices.Sort(removed)
	for _, k := range removed {
		delete(s.Annotations, k)
		r.change(RuleAnnotations, "annotations."+k, "(set)", "(removed)")
	}
}

func checkAnnotations(s *specs.Spec) error {
	first := ""
	for k := range s.Annotations {
		if strippedAnnotation(k) && (first == "" || k < first) {
			first = k
		}
	}
	if first != "" {
		return refuse(RuleAnnotations, "annotations."+first, "is interpreted by a runtime and must not come from a pod")
	}
	return nil
}
