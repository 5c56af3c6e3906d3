package hardening

import (
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-dev/hardened/profiles"
)

// unifiedPidsMax is the cgroup v2 file a spec can also set through
// linux.resources.unified. runc writes unified entries after the typed
// ones (cgroups fs2 Manager.Set; the systemd driver turns it into
// TasksMax), so unified["pids.max"] = "max" silently undoes pids.limit.
const unifiedPidsMax = "pids.max"

// applyPids caps the number of tasks in the container's cgroup: a fork
// bomb in one container otherwise exhausts the node's pid space and takes
// every other workload (and the kubelet) down with it. The profile's limit
// replaces no limit, an "unlimited" one (<= 0) or a higher one; a lower
// limit the spec already has is kept, never raised.
func applyPids(l *specs.Linux, prof *profiles.Profile, r *Report) {
	if prof.Pids.Limit <= 0 {
		return
	}
	if l.Resources == nil {
		l.Resources = &specs.LinuxResources{}
	}
	hardenPids(l.Resources, prof.Pids.Limit, true, "linux.resources.", r)
}

// hardenPids lowers res's pids limit (and unified pids.max) to limit.
// With require, a missing limit is set; without (an update, where a
// missing limit leaves the current one), it is left missing.
func hardenPids(res *specs.LinuxResources, limit int64, require bool, prefix string, r *Report) {
	if res.Pids == nil || res.Pids.Limit == nil {
		if require {
			if res.Pids == nil {
				res.Pids = &specs.LinuxPids{}
			}
			res.Pids.Limit = &limit
			r.change(RulePids, prefix+"pids.limit", "unlimited", strconv.FormatInt(limit, 10))
		}
	} else if cur := *res.Pids.Limit; cur <= 0 || cur > limit {
		before := "unlimited"
		if cur > 0 {
			before = strconv.FormatInt(cur, 10)
		}
		res.Pids.Limit = &limit
		r.change(RulePids, prefix+"pids.limit", before, strconv.FormatInt(limit, 10))
	}
	if v, ok := res.Unified[unifiedPidsMax]; ok && !unifiedPidsWithin(v, limit) {
		delete(res.Unified, unifiedPidsMax)
		r.change(RulePids, prefix+"unified."+unifiedPidsMax, v, "(removed: pids.limit applies)")
	}
}

// unifiedPidsWithin reports whether a unified pids.max value is a number
// no higher than limit.
func unifiedPidsWithin(v string, limit int64) bool {
	n, err := strconv.ParseInt(v, 10, 64)
	return err == nil && n >= 0 && n <= limit
}

func checkPids(l *specs.Linux, prof *profiles.Profile) error {
	limit := prof.Pids.Limit
	if limit <= 0 {
		return nil
	}
	if l == nil || l.Resources == nil || l.Resources.Pids == nil || l.Resources.Pids.Limit == nil {
		return refuse(RulePids, "linux.resources.pids.limit", "is not set: profile %s limits pids to %d", prof.Name, limit)
	}
	return checkPidsResources(l.Resources, prof, "linux.resources.")
}

func checkPidsResources(res *specs.LinuxResources, prof *profiles.Profile, prefix string) error {
	limit := prof.Pids.Limit
	if res.Pids != nil && res.Pids.Limit != nil {
		if cur := *res.Pids.Limit; cur <= 0 || cur > limit {
			return refuse(RulePids, prefix+"pids.limit", "is %d: profile %s limits pids to %d", cur, prof.Name, limit)
		}
	}
	if v, ok := res.Unified[unifiedPidsMax]; ok && !unifiedPidsWithin(v, limit) {
		return refuse(RulePids, prefix+"unified."+unifiedPidsMax, "is %q: profile %s limits pids to %d", v, prof.Name, limit)
	}
	return nil
}
