package hardening

import (
	"fmt"

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
	return checkScheduling(p)
}
