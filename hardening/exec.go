package hardening

import (
	"fmt"
	"slices"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// An exec'd process is pinned to the container's init process (as
// hardened) in everything runc applies to it as root, before it drops
// capabilities or leaves the host's view: `runc exec --process` honours
// each of these fields, and containerd builds the process from its stored,
// unhardened spec or takes it from the client.
//   - process.selinuxLabel: the container's. Another label is another
//     MAC domain (spc_t is unconfined).
//   - process.user: no group the init process lacks (primary or
//     additional: a group is file access on the image and on every volume).
//     The uid is left to run_as_non_root, as for the init process.
//   - process.oomScoreAdj: never below the init process's (0 when it has
//     none), and the init's when the exec has none (it would inherit the
//     shim's, often lower): runc writes it as root, and a lower score makes
//     the process the last the kernel's OOM killer picks on the node,
//     -1000 never.
//   - process.rlimits: never above the init process's. A limit the init
//     process has and the exec lacks is set to the init's (the exec would
//     otherwise inherit the shim's); one the init process does not set is
//     refused (nothing to compare it with: runc would raise it as root).
//   - process.scheduler, process.ioPriority: as for the init process
//     (scheduler.go), with the exec's final capabilities.
// process.user.umask (a mask the process may change itself), terminal,
// consoleSize and env are the process's own business.

// pinExec applies the rules above to out, an exec'd process, against init,
// the container's init process.
func pinExec(out, init *specs.Process, r *Report) error {
	if out.SelinuxLabel != init.SelinuxLabel {
		r.change(RuleExec, "process.selinuxLabel", out.SelinuxLabel, init.SelinuxLabel)
		out.SelinuxLabel = init.SelinuxLabel
	}
	if err := checkExecGroups(out, init); err != nil {
		return err
	}
	switch floor := oomFloor(init); {
	case out.OOMScoreAdj == nil && init.OOMScoreAdj != nil:
		r.change(RuleExec, "process.oomScoreAdj", "", strconv.Itoa(floor)+" (the container's)")
		out.OOMScoreAdj = &floor
	case out.OOMScoreAdj != nil && *out.OOMScoreAdj < floor:
		r.change(RuleExec, "process.oomScoreAdj", strconv.Itoa(*out.OOMScoreAdj), strconv.Itoa(floor))
		out.OOMScoreAdj = &floor
	}
	return pinExecRlimits(out, init, r)
}

// oomFloor is the lowest oom_score_adj an exec may have.
func oomFloor(init *specs.Process) int {
	if init.OOMScoreAdj != nil {
		return *init.OOMScoreAdj
	}
	return 0
}

// checkExecGroups refuses a group the init process is not in.
func checkExecGroups(out, init *specs.Process) error {
	has := func(g uint32) bool { return g == init.User.GID || slices.Contains(init.User.AdditionalGids, g) }
	if !has(out.User.GID) {
		return refuse(RuleExec, "process.user.gid", "group %d is not one of the container's init process (gid %d, additional %v)", out.User.GID, init.User.GID, init.User.AdditionalGids)
	}
	for _, g := range out.User.AdditionalGids {
		if !has(g) {
			return refuse(RuleExec, "process.user.additionalGids", "group %d is not one of the container's init process (gid %d, additional %v)", g, init.User.GID, init.User.AdditionalGids)
		}
	}
	return nil
}

// pinExecRlimits lowers the exec's rlimits to the init process's, adds
// those it lacks, and refuses those the init process does not set.
func pinExecRlimits(out, init *specs.Process, r *Report) error {
	for i, rl := range out.Rlimits {
		j := slices.IndexFunc(init.Rlimits, func(x specs.POSIXRlimit) bool { return x.Type == rl.Type })
		if j < 0 {
			return refuse(RuleExec, fmt.Sprintf("process.rlimits[%d]", i), "%s is not set for the container's init process: an exec may not set it", rl.Type)
		}
		lim := init.Rlimits[j]
		if rl.Soft > lim.Soft || rl.Hard > lim.Hard {
			nl := specs.POSIXRlimit{Type: rl.Type, Soft: min(rl.Soft, lim.Soft), Hard: min(rl.Hard, lim.Hard)}
			r.change(RuleExec, fmt.Sprintf("process.rlimits[%d]", i), rlimitString(rl), rlimitString(nl))
			out.Rlimits[i] = nl
		}
	}
	for _, lim := range init.Rlimits {
		if !slices.ContainsFunc(out.Rlimits, func(x specs.POSIXRlimit) bool { return x.Type == lim.Type }) {
			out.Rlimits = append(out.Rlimits, lim)
			r.change(RuleExec, "process.rlimits", "", rlimitString(lim)+" (the container's)")
		}
	}
	return nil
}

func rlimitString(rl specs.POSIXRlimit) string {
	return fmt.Sprintf("%s soft=%d hard=%d", rl.Type, rl.Soft, rl.Hard)
}

// checkExecPinned checks a hardened exec'd process against init.
func checkExecPinned(p, init *specs.Process) error {
	if p.SelinuxLabel != init.SelinuxLabel {
		return refuse(RuleExec, "process.selinuxLabel", "differs from the container's")
	}
	if err := checkExecGroups(p, init); err != nil {
		return err
	}
	if init.OOMScoreAdj != nil && p.OOMScoreAdj == nil {
		return refuse(RuleExec, "process.oomScoreAdj", "is not set: the process would inherit the shim's, not the container's %d", *init.OOMScoreAdj)
	}
	if floor := oomFloor(init); p.OOMScoreAdj != nil && *p.OOMScoreAdj < floor {
		return refuse(RuleExec, "process.oomScoreAdj", "%d is below the container's %d", *p.OOMScoreAdj, floor)
	}
	for i, rl := range p.Rlimits {
		j := slices.IndexFunc(init.Rlimits, func(x specs.POSIXRlimit) bool { return x.Type == rl.Type })
		if j < 0 || rl.Soft > init.Rlimits[j].Soft || rl.Hard > init.Rlimits[j].Hard {
			return refuse(RuleExec, fmt.Sprintf("process.rlimits[%d]", i), "%s is above the container's, or not set for it", rlimitString(rl))
		}
	}
	for _, lim := range init.Rlimits {
		if !slices.ContainsFunc(p.Rlimits, func(x specs.POSIXRlimit) bool { return x.Type == lim.Type }) {
			return refuse(RuleExec, "process.rlimits", "lacks the container's %s", lim.Type)
		}
	}
	return nil
}
