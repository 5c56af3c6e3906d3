package hardening

// Every field of the runtime spec (opencontainers/runtime-spec v1.3.0, the
// types runc v1.5.2 decodes config.json into) has a disposition here: what
// the engine does with it, under which profile setting, and why. The table
// is checked against the specs-go types by reflection
// (TestEveryFieldHasARule): a runtime-spec upgrade that adds a field fails
// the build's tests until someone decides what it may do. The shim writes
// config.json by marshalling these types, so a field they do not know (a
// newer runtime-spec's, or a typo) is dropped, never passed to runc
// (TestUnknownFieldsDropped).

// Disposition is what the engine does with a spec field.
type Disposition string

const (
	// Kept: passed to the runtime as it is, under every profile; Why says
	// why that is safe.
	Kept Disposition = "kept"
	// Tightened: rewritten toward the profile, never loosened.
	Tightened Disposition = "tightened"
	// Judged: kept when within the profile, refused (or tightened) when not.
	Judged Disposition = "judged"
	// Refused: a spec that sets it is refused under every profile (for a
	// struct: the whole of it, whatever it holds).
	Refused Disposition = "refused"
)

// FieldRule is the disposition of one spec field. Field is the JSON path:
// "[]" stands for a list's elements, "{}" for a map's values, "*" for any
// key of hooks.
type FieldRule struct {
	Field       string
	Disposition Disposition
	Rule        string
	Why         string
}

// FieldRules is the table.
var FieldRules = []FieldRule{
	{"ociVersion", Kept, RuleSpec, "informational; runc does not check it"},

	// process
	{"process.terminal", Kept, RuleProcess, "a pty for the process's own stdio"},
	{"process.consoleSize.height", Kept, RuleProcess, "the pty's size"},
	{"process.consoleSize.width", Kept, RuleProcess, "the pty's size"},
	{"process.user.uid", Judged, RuleProcess, "uid 0 refused under process.run_as_non_root"},
	{"process.user.gid", Kept, RuleProcess, "a group inside the container; an exec may not add one its init lacks"},
	{"process.user.umask", Kept, RuleProcess, "a mask the process could set itself"},
	{"process.user.additionalGids", Kept, RuleProcess, "groups inside the container; an exec may not add one its init lacks"},
	{"process.user.username", Refused, RuleSpec, "Windows only: runc ignores it"},
	{"process.args", Judged, RuleFDHygiene, "args[0] through /proc/*/fd or with '..' refused (CVE-2024-21626)"},
	{"process.commandLine", Refused, RuleSpec, "Windows only: runc ignores it"},
	{"process.env", Judged, RuleFDHygiene, "PATH and LD_* elements through /proc/*/fd or with '..' refused; values never logged"},
	{"process.cwd", Judged, RuleFDHygiene, "relative, '..' or through /proc/*/fd refused (CVE-2024-21626); checked again at start on runc"},
	{"process.capabilities.bounding", Tightened, RuleCapabilities, "intersected with capabilities.allowed; nil becomes empty (runc keeps all for nil)"},
	{"process.capabilities.effective", Tightened, RuleCapabilities, "intersected with capabilities.allowed"},
	{"process.capabilities.inheritable", Tightened, RuleCapabilities, "intersected with capabilities.allowed"},
	{"process.capabilities.permitted", Tightened, RuleCapabilities, "intersected with capabilities.allowed"},
	{"process.capabilities.ambient", Tightened, RuleCapabilities, "cleared unless capabilities.ambient"},
	{"process.rlimits[].type", Judged, RuleRlimits, "a type Linux does not have refused"},
	{"process.rlimits[].hard", Tightened, RuleRlimits, "lowered to rlimits.max (runc sets them as root); RTPRIO/NICE need CAP_SYS_NICE; CORE 0 under no_core_dumps"},
	{"process.rlimits[].soft", Tightened, RuleRlimits, "as hard"},
	{"process.noNewPrivileges", Tightened, RuleNoNewPrivs, "always true"},
	{"process.apparmorProfile", Tightened, RuleAppArmor, "the profile's on AppArmor hosts unless the spec names a loaded, enforcing one; 'unconfined' replaced"},
	{"process.oomScoreAdj", Tightened, RuleProcess, "raised to -998 (runc writes it as root; -999/-1000 are the node's own)"},
	{"process.scheduler.policy", Judged, RuleScheduler, "real-time policies need CAP_SYS_NICE in the final bounding set (runc sets them before the drop)"},
	{"process.scheduler.nice", Judged, RuleScheduler, "negative needs CAP_SYS_NICE"},
	{"process.scheduler.priority", Kept, RuleScheduler, "only with a real-time policy, which is judged"},
	{"process.scheduler.flags", Kept, RuleScheduler, "modify the judged policy only"},
	{"process.scheduler.runtime", Kept, RuleScheduler, "SCHED_DEADLINE only, which is judged"},
	{"process.scheduler.deadline", Kept, RuleScheduler, "SCHED_DEADLINE only, which is judged"},
	{"process.scheduler.period", Kept, RuleScheduler, "SCHED_DEADLINE only, which is judged"},
	{"process.selinuxLabel", Judged, RuleSELinux, "type in selinux.process_types; spc_t and unconfined_t refused"},
	{"process.ioPriority.class", Judged, RuleScheduler, "IOPRIO_CLASS_RT needs CAP_SYS_ADMIN"},
	{"process.ioPriority.priority", Kept, RuleScheduler, "a level within the judged class"},
	{"process.execCPUAffinity.initial", Kept, RuleProcess, "CPUs within the container's cpuset"},
	{"process.execCPUAffinity.final", Kept, RuleProcess, "CPUs within the container's cpuset"},

	// root, hostname
	{"root.path", Judged, RuleMounts, "relative under the bundle ('..' refused); absolute: a host path, by allowlist"},
	{"root.readonly", Tightened, RuleRootfs, "true under rootfs.read_only; never made writable"},
	{"hostname", Judged, RuleNamespaces, "refused in a UTS namespace path that is the node's (runc would set the node's hostname)"},
	{"domainname", Judged, RuleNamespaces, "as hostname"},

	// mounts
	{"mounts[].destination", Judged, RuleFDHygiene, "absolute, no '..', not through /proc/*/fd, not /"},
	{"mounts[].type", Judged, RuleMounts, "kernel filesystems only at their place, host-state ones refused, others under mounts.standard_filesystems_only; a bind option only on type bind"},
	{"mounts[].source", Judged, RuleMounts, "host paths by allowlist (the pod's own files, the policy's allow_host_path_prefixes), opened without symlinks and pinned by the shim"},
	{"mounts[].options", Tightened, RuleMounts, "allowlist per type; nosuid,nodev on host binds; rro on read-only rbinds; shared propagation slave or refused; no remount"},
	{"mounts[].uidMappings[].containerID", Judged, RuleMounts, "bind mounts only; no host ID 0 under run_as_non_root"},
	{"mounts[].uidMappings[].hostID", Judged, RuleMounts, "as containerID"},
	{"mounts[].uidMappings[].size", Judged, RuleMounts, "as containerID"},
	{"mounts[].gidMappings[].containerID", Judged, RuleMounts, "as uidMappings"},
	{"mounts[].gidMappings[].hostID", Judged, RuleMounts, "as uidMappings"},
	{"mounts[].gidMappings[].size", Judged, RuleMounts, "as uidMappings"},

	// hooks: any kind
	{"hooks.*[].path", Judged, RuleHooks, "only paths the policy's allowed_hooks lists (hooks run as root on the host)"},
	{"hooks.*[].args", Kept, RuleHooks, "the policy vouches for the binary it allows"},
	{"hooks.*[].env", Kept, RuleHooks, "as args"},
	{"hooks.*[].timeout", Kept, RuleHooks, "as args"},

	{"annotations", Tightened, RuleAnnotations, "keys in the runtimes' namespaces by allowlist, others stripped; unknown hardened.dev/ keys refused"},

	// linux
	{"linux.uidMappings[].containerID", Judged, RuleNamespaces, "no host ID 0 under run_as_non_root"},
	{"linux.uidMappings[].hostID", Judged, RuleNamespaces, "as containerID"},
	{"linux.uidMappings[].size", Judged, RuleNamespaces, "as containerID"},
	{"linux.gidMappings[].containerID", Judged, RuleNamespaces, "as uidMappings"},
	{"linux.gidMappings[].hostID", Judged, RuleNamespaces, "as uidMappings"},
	{"linux.gidMappings[].size", Judged, RuleNamespaces, "as uidMappings"},
	{"linux.sysctl", Judged, RuleSysctls, "namespaced and owned only; sysctls.allowed under sysctls.restrict"},
	{"linux.resources.devices[].allow", Tightened, RuleDevices, "grants beyond containerd's defaults and devices.allowed refused (deny_privileged) or removed"},
	{"linux.resources.devices[].type", Tightened, RuleDevices, "as allow"},
	{"linux.resources.devices[].major", Tightened, RuleDevices, "as allow"},
	{"linux.resources.devices[].minor", Tightened, RuleDevices, "as allow"},
	{"linux.resources.devices[].access", Tightened, RuleDevices, "as allow"},
	{"linux.resources.memory.limit", Kept, RuleCgroups, "a limit; the pod's parent cgroup bounds it"},
	{"linux.resources.memory.reservation", Kept, RuleCgroups, "a soft limit"},
	{"linux.resources.memory.swap", Kept, RuleCgroups, "a limit"},
	{"linux.resources.memory.kernel", Kept, RuleCgroups, "ignored by runc"},
	{"linux.resources.memory.kernelTCP", Kept, RuleCgroups, "ignored by runc"},
	{"linux.resources.memory.swappiness", Kept, RuleCgroups, "the container's own reclaim"},
	{"linux.resources.memory.disableOOMKiller", Kept, RuleCgroups, "the container's own OOM behaviour (cgroup v1)"},
	{"linux.resources.memory.useHierarchy", Kept, RuleCgroups, "ignored by runc"},
	{"linux.resources.memory.checkBeforeUpdate", Kept, RuleCgroups, "a check runc makes on update"},
	{"linux.resources.cpu.shares", Kept, RuleCgroups, "a weight among siblings"},
	{"linux.resources.cpu.quota", Kept, RuleCgroups, "a limit"},
	{"linux.resources.cpu.burst", Kept, RuleCgroups, "a limit"},
	{"linux.resources.cpu.period", Kept, RuleCgroups, "a limit"},
	{"linux.resources.cpu.realtimeRuntime", Kept, RuleCgroups, "a budget real-time scheduling (judged) may use"},
	{"linux.resources.cpu.realtimePeriod", Kept, RuleCgroups, "as realtimeRuntime"},
	{"linux.resources.cpu.cpus", Kept, RuleCgroups, "within the parent cgroup's cpuset"},
	{"linux.resources.cpu.mems", Kept, RuleCgroups, "within the parent cgroup's cpuset"},
	{"linux.resources.cpu.idle", Kept, RuleCgroups, "lowers the container's own priority"},
	{"linux.resources.pids.limit", Tightened, RulePids, "lowered to pids.limit; never raised"},
	{"linux.resources.blockIO.weight", Kept, RuleCgroups, "a weight among siblings"},
	{"linux.resources.blockIO.leafWeight", Kept, RuleCgroups, "a weight"},
	{"linux.resources.blockIO.weightDevice[].major", Kept, RuleCgroups, "a weight on a device by number; grants no access"},
	{"linux.resources.blockIO.weightDevice[].minor", Kept, RuleCgroups, "as major"},
	{"linux.resources.blockIO.weightDevice[].weight", Kept, RuleCgroups, "as major"},
	{"linux.resources.blockIO.weightDevice[].leafWeight", Kept, RuleCgroups, "as major"},
	{"linux.resources.blockIO.throttleReadBpsDevice[].major", Kept, RuleCgroups, "a throttle; grants no access"},
	{"linux.resources.blockIO.throttleReadBpsDevice[].minor", Kept, RuleCgroups, "a throttle"},
	{"linux.resources.blockIO.throttleReadBpsDevice[].rate", Kept, RuleCgroups, "a throttle"},
	{"linux.resources.blockIO.throttleWriteBpsDevice[].major", Kept, RuleCgroups, "a throttle"},
	{"linux.resources.blockIO.throttleWriteBpsDevice[].minor", Kept, RuleCgroups, "a throttle"},
	{"linux.resources.blockIO.throttleWriteBpsDevice[].rate", Kept, RuleCgroups, "a throttle"},
	{"linux.resources.blockIO.throttleReadIOPSDevice[].major", Kept, RuleCgroups, "a throttle"},
	{"linux.resources.blockIO.throttleReadIOPSDevice[].minor", Kept, RuleCgroups, "a throttle"},
	{"linux.resources.blockIO.throttleReadIOPSDevice[].rate", Kept, RuleCgroups, "a throttle"},
	{"linux.resources.blockIO.throttleWriteIOPSDevice[].major", Kept, RuleCgroups, "a throttle"},
	{"linux.resources.blockIO.throttleWriteIOPSDevice[].minor", Kept, RuleCgroups, "a throttle"},
	{"linux.resources.blockIO.throttleWriteIOPSDevice[].rate", Kept, RuleCgroups, "a throttle"},
	{"linux.resources.hugepageLimits[].pageSize", Kept, RuleCgroups, "a limit (runc keeps the file name inside the cgroup)"},
	{"linux.resources.hugepageLimits[].limit", Kept, RuleCgroups, "a limit"},
	{"linux.resources.network", Refused, RuleCgroups, "net_cls classid and net_prio: the node's firewall and tc rules match on them"},
	{"linux.resources.rdma{}.hcaHandles", Kept, RuleCgroups, "a limit"},
	{"linux.resources.rdma{}.hcaObjects", Kept, RuleCgroups, "a limit"},
	{"linux.resources.unified", Judged, RuleCgroups, "cpu, memory, io, hugetlb files and cpuset.cpus/mems only (runc writes any file name as root); pids.max lowered"},
	{"linux.cgroupsPath", Judged, RuleCgroups, "clean, ends in the container's ID, next to its pod sandbox's"},
	{"linux.namespaces[].type", Judged, RuleNamespaces, "a mount namespace required; host pid/ipc/network refused under namespaces.deny_host"},
	{"linux.namespaces[].path", Judged, RuleNamespaces, "mount: refused; others: not the node's (by path here, by identity in the shim)"},
	{"linux.devices[].path", Judged, RuleDevices, "clean, under /dev; on gVisor a path runsc passes through needs devices.allowed"},
	{"linux.devices[].type", Judged, RuleDevices, "by type and numbers: beyond containerd's defaults and devices.allowed refused or removed"},
	{"linux.devices[].major", Judged, RuleDevices, "as type"},
	{"linux.devices[].minor", Judged, RuleDevices, "as type"},
	{"linux.devices[].fileMode", Kept, RuleDevices, "the node's mode inside the container; access is the cgroup's"},
	{"linux.devices[].uid", Kept, RuleDevices, "the node's owner inside the container"},
	{"linux.devices[].gid", Kept, RuleDevices, "the node's group inside the container"},
	{"linux.netDevices", Refused, RuleNamespaces, "runc takes the host interface from the node"},
	{"linux.seccomp.defaultAction", Tightened, RuleSeccomp, "merged with the profile's base: never looser; SCMP_ACT_NOTIFY refused"},
	{"linux.seccomp.defaultErrnoRet", Tightened, RuleSeccomp, "part of the merged filter"},
	{"linux.seccomp.architectures", Tightened, RuleSeccomp, "intersected with the base's; native only under native_arch_only"},
	{"linux.seccomp.flags", Tightened, RuleSeccomp, "SECCOMP_FILTER_FLAG_SPEC_ALLOW stripped"},
	{"linux.seccomp.listenerPath", Refused, RuleSeccomp, "runc connects to it as root and hands over the notify fd; with seccomp_notify the shim sets its own (docs/seccomp.md)"},
	{"linux.seccomp.listenerMetadata", Refused, RuleSeccomp, "belongs to a listener, which a spec may not name"},
	{"linux.seccomp.syscalls[].names", Tightened, RuleSeccomp, "merged with the base (see seccomp.go)"},
	{"linux.seccomp.syscalls[].action", Tightened, RuleSeccomp, "as names; SCMP_ACT_NOTIFY refused"},
	{"linux.seccomp.syscalls[].errnoRet", Tightened, RuleSeccomp, "as names"},
	{"linux.seccomp.syscalls[].args[].index", Tightened, RuleSeccomp, "as names"},
	{"linux.seccomp.syscalls[].args[].value", Tightened, RuleSeccomp, "as names"},
	{"linux.seccomp.syscalls[].args[].valueTwo", Tightened, RuleSeccomp, "as names"},
	{"linux.seccomp.syscalls[].args[].op", Tightened, RuleSeccomp, "as names"},
	{"linux.rootfsPropagation", Tightened, RuleMounts, "shared: refused under deny_privileged, else slave; unknown refused"},
	{"linux.maskedPaths", Tightened, RulePaths, "containerd's defaults and paths.masked added; never removed"},
	{"linux.readonlyPaths", Tightened, RulePaths, "containerd's defaults and paths.read_only added; never removed"},
	{"linux.mountLabel", Judged, RuleSELinux, "type in selinux.mount_types; spc_t and unconfined_t refused"},
	{"linux.intelRdt.closID", Judged, RuleCgroups, "a plain group name; '/' (the root group) refused"},
	{"linux.intelRdt.schemata", Judged, RuleCgroups, "only for the container's own new group (no closID)"},
	{"linux.intelRdt.l3CacheSchema", Judged, RuleCgroups, "as schemata"},
	{"linux.intelRdt.memBwSchema", Judged, RuleCgroups, "as schemata"},
	{"linux.intelRdt.enableMonitoring", Kept, RuleCgroups, "a monitoring group of the container's own"},
	{"linux.memoryPolicy.mode", Kept, RuleProcess, "the process's own NUMA policy, within its cpuset's memory nodes"},
	{"linux.memoryPolicy.nodes", Kept, RuleProcess, "as mode"},
	{"linux.memoryPolicy.flags", Kept, RuleProcess, "as mode"},
	{"linux.personality.domain", Judged, RuleProcess, "LINUX or LINUX32"},
	{"linux.personality.flags", Refused, RuleProcess, "runc ignores them: refused rather than dropped"},
	{"linux.timeOffsets{}.secs", Judged, RuleNamespaces, "only with a new time namespace of the container's own"},
	{"linux.timeOffsets{}.nanosecs", Judged, RuleNamespaces, "as secs"},

	// other platforms
	{"solaris", Refused, RuleSpec, "another platform's: runc ignores it"},
	{"windows", Refused, RuleSpec, "another platform's: runc ignores it"},
	{"vm", Refused, RuleSpec, "another platform's: runc ignores it"},
	{"zos", Refused, RuleSpec, "another platform's: runc ignores it"},
	{"freebsd", Refused, RuleSpec, "another platform's: runc ignores it"},
}
