package hardening

import (
	"maps"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Annotations, by allowlist within the runtimes' namespaces.
//
// A pod can set annotations (through containerd's pod_annotations and
// container_annotations allowlists, or an operator who allows "*"), and NRI
// plugins can add any. Some are read as configuration by the runtimes
// (runc v1.5.2 and runsc, read in their source) or by tools around them:
//   - dev.gvisor.*: runsc applies dev.gvisor.flag.* as command-line flags
//     (host-uds, debug and strace without --allow-flag-override, any flag
//     with it), dev.gvisor.bundle.* as flag bundles that override even the
//     operator's flags (directfs, the platform), dev.gvisor.internal.* turn
//     on GPU/TPU passthrough, write checkpoints into any host directory or
//     drop the seccomp filter, dev.gvisor.spec.rootfs.* and
//     dev.gvisor.tar.rootfs.* open host files as the root filesystem,
//     dev.gvisor.spec.cgroup-parent picks the sandbox's host cgroup.
//   - org.systemd.property.*: runc's systemd cgroup driver turns them into
//     unit properties (DeviceAllow=, or lifting resource limits);
//     org.criu.config: a CRIU configuration file on checkpoint/restore;
//     bundle: shadows the real bundle for `runc exec` without --process.
//   - run.oci.* (crun: raw seccomp BPF, hooks), io.katacontainers.* (Kata:
//     hypervisor paths, kernel parameters), io.containers.* (the OCI
//     seccomp BPF hook), io.containerd.* (io.containerd.runc.v2.group puts
//     the container into another container's shim), io.kubernetes.cri-o.*
//     (runsc reads CRI-O's sandbox ID and container type from them).
//
// In these namespaces only what is known to be safe passes:
// io.kubernetes.cri.* (set by containerd's CRI for every container of a
// pod; runsc and containerd group a pod by them), org.opencontainers.image.*
// (image metadata nothing reads) and dev.gvisor.spec.mount.* (runsc's
// sharing and caching hints for the pod's own mounts, matched by their
// source). Everything else in them is removed. hardened.dev/* is this
// project's own: profile and runtime are read by the resolver, any other
// key (a typo, or an option this version does not have) is refused.
// Annotations outside these namespaces are read by neither runtime and
// pass.
var (
	runtimeAnnotationPrefixes = []string{
		"dev.gvisor.", "org.systemd.", "org.criu.", "org.opencontainers.",
		"run.oci.", "io.katacontainers.", "io.containers.", "io.containerd.",
		"io.kubernetes.cri-o.", "io.podman.",
	}
	runtimeAnnotationKeys     = []string{"bundle"}
	allowedAnnotationPrefixes = []string{
		"io.kubernetes.cri.", "org.opencontainers.image.", "dev.gvisor.spec.mount.",
	}
	// projectAnnotations are this project's own keys (internal/resolve).
	projectAnnotations = []string{"hardened.dev/profile", "hardened.dev/runtime"}
)

const projectAnnotationPrefix = "hardened.dev/"

// strippedAnnotation reports whether the engine removes key.
func strippedAnnotation(key string) bool {
	if hasAnyPrefix(key, allowedAnnotationPrefixes) {
		return false
	}
	return slices.Contains(runtimeAnnotationKeys, key) || hasAnyPrefix(key, runtimeAnnotationPrefixes)
}

// checkProjectAnnotations refuses a hardened.dev/ key this version does
// not know: the workload asked for something it will not get.
func checkProjectAnnotations(ann map[string]string) error {
	keys := slices.Sorted(maps.Keys(ann))
	for _, k := range keys {
		if strings.HasPrefix(k, projectAnnotationPrefix) && !slices.Contains(projectAnnotations, k) {
			return refuse(RuleAnnotations, "annotations."+k, "is not an annotation this version of hardened knows (known: %s)", strings.Join(projectAnnotations, ", "))
		}
	}
	return nil
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
	if err := checkProjectAnnotations(s.Annotations); err != nil {
		return err
	}
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
