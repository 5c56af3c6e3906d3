package shim

import (
	"fmt"

	"github.com/hardened-dev/hardened/internal/hostfacts"
)

// Mount sources pinned. runc opens a bind mount's source by path, as root,
// when it creates the container. A host path checked before that (the
// engine's host path rule, hardening.CheckMountSources) can change in
// between: whoever can write a parent directory of the source (another
// container given that directory as a volume) swaps the checked directory
// for a symlink to / and the container mounts the host's root. So the
// shim makes the checked inode the mounted one:
//
//  1. the decision (package decide, no I/O) lists the host paths of the hardened spec (every
//     bind mount's source, every absolute mount source, an absolute
//     root.path) and writes config.json with each replaced by a staging
//     path, RunDir/staging/<namespace>/<container-id>/<n> (n: the mount's
//     index, or "root");
//  2. Create opens each path (package hostfacts) with openat2(2), RESOLVE_NO_SYMLINKS (no
//     symlink in any element, the last one included) and O_PATH: a path
//     with a symlink in it, or one that does not exist, is refused;
//  3. each opened inode is judged by its real path (readlink of
//     /proc/self/fd/N) with the engine's host path rule
//     (decide.Plan.JudgeSources);
//  4. each is bind-mounted from /proc/self/fd/N (recursively for rbind and
//     root.path) onto its staging path, in the shim's mount namespace
//     (containerd's and runc's): runc mounts the staging path, which only
//     root can change. (runc cannot take /proc/<pid>/fd/N itself: it mounts
//     from the container's new mount namespace, EINVAL.) The kubelet stages
//     subPath volumes the same way since CVE-2017-1002101;
//  5. the staging mounts are removed once the runtime no longer opens the
//     sources: when the stock Create returns (success or failure), or, for
//     a gVisor pod's app container, when its Start returns (see
//     holdUntilStart); Delete (and the shim binary's delete) sweep the
//     container's staging directory again.
//
// A staging mount keeps the source's propagation (a bind of a shared mount
// joins its peer group), so a container's mount with rslave or rshared
// options still receives the host's later mounts, as it would from the
// source itself. It is made private (recursively) right before it is
// unmounted: the unmount of a staged rbind would otherwise propagate into
// the source's peer group and detach the host's own submounts (and the
// container's copies of them).
//
// In audit mode config.json is not rewritten, so nothing is staged: the
// paths are opened and judged the same way, and what enforce mode would
// refuse is reported.

// pin opens the plan's host paths without following symlinks, has the
// opened inodes judged by their real paths and, in enforce mode, stages
// them. It returns the staging directory ("" when nothing was staged).
// Every refusal comes before anything is staged; a failure to stage
// removes what was staged. In audit mode a refusal is recorded in the
// report.
func (p *plan) pin() (string, error) {
	pp := p.Pins
	if pp == nil {
		return "", nil
	}
	pins, err := hostfacts.Open(pp.Items)
	if err == nil {
		defer pins.Close()
	}
	refused := p.Report.Refused
	if err := p.JudgeSources(pins.Resolved(), err); err != nil {
		return "", err
	}
	if p.Report.Refused != refused {
		p.dropReport()
	}
	if pp.Dir == "" {
		return "", nil
	}
	if err := stageAll(pp, pins); err != nil {
		return "", fmt.Errorf("failed to stage the mount sources: %w", err)
	}
	return pp.Dir, nil
}
