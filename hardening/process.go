package hardening

import (
	"fmt"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-dev/hardened/profiles"
)

// applyNoNewPrivs sets no_new_privileges: after it, execve never grants
// privileges the caller did not have (setuid/setgid bits and file
// capabilities are ignored), so a setuid binary in the image, or one an
// attacker drops on a writable mount, cannot undo the capability drop. It
// also lets runc install the seccomp filter without CAP_SYS_ADMIN.
func applyNoNewPrivs(p *specs.Process, r *Report) {
	if !p.NoNewPrivileges {
		p.NoNewPrivileges = true
		r.change(RuleNoNewPrivs, "process.noNewPrivileges", "false", "true")
	}
}

// checkRunAsNonRoot refuses a process running as uid 0 when the profile
// asks for non-root (the Kubernetes runAsNonRoot semantics: uid 0 inside
// the container, whatever a user namespace maps it to, since a root
// process owns every root-owned file of the image and of its mounts).
func checkRunAsNonRoot(p *specs.Process, prof *profiles.Profile) error {
	if prof.Process.RunAsNonRoot && p.User.UID == 0 {
		return refuse(RuleProcess, "process.user.uid", "runs as uid 0: profile %s requires a non-root user", prof.Name)
	}
	return nil
}

const rlimitCore = "RLIMIT_CORE"

// applyNoCoreDumps sets RLIMIT_CORE to 0 (soft and hard): a core dump of a
// process that held secrets writes them to a file (or, through
// core_pattern, hands them to a host program).
func applyNoCoreDumps(p *specs.Process, prof *profiles.Profile, r *Report) {
	if !prof.Process.NoCoreDumps {
		return
	}
	found := false
	for i := range p.Rlimits {
		rl := &p.Rlimits[i]
		if rl.Type != rlimitCore {
			continue
		}
		found = true
		if rl.Hard != 0 || rl.Soft != 0 {
			r.change(RuleRlimits, fmt.Sprintf("process.rlimits[%d]", i),
				fmt.Sprintf("%s soft=%d hard=%d", rlimitCore, rl.Soft, rl.Hard), rlimitCore+" soft=0 hard=0")
			rl.Hard, rl.Soft = 0, 0
		}
	}
	if !found {
		p.Rlimits = append(p.Rlimits, specs.POSIXRlimit{Type: rlimitCore})
		r.change(RuleRlimits, "process.rlimits", "", rlimitCore+" soft=0 hard=0")
	}
}

// checkProcess checks the invariants of a hardened process.
func checkProcess(p *specs.Process, prof *profiles.Profile) error {
	if !p.NoNewPrivileges {
		return refuse(RuleNoNewPrivs, "process.noNewPrivileges", "is false")
	}
	if err := checkRunAsNonRoot(p, prof); err != nil {
		return err
	}
	if prof.Process.NoCoreDumps {
		found := false
		for _, rl := range p.Rlimits {
			if rl.Type == rlimitCore {
				found = true
				if rl.Hard != 0 || rl.Soft != 0 {
					return refuse(RuleRlimits, "process.rlimits", "%s is not 0 under profile %s", rlimitCore, prof.Name)
				}
			}
		}
		if !found {
			return refuse(RuleRlimits, "process.rlimits", "no %s limit under profile %s", rlimitCore, prof.Name)
		}
	}
	if err := checkCapabilities(p.Capabilities, prof); err != nil {
		return err
	}
	if err := checkRlimitBounds(p, prof); err != nil {
		return err
	}
	return checkScheduling(p)
}

// minOOMScoreAdj is the lowest oom_score_adj a container's processes get:
// the kubelet's own lowest for pods (-998 for the pod sandbox, -997 for
// Guaranteed and node-critical pods). runc writes the spec's value as root
// before anything else: -999 and -1000 (never killed) are the kubelet's
// and the runtime's own, and a container holding them makes the kernel kill
// everything else on the node first.
const minOOMScoreAdj = -998

// applyOOMScore raises an oom_score_adj below minOOMScoreAdj to it.
func applyOOMScore(p *specs.Process, r *Report) {
	if p.OOMScoreAdj != nil && *p.OOMScoreAdj < minOOMScoreAdj {
		r.change(RuleProcess, "process.oomScoreAdj", strconv.Itoa(*p.OOMScoreAdj), strconv.Itoa(minOOMScoreAdj))
		v := minOOMScoreAdj
		p.OOMScoreAdj = &v
	}
}

// checkRlimitTypes refuses a resource limit Linux does not have (runc and
// runsc would refuse it later, after making cgroups).
func checkRlimitTypes(p *specs.Process) error {
	for i, rl := range p.Rlimits {
		if !profiles.IsKnownRlimit(rl.Type) {
			return refuse(RuleRlimits, fmt.Sprintf("process.rlimits[%d].type", i), "%q is not a resource limit", rl.Type)
		}
	}
	return nil
}

// applyRlimitBounds lowers every rlimit above the profile's bound to it:
// runc sets rlimits as root from outside the container (prlimit with
// CAP_SYS_RESOURCE), so the spec can give a process a hard limit it could
// never raise itself.
func applyRlimitBounds(p *specs.Process, prof *profiles.Profile, r *Report) {
	for i := range p.Rlimits {
		rl := &p.Rlimits[i]
		max, ok := prof.Rlimits.Max[rl.Type]
		if !ok || rl.Soft <= max && rl.Hard <= max {
			continue
		}
		nl := specs.POSIXRlimit{Type: rl.Type, Soft: min(rl.Soft, max), Hard: min(rl.Hard, max)}
		r.change(RuleRlimits, fmt.Sprintf("process.rlimits[%d]", i), rlimitString(*rl), rlimitString(nl))
		*rl = nl
	}
}

// checkRlimitBounds checks a hardened process's rlimits and OOM score.
func checkRlimitBounds(p *specs.Process, prof *profiles.Profile) error {
	if err := checkRlimitTypes(p); err != nil {
		return err
	}
	for i, rl := range p.Rlimits {
		if max, ok := prof.Rlimits.Max[rl.Type]; ok && (rl.Soft > max || rl.Hard > max) {
			return refuse(RuleRlimits, fmt.Sprintf("process.rlimits[%d]", i), "%s is above profile %s's bound of %d", rlimitString(rl), prof.Name, max)
		}
	}
	if p.OOMScoreAdj != nil && *p.OOMScoreAdj < minOOMScoreAdj {
		return refuse(RuleProcess, "process.oomScoreAdj", "%d is below %d", *p.OOMScoreAdj, minOOMScoreAdj)
	}
	return nil
}
