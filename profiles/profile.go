// Package profiles holds hardening profiles as data: the built-in ones are
// TOML files embedded in the binary (builtin/*.toml); operators add their own
// from a directory named in the node policy. A profile says how far a
// container is tightened; the hardening engine applies it.
package profiles

import (
	"maps"
	"slices"
)

// Profile is one hardening profile. The zero value of every field is the
// loosest setting, so a profile that extends another only has to name what
// it changes: the loader decodes a file over a copy of its base.
type Profile struct {
	// Name identifies the profile (annotation/label hardened.dev/profile).
	Name string `toml:"name"`
	// Extends names the profile this one starts from ("" for none).
	Extends string `toml:"extends"`
	// Description says in one sentence what the profile is for.
	Description string `toml:"description"`
	// Rank orders profiles by strictness: a higher rank is stricter.
	// Built-in: baseline 10, restricted 20, strict 30. A profile that
	// extends another takes its base's rank unless it sets its own.
	Rank int `toml:"rank"`
	// Runtime is the runtime this profile prefers: "runc" or "gvisor"
	// (empty: the policy's routes and default decide).
	Runtime Runtime `toml:"runtime"`

	Capabilities Capabilities `toml:"capabilities"`
	Rootfs       Rootfs       `toml:"rootfs"`
	Process      Process      `toml:"process"`
	Pids         Pids         `toml:"pids"`
	Seccomp      Seccomp      `toml:"seccomp"`
	AppArmor     AppArmor     `toml:"apparmor"`
	Paths        Paths        `toml:"paths"`
	Namespaces   Namespaces   `toml:"namespaces"`
	Mounts       Mounts       `toml:"mounts"`
	Devices      Devices      `toml:"devices"`
	Sysctls      Sysctls      `toml:"sysctls"`
	SELinux      SELinux      `toml:"selinux"`
	Rlimits      Rlimits      `toml:"rlimits"`
}

// Capabilities is the ceiling for every capability set of the process.
type Capabilities struct {
	// Allowed lists the capabilities (CAP_*) a container may keep; every
	// set is intersected with it. Empty: no capability at all.
	Allowed []string `toml:"allowed"`
	// Ambient keeps ambient capabilities (within Allowed); false clears them.
	Ambient bool `toml:"ambient"`
}

// Rootfs describes the container's root filesystem.
type Rootfs struct {
	// ReadOnly makes the rootfs read-only.
	ReadOnly bool `toml:"read_only"`
	// Scratch lists writable tmpfs mounts added when the rootfs is
	// read-only, unless the spec already mounts something at that path.
	Scratch []Scratch `toml:"scratch"`
}

// Scratch is one writable tmpfs mount on a read-only rootfs.
type Scratch struct {
	Path string `toml:"path"`
	// Size is the tmpfs size option ("64m"); empty: the kernel's default.
	Size string `toml:"size"`
	// NoExec mounts it noexec, so that no dropped binary can run from it.
	NoExec bool `toml:"noexec"`
	// CopyUp copies what the image holds at the path into the tmpfs
	// (runc's tmpcopyup), so that a program finds its directories there.
	CopyUp bool `toml:"copy_up"`
}

// Process holds rules for the container's processes.
type Process struct {
	// RunAsNonRoot refuses a process whose uid is 0.
	RunAsNonRoot bool `toml:"run_as_non_root"`
	// DenyExec refuses every exec into the container.
	DenyExec bool `toml:"deny_exec"`
	// NoCoreDumps sets RLIMIT_CORE to 0.
	NoCoreDumps bool `toml:"no_core_dumps"`
}

// Pids limits the number of tasks in the container's cgroup.
type Pids struct {
	// Limit is the most tasks; a spec with a lower limit keeps it.
	// 0 means the profile sets no limit.
	Limit int64 `toml:"limit"`
}

// Seccomp describes the seccomp filter.
type Seccomp struct {
	// Base is the filter the profile starts from: "default" (containerd's
	// default profile, generated for the capabilities left after the
	// capability drop) or "" for none (the spec's own filter stays).
	Base string `toml:"base"`
	// Deny lists syscalls removed from the base filter's allow rules and
	// denied explicitly (EPERM), even where a capability would open them.
	Deny []string `toml:"deny"`
	// Allow lists syscalls the base filter allows unconditionally on top
	// of containerd's default for the capabilities left: what a workload
	// was seen to need (seccomp_notify = "learn"; hardenctl seccomp
	// install). Base "default" only; a name may not be on both lists.
	// Allowing more makes the profile looser than the one it extends.
	Allow []string `toml:"allow"`
	// NativeArchOnly lists only the native architecture in the filter:
	// other ABIs (x86, x32 on amd64) are killed, and the filter compiles
	// faster.
	NativeArchOnly bool `toml:"native_arch_only"`
}

// AppArmor names the AppArmor profile applied where the host has AppArmor.
type AppArmor struct {
	Profile string `toml:"profile"`
}

// Paths lists paths masked or made read-only in addition to containerd's
// defaults (which every profile applies).
type Paths struct {
	Masked   []string `toml:"masked"`
	ReadOnly []string `toml:"read_only"`
}

// Namespaces holds what a container may share with the host.
type Namespaces struct {
	// DenyHost refuses a spec that joins the host's pid, ipc or network
	// namespace (no namespace of that type in the spec).
	DenyHost bool `toml:"deny_host"`
	// DenyPrivileged refuses a privileged spec: the full capability set, or
	// a device beyond containerd's defaults and Devices.Allowed (without
	// it, such devices are removed instead).
	DenyPrivileged bool `toml:"deny_privileged"`
}

// Placeholders an entry of Mounts.AllowHostPathPrefixes may hold as a whole
// path element. The engine fills them in from the annotations containerd's
// CRI sets on every pod's containers; an entry whose placeholder the spec
// gives no value for allows nothing.
const (
	// HostPathPodUID is the pod's UID (io.kubernetes.cri.sandbox-uid): the
	// kubelet keeps a pod's volumes under /var/lib/kubelet/pods/<uid>/.
	HostPathPodUID = "{pod-uid}"
	// HostPathSandboxID is the pod sandbox's ID (io.kubernetes.cri.sandbox-id):
	// containerd's CRI keeps a pod's hosts, hostname, resolv.conf and shm
	// under <root or state>/io.containerd.grpc.v1.cri/sandboxes/<id>/.
	HostPathSandboxID = "{sandbox-id}"
	// HostPathContainerID is the container's own ID (the task's ID, which
	// is containerd's container ID): containerd's CRI keeps a container's
	// image volumes under <root>/io.containerd.grpc.v1.cri/containers/<id>/.
	HostPathContainerID = "{container-id}"
)

// HostPathPrefix is one host path a container may mount (an entry of the
// node policy's allow_host_path_prefixes). Prefix is written like an entry
// of Mounts.AllowHostPathPrefixes: a trailing "/" allows what is under the
// path but not the path itself, and an element may be a placeholder.
type HostPathPrefix struct {
	Prefix string `toml:"prefix"`
	// ReadOnly allows only read-only mounts of what the prefix covers.
	ReadOnly bool `toml:"read_only"`
}

// Mounts says what a container may mount.
//
// Host paths (a bind mount's source, any mount source that is an absolute
// path, an absolute root.path) are decided by allowlist: a host path is
// mounted only if it lies under one of AllowHostPathPrefixes (the pod's own
// files) or under an entry of the node policy's allow_host_path_prefixes
// (the operator's consent), and not on DenyHostPaths. Everything else is
// refused.
type Mounts struct {
	// DenyHostPaths lists host paths a container may never mount, not even
	// where the node policy's allow_host_path_prefixes covers them: a source
	// that is one of them, under one, or an ancestor of one ("/" or "/var"
	// exposes /var/lib/kubelet) is refused, unless it lies under one of
	// AllowHostPathPrefixes (the pod's own files). "/" denies the host's
	// root itself.
	DenyHostPaths []string `toml:"deny_host_paths"`
	// AllowHostPathPrefixes lists the host paths a container may mount
	// without the node policy's consent: containerd's CRI and the kubelet's
	// own per-pod files. An entry ending in "/" allows what is under it (not
	// the directory itself); one without allows the path and what is under
	// it. An element may be HostPathPodUID, HostPathSandboxID or
	// HostPathContainerID, so that a pod reaches its own files and no other
	// pod's.
	AllowHostPathPrefixes []string `toml:"allow_host_path_prefixes"`
	// StandardFilesystemsOnly refuses every filesystem a container mounts
	// other than a bind mount or tmpfs, proc, sysfs, cgroup, cgroup2,
	// mqueue and devpts (a disk's filesystem, overlay, NFS ...). Whatever
	// it says, a kernel filesystem (proc, sysfs, cgroup, mqueue, devpts) is
	// refused anywhere but its standard place, and debugfs, tracefs,
	// securityfs, devtmpfs and the like anywhere.
	StandardFilesystemsOnly bool `toml:"standard_filesystems_only"`
}

// Devices says which host devices a container may use beyond containerd's
// default set (null, zero, full, random, urandom, tty, console, ptmx, the
// container's own ptys; and /dev/net/tun, which runc always allows).
type Devices struct {
	// Allowed lists further devices, each "c MAJOR:MINOR" or
	// "b MAJOR:MINOR" (MINOR may be "*"), e.g. "c 195:*" for NVIDIA GPUs.
	// A device cgroup rule granting read or write on any other device, or
	// on a whole class of them, and a linux.devices node of any other
	// device, are removed (refused under namespaces.deny_privileged).
	Allowed []string `toml:"allowed"`
}

// Sysctls says which kernel parameters (linux.sysctl) a spec may set.
// Whatever it says, only a sysctl of a namespace the container has of its
// own passes (net.* with its own network namespace, kernel.shm*, kernel.msg*,
// kernel.sem and fs.mqueue.* with its own IPC namespace, kernel.hostname
// and kernel.domainname with its own UTS namespace): any other is
// host-wide, and runc writes it as root.
type Sysctls struct {
	// Restrict limits the namespaced sysctls to Allowed; false allows
	// every namespaced sysctl.
	Restrict bool `toml:"restrict"`
	// Allowed lists names ("net.ipv4.tcp_syncookies") or prefixes ending
	// in "*" ("net.ipv4.tcp_*").
	Allowed []string `toml:"allowed"`
}

// SELinux says which SELinux types the labels of a spec may carry
// (process.selinuxLabel and linux.mountLabel, "user:role:type:level").
// Whatever it says, spc_t and unconfined_t are refused: they are not
// confined at all.
type SELinux struct {
	// ProcessTypes lists the types a process label may have. Empty: any.
	ProcessTypes []string `toml:"process_types"`
	// MountTypes lists the types linux.mountLabel may have. Empty: any.
	MountTypes []string `toml:"mount_types"`
}

// Rlimits bounds the resource limits runc sets for the container's
// processes. runc sets them as root, before it drops capabilities, so a
// spec can raise a hard limit above what the process could raise itself.
type Rlimits struct {
	// Max maps an RLIMIT_* name to the highest soft and hard value the
	// spec may set; a higher one (or unlimited) is lowered to it. An
	// unlisted type has no bound.
	Max map[string]uint64 `toml:"max"`
}

// Clone returns a deep copy of p: no slice is shared with p, so the copy
// can be changed (or decoded over) without touching p.
func (p *Profile) Clone() *Profile {
	if p == nil {
		return nil
	}
	c := *p
	c.Capabilities.Allowed = slices.Clone(p.Capabilities.Allowed)
	c.Rootfs.Scratch = slices.Clone(p.Rootfs.Scratch)
	c.Seccomp.Deny = slices.Clone(p.Seccomp.Deny)
	c.Seccomp.Allow = slices.Clone(p.Seccomp.Allow)
	c.Paths.Masked = slices.Clone(p.Paths.Masked)
	c.Paths.ReadOnly = slices.Clone(p.Paths.ReadOnly)
	c.Mounts.DenyHostPaths = slices.Clone(p.Mounts.DenyHostPaths)
	c.Mounts.AllowHostPathPrefixes = slices.Clone(p.Mounts.AllowHostPathPrefixes)
	c.Devices.Allowed = slices.Clone(p.Devices.Allowed)
	c.Sysctls.Allowed = slices.Clone(p.Sysctls.Allowed)
	c.SELinux.ProcessTypes = slices.Clone(p.SELinux.ProcessTypes)
	c.SELinux.MountTypes = slices.Clone(p.SELinux.MountTypes)
	c.Rlimits.Max = maps.Clone(p.Rlimits.Max)
	return &c
}
