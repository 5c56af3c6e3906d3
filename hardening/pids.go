package hardening

import (
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-dev/hardened/profiles"
)

// applyPids caps the number of tasks in the container's cgroup: a fork
// bomb in one container otherwise exhausts the node's pid space and takes
// every other workload (and the kubelet) down with it. The profile's limit
// replaces no limit, an "unlimited" one (<= 0) or a higher one; a lower
// limit the spec already has is kept, never raised.
func applyPids(l *specs.Linux, prof *profiles.Profile, r *Report) {
	limit := prof.Pids.Limit
	if limit <= 0 {
		return
	}
	if l.Resources == nil {
		l.Resources = &specs.LinuxResources{}
	}
	if l.Resources.Pids == nil {
		l.Resources.Pids = &specs.LinuxPids{}
	}
	cur := l.Resources.Pids.Limit
	if cur != nil && *cur > 0 && *cur <= limit {
		return
	}
	before := "unlimited"
	if cur != nil && *cur > 0 {
		before = strconv.FormatInt(*cur, 10)
	}
	l.Resources.Pids.Limit = &limit
	r.change(RulePids, "linux.resources.pids.limit", before, strconv.FormatInt(limit, 10))
}

func checkPids(l *specs.Linux, prof *profiles.Profile) error {
	limit := prof.Pids.Limit
	if limit <= 0 {
		return nil
	}
	if l == nil || l.Resources == nil || l.Resources.Pids == nil || l.Resources.Pids.Limit == nil {
		return refuse(RulePids, "linux.resources.pids.limit", "is not set: profile %s limits pids to %d", prof.Name, limit)
	}
	if cur := *l.Resources.Pids.Limit; cur <= 0 || cur > limit {
		return refuse(RulePids, "linux.resources.pids.limit", "is %d: profile %s limits pids to %d", cur, prof.Name, limit)
	}
	return nil
}
