package hardening

import (
	"fmt"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Scheduling and I/O priority beyond the capability ceiling.
//
// runc applies process.scheduler (sched_setattr) and process.ioPriority
// (ioprio_set) in the container's init, and in every exec'd process, before
// it drops capabilities (runc v1.5.2 libcontainer/standard_init_linux.go and
// setns_init_linux.go: setupScheduler, setupIOPriority, then
// finalizeNamespace). The kernel's checks therefore see runc's full
// capability set, not the container's: seen on this project's test node, a
// container under restricted (CapEff 0x400, CAP_NET_BIND_SERVICE alone) ran
// with nice -20 and the real-time I/O class. A real-time task can starve
// every other task on its CPUs (the node's kubelet included), a real-time
// I/O class every other process's disk access. So the spec may ask only for
// what the process could set itself with its final capabilities:
//   - SCHED_FIFO, SCHED_RR, SCHED_DEADLINE and a negative nice need
//     CAP_SYS_NICE in the bounding set;
//   - IOPRIO_CLASS_RT needs CAP_SYS_ADMIN (what every kernel asks; newer
//     ones also accept CAP_SYS_NICE);
//   - RLIMIT_RTPRIO above 0 and RLIMIT_NICE above 20 need CAP_SYS_NICE:
//     runc sets rlimits as root too, and with them the kernel lets the
//     process itself choose a real-time policy, or a negative nice, without
//     the capability.
// Anything else (SCHED_OTHER, SCHED_BATCH, SCHED_IDLE with nice >= 0; the
// best-effort and idle I/O classes) only lowers the process's own priority.

const (
	capSysNice  = "CAP_SYS_NICE"
	capSysAdmin = "CAP_SYS_ADMIN"
	// rlimitNiceFloor is the RLIMIT_NICE at which nice 0 is the most a
	// process may ask for (the ceiling is 20 - rlimit).
	rlimitNiceFloor = 20
)

// checkScheduling refuses scheduling, I/O priority and rlimits that need a
// capability p's bounding set lacks (p's capabilities as hardened).
func checkScheduling(p *specs.Process) error {
	var bounding []string
	if p.Capabilities != nil {
		bounding = p.Capabilities.Bounding
	}
	nice := slices.Contains(bounding, capSysNice)
	if sc := p.Scheduler; sc != nil && !nice {
		switch sc.Policy {
		case specs.SchedFIFO, specs.SchedRR, specs.SchedDeadline:
			return refuse(RuleScheduler, "process.scheduler.policy", "%s is a real-time policy, which needs %s: the bounding set lacks it, and runc would set it before dropping capabilities", sc.Policy, capSysNice)
		}
		if sc.Nice < 0 {
			return refuse(RuleScheduler, "process.scheduler.nice", "%d raises the process's priority, which needs %s: the bounding set lacks it, and runc would set it before dropping capabilities", sc.Nice, capSysNice)
		}
	}
	if io := p.IOPriority; io != nil && io.Class == specs.IOPRIO_CLASS_RT && !slices.Contains(bounding, capSysAdmin) {
		return refuse(RuleScheduler, "process.ioPriority.class", "%s is the real-time I/O class, which needs %s: the bounding set lacks it, and runc would set it before dropping capabilities", io.Class, capSysAdmin)
	}
	if !nice {
		for i, rl := range p.Rlimits {
			switch {
			case rl.Type == "RLIMIT_RTPRIO" && (rl.Soft > 0 || rl.Hard > 0):
				return refuse(RuleScheduler, fmt.Sprintf("process.rlimits[%d]", i), "RLIMIT_RTPRIO soft=%d hard=%d lets the process choose a real-time policy without %s, which its bounding set lacks", rl.Soft, rl.Hard, capSysNice)
			case rl.Type == "RLIMIT_NICE" && (rl.Soft > rlimitNiceFloor || rl.Hard > rlimitNiceFloor):
				return refuse(RuleScheduler, fmt.Sprintf("process.rlimits[%d]", i), "RLIMIT_NICE soft=%d hard=%d lets the process take a negative nice without %s, which its bounding set lacks", rl.Soft, rl.Hard, capSysNice)
			}
		}
	}
	return nil
}
