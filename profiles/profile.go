// Package profiles holds hardening profiles as data: the built-in ones are
// TOML files embedded in the binary (builtin/*.toml); operators add their own
// from a directory named in the node policy. A profile says how far a
// container is tightened; the hardening engine applies it.
package profiles

import "slices"

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
	// Runtime is the backend this profile prefers: "runc" or "gvisor"
	// (empty: the policy's routes and default decide).
	Runtime string `toml:"runtime"`

	Capabilities Capabilities `toml:"capabilities"`
	Rootfs       Rootfs       `toml:"rootfs"`
	Process      Process      `toml:"process"`
	Pids         Pids         `toml:"pids"`
	Seccomp      Seccomp      `toml:"seccomp"`
	AppArmor     AppArmor     `toml:"apparmor"`
	Paths        Paths        `toml:"paths"`
	Namespaces   Namespaces   `toml:"namespaces"`
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
	// DenyPrivileged refuses a privileged spec: access to all devices, or
	// the full capability set.
	DenyPrivileged bool `toml:"deny_privileged"`
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
	c.Paths.Masked = slices.Clone(p.Paths.Masked)
	c.Paths.ReadOnly = slices.Clone(p.Paths.ReadOnly)
	return &c
}
