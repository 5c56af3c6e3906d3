package profiles

import (
	"fmt"
	"slices"
	"strings"
)

// Pod Security. Kubernetes' Pod Security Standards (baseline and
// restricted, as the Pod Security Admission checks them) name controls a
// pod must meet; a profile meets each of them its own way, at the runtime:
// it refuses what a pod asks for, makes it safe (rewrites the spec), or
// does not enforce it. PodSecurity says which, from the profile's own
// settings, so an operator profile gets an accurate answer too.

// How a profile meets one control.
const (
	// PSAEnforced: what the control forbids is refused (or never given).
	PSAEnforced = "enforced"
	// PSAStricter: enforced, and more than the control asks.
	PSAStricter = "stricter"
	// PSAMadeSafe: not refused, but the container runs without what the
	// control forbids (the spec is rewritten).
	PSAMadeSafe = "made safe"
	// PSAPartly: enforced with an exception the detail names.
	PSAPartly = "partly"
	// PSANotEnforced: the container may have what the control forbids.
	PSANotEnforced = "not enforced"
)

// PSAControl is one Pod Security Standards control and how a profile
// meets it.
type PSAControl struct {
	// Level is "baseline" or "restricted" (the standard's level the control
	// belongs to); Control its name in the standard.
	Level, Control string
	Status, Detail string
}

// psaBaselineCaps are the capabilities Pod Security's baseline allows
// adding (Kubernetes 1.35).
var psaBaselineCaps = []string{
	"CAP_AUDIT_WRITE", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_MKNOD",
	"CAP_NET_BIND_SERVICE", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID", "CAP_SYS_CHROOT",
}

// capsBeyond are the capabilities of allowed not in within.
func capsBeyond(allowed, within []string) []string {
	var out []string
	for _, c := range allowed {
		if !slices.Contains(within, c) {
			out = append(out, c)
		}
	}
	return out
}

// PodSecurity maps the profile onto the Pod Security Standards' controls.
// (Long on purpose: one entry per control, in the standard's order.)
func PodSecurity(p *Profile) []PSAControl {
	var out []PSAControl
	add := func(level, control, status, detail string) {
		out = append(out, PSAControl{level, control, status, detail})
	}
	const b, r = "baseline", "restricted"

	if p.Namespaces.DenyHost {
		add(b, "Host Namespaces", PSAEnforced, "hostNetwork, hostPID, hostIPC refused")
	} else {
		add(b, "Host Namespaces", PSANotEnforced, "the node's network, pid and ipc namespaces allowed (never its mount namespace)")
	}
	if p.Namespaces.DenyPrivileged {
		add(b, "Privileged Containers", PSAEnforced, "privileged refused")
	} else {
		add(b, "Privileged Containers", PSAMadeSafe, "runs de-privileged: the profile's capabilities, default devices, read-only sysfs and cgroups")
	}
	switch extra := capsBeyond(p.Capabilities.Allowed, psaBaselineCaps); {
	case len(extra) > 0:
		add(b, "Capabilities", PSANotEnforced, "also allows "+strings.Join(extra, ", "))
	case len(p.Capabilities.Allowed) == 0:
		add(b, "Capabilities", PSAStricter, "none at all")
	case len(p.Capabilities.Allowed) < len(psaBaselineCaps):
		add(b, "Capabilities", PSAStricter, fmt.Sprintf("at most %d of the %d baseline allows (dropped, not refused)", len(p.Capabilities.Allowed), len(psaBaselineCaps)))
	default:
		add(b, "Capabilities", PSAEnforced, "at most the baseline set (more is dropped, not refused)")
	}
	add(b, "HostPath Volumes", PSAPartly, "only the pod's own kubelet and CRI files, and what the node policy's allow_host_path_prefixes consents to")
	add(b, "Host Ports", PSANotEnforced, "port mappings are the CNI plugin's: the runtime does not see them")
	switch {
	case p.Runtime == RuntimeGVisor:
		add(b, "AppArmor", PSAMadeSafe, "runs in gVisor (where the policy's strict_runtime is gvisor): AppArmor does not apply inside, the Sentry is the boundary")
	case p.AppArmor.Profile != "":
		add(b, "AppArmor", PSAStricter, p.AppArmor.Profile+" replaces unconfined and none, where the node has AppArmor (policy apparmor decides elsewhere)")
	default:
		add(b, "AppArmor", PSANotEnforced, "the spec's own profile is kept")
	}
	add(b, "SELinux", PSAPartly, "types limited to "+strings.Join(p.SELinux.ProcessTypes, ", ")+"; user and role not judged")
	add(b, "/proc Mount Type", PSAMadeSafe, "containerd's masked and read-only paths always applied")
	if p.Seccomp.Base == SeccompBaseDefault {
		add(b, "Seccomp", PSAStricter, "a filter always: never unconfined, never looser than containerd's default")
	} else {
		add(b, "Seccomp", PSANotEnforced, "seccomp base \"\": the spec's own filter, none included")
	}
	if p.Sysctls.Restrict {
		add(b, "Sysctls", PSAEnforced, "Kubernetes' safe set only")
	} else {
		add(b, "Sysctls", PSANotEnforced, "any namespaced sysctl, in a namespace the container owns")
	}

	add(r, "Volume Types", PSAPartly, "the runtime sees mounts, not volume types: hostPath judged as above, the rest not")
	add(r, "Privilege Escalation", PSAEnforced, "no_new_privileges always set")
	if p.Process.RunAsNonRoot {
		add(r, "Running as Non-root", PSAEnforced, "uid 0 refused")
		add(r, "Running as Non-root user", PSAEnforced, "uid 0 refused")
	} else {
		add(r, "Running as Non-root", PSANotEnforced, "uid 0 allowed, with the profile's capabilities only")
		add(r, "Running as Non-root user", PSANotEnforced, "uid 0 allowed")
	}
	if p.Seccomp.Base == SeccompBaseDefault {
		add(r, "Seccomp", PSAEnforced, "containerd's default filter (RuntimeDefault) or a stricter one")
	} else {
		add(r, "Seccomp", PSANotEnforced, "the spec's own filter")
	}
	switch extra := capsBeyond(p.Capabilities.Allowed, []string{"CAP_NET_BIND_SERVICE"}); {
	case len(extra) > 0:
		add(r, "Capabilities", PSANotEnforced, "also allows "+strings.Join(extra, ", "))
	case len(p.Capabilities.Allowed) == 0:
		add(r, "Capabilities", PSAStricter, "none at all")
	default:
		add(r, "Capabilities", PSAEnforced, "at most NET_BIND_SERVICE (more is dropped, not refused)")
	}
	return out
}

// BeyondPodSecurity lists what the profile enforces that no Pod Security
// control asks for.
func BeyondPodSecurity(p *Profile) []string {
	var out []string
	if p.Rootfs.ReadOnly {
		out = append(out, "read-only rootfs")
	}
	if p.Pids.Limit > 0 {
		out = append(out, fmt.Sprintf("pids limit %d", p.Pids.Limit))
	}
	if len(p.Seccomp.Deny) > 0 {
		out = append(out, fmt.Sprintf("seccomp denies %d more syscalls (%s ...)", len(p.Seccomp.Deny), strings.Join(p.Seccomp.Deny[:min(3, len(p.Seccomp.Deny))], ", ")))
	}
	if p.Seccomp.NativeArchOnly {
		out = append(out, "native syscall ABI only")
	}
	if p.Process.DenyExec {
		out = append(out, "no exec into the container (kubectl exec, exec probes and lifecycle hooks refused)")
	}
	if p.Runtime == RuntimeGVisor {
		out = append(out, "runs in gVisor (the policy's strict_runtime)")
	}
	out = append(out, "fd hygiene at start (CVE-2024-21626 class), runc escape gate, host paths pinned, mount options by allowlist")
	return out
}
